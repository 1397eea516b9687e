//! The user's toolchain: the cargo that ran us, and the compiler beside it, which builds
//! the preloaded library and keys its cache.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::error::Error;

/// The cargo to run: the one that ran us (cargo sets `CARGO` for subcommands).
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The user's compiler, as `rustc -vV` describes it.
pub struct Compiler {
    /// Its first line: `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub version: String,
    /// The cache's key for it: release and commit.
    pub key: String,
    /// The host's target triple.
    pub host: String,
}

impl Compiler {
    pub fn find() -> Result<Compiler, Error> {
        // The compiler beside the cargo that ran us (cargo sets `CARGO` for a subcommand),
        // which is the toolchain's own: `rustc` on the PATH may be rustup's proxy, which
        // costs a resolution of the toolchain on every call.
        let beside_cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .and_then(|cargo| Some(cargo.parent()?.join("rustc")))
            .filter(|rustc| rustc.is_file());
        let rustc = std::env::var_os("RUSTC")
            .or_else(|| beside_cargo.map(PathBuf::into_os_string))
            .unwrap_or_else(|| "rustc".into());
        let output = Command::new(&rustc)
            .arg("-vV")
            .output()
            .map_err(|error| Error::Cargo {
                doing: format!("cannot run {}", rustc.to_string_lossy()),
                why: error.to_string(),
            })?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .unwrap_or("unknown")
                .to_owned()
        };
        let hash = field("commit-hash: ");
        Ok(Compiler {
            version: text.lines().next().unwrap_or("rustc").to_owned(),
            key: format!(
                "rustc-{}-{}",
                field("release: "),
                &hash[..hash.len().min(12)]
            ),
            host: field("host: "),
        })
    }
}
