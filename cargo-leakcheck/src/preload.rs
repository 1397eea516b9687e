//! The library the runner preloads into test binaries that do not link leakcheck: leakcheck
//! built as a shared object whose constructor installs the exit check. `cargo install`
//! installs binaries, not libraries, so it is built here, on first use, with the user's own
//! toolchain and offline (leakcheck's sources and dependencies are in the local registry
//! once `cargo-leakcheck` is installed, or beside it in a checkout), in a cache directory per
//! compiler version. Later runs ask cargo again, which finds nothing to do.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;
use crate::toolchain::{Compiler, cargo};

/// The preloaded library's package: its manifest, its constructor, and the version script
/// that exports every entry point leakcheck stands in for (rustc's own list for a `cdylib`
/// leaves out `pthread_create`, which leakcheck writes in assembly).
const MANIFEST: &str = r#"[package]
name = "leakcheck-preload"
version = "0.0.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]
path = "lib.rs"

[dependencies]
leakcheck = LEAKCHECK

[profile.release]
debug = 1

[workspace]
"#;

const LIBRARY: &str = r#"//! leakcheck, preloaded by `cargo leakcheck` into test binaries that do not link it.

/// Runs before `main`: the exit check of the test binary.
extern "C" fn install() {
    leakcheck::__private::install_preloaded();
}

#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL: extern "C" fn() = install;
"#;

const BUILD_SCRIPT: &str = r#"fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo::rustc-cdylib-link-arg=-Wl,--version-script={dir}/exports.map");
    println!("cargo::rerun-if-changed=exports.map");
}
"#;

const EXPORTS: &str = "{ global: pthread_create; };\n";

/// The checkout this binary was built in, if it is one: its workspace root.
fn checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.join("leakcheck/Cargo.toml").is_file().then_some(root)
}

/// Where leakcheck's sources come from: the checkout, if any, else the registry's copy of
/// the same version.
fn leakcheck_dependency() -> String {
    match checkout() {
        Some(root) => format!(
            "{{ path = {:?} }}",
            root.join("leakcheck").display().to_string()
        ),
        None => format!("\"={}\"", env!("CARGO_PKG_VERSION")),
    }
}

/// Whether the library built at `built` is current: a registry version never changes; a
/// checkout's is current while no source of its crates is newer. (Asking cargo costs more
/// than a whole run of a small suite.)
fn is_current(built: &Path, package: &Path) -> bool {
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let Some(built_at) = modified(built) else {
        return false;
    };
    let newer = |dir: &Path| -> bool {
        let mut stack = vec![dir.to_owned()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if modified(&path).is_none_or(|at| at > built_at) {
                    return true;
                }
            }
        }
        false
    };
    if newer(package) {
        return false;
    }
    match checkout() {
        None => true,
        Some(root) => !["leakcheck", "leakcheck-macros", "leakcheck-schema"]
            .iter()
            .any(|krate| {
                newer(&root.join(krate).join("src")) || newer(&root.join(krate).join("Cargo.toml"))
            }),
    }
}

/// The cache directory: `$XDG_CACHE_HOME/leakcheck`, else `~/.cache/leakcheck`.
fn cache_root() -> Result<PathBuf, Error> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|dir| dir.join("leakcheck"))
        .ok_or_else(|| Error::Cargo {
            doing: "cannot find a cache directory for the preloaded library".into(),
            why: "neither XDG_CACHE_HOME nor HOME is set".into(),
        })
}

/// The preloaded library, built first if needed; says once where it went.
pub fn library(compiler: &Compiler) -> Result<PathBuf, Error> {
    let dir = cache_root()?
        .join(format!("preload-{}", env!("CARGO_PKG_VERSION")))
        .join(&compiler.key);
    let built = dir.join("target/release/libleakcheck_preload.so");
    let first = !built.is_file();
    // The package's sources in a directory of their own, which a changed file dates.
    let package = dir.join("package");
    let write = |name: &str, text: &str| -> Result<(), Error> {
        let path = package.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).map_err(|error| Error::io("write", &path, error))?;
        }
        Ok(())
    };
    std::fs::create_dir_all(&package).map_err(|error| Error::io("create", &package, error))?;
    write(
        "Cargo.toml",
        &MANIFEST.replace("LEAKCHECK", &leakcheck_dependency()),
    )?;
    write("lib.rs", LIBRARY)?;
    write("build.rs", BUILD_SCRIPT)?;
    write("exports.map", EXPORTS)?;
    if !first && is_current(&built, &package) {
        return Ok(built);
    }
    if first {
        eprintln!(
            "leakcheck: building the library it preloads into test binaries, once for {}, in {}",
            compiler.version,
            dir.display()
        );
    }
    let build = |offline: bool| {
        let mut build = Command::new(cargo());
        build
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(package.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(dir.join("target"));
        if offline {
            build.arg("--offline");
        }
        // The user's flags and target are for the user's crates; this library is built for
        // the host, as leakcheck needs it.
        for name in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_BUILD_TARGET_DIR",
        ] {
            build.env_remove(name);
        }
        build.status().map_err(|error| Error::Cargo {
            doing: "cannot build the preloaded library".into(),
            why: error.to_string(),
        })
    };
    // Offline first: everything it needs is local once cargo-leakcheck is installed. Where
    // it is not (a registry copy cleaned away), the registry is asked.
    let mut status = build(true)?;
    if !status.success() {
        status = build(false)?;
    }
    if !status.success() || !built.is_file() {
        return Err(Error::Cargo {
            doing: format!("cannot build the preloaded library in {}", dir.display()),
            why: format!(
                "cargo build {status}: are leakcheck {} and its dependencies in the local \
                 registry (`cargo install cargo-leakcheck` puts them there)?",
                env!("CARGO_PKG_VERSION")
            ),
        });
    }
    Ok(built)
}
