//! Reads what decides the user's rustflags, the way cargo finds it: the environment, then
//! `.cargo/config.toml` (or `.cargo/config`) in the working directory and every directory
//! above it, then `$CARGO_HOME/config.toml`, and the `--config` arguments given to cargo.
//! Only the rustflags keys are read; [`crate::rustflags`] decides what to add.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::Error;
use toml::de::{DeTable, DeValue};

use crate::rustflags::{Key, Origin, Sources, Value};

/// The sources of the user's rustflags, for cargo run from `cwd` with `cargo_args`.
pub fn sources(cwd: &Path, cargo_args: &[OsString]) -> Result<Sources, Error> {
    let var = |name: &str| std::env::var(name).ok();
    let config_env = std::env::vars()
        .filter(|(name, _)| {
            name == "CARGO_BUILD_RUSTFLAGS"
                || (name.starts_with("CARGO_TARGET_") && name.ends_with("_RUSTFLAGS"))
        })
        .collect();
    let mut config = Vec::new();
    // `--config` arguments: the last one wins.
    for argument in option_values(cargo_args, "--config").iter().rev() {
        let file = cwd.join(argument);
        if file.is_file() {
            config.extend(file_keys(&file, Origin::Argument)?);
        } else if let Ok(table) = DeTable::parse(argument) {
            config.extend(keys(table.get_ref(), Origin::Argument));
        }
        // Otherwise cargo says what is wrong with it.
    }
    for file in config_files(cwd, cargo_home(&var).as_deref()) {
        config.extend(file_keys(&file, Origin::File)?);
    }
    Ok(Sources {
        encoded: var("CARGO_ENCODED_RUSTFLAGS"),
        rustflags: var("RUSTFLAGS"),
        config_env,
        config,
    })
}

/// A runner of the user's (`target.<triple>.runner`).
#[derive(Debug, PartialEq, Eq)]
pub struct Runner {
    /// Its words: a string is split at spaces, as cargo does.
    pub words: Vec<String>,
    /// Written as one string in a config file or `--config`: cargo cannot merge an array
    /// over it, so a runner given for the same key must be a string too.
    pub string_in_config: bool,
}

/// The user's own runner for `triple`, the way cargo finds it:
/// `CARGO_TARGET_<TRIPLE>_RUNNER`, then `--config` arguments, then config files, nearest
/// first; `None` where there is none.
pub fn runner(cwd: &Path, cargo_args: &[OsString], triple: &str) -> Result<Option<Runner>, Error> {
    let variable = format!(
        "CARGO_TARGET_{}_RUNNER",
        triple.to_uppercase().replace(['-', '.'], "_")
    );
    let from_variable = std::env::var(&variable)
        .ok()
        .filter(|value| !value.is_empty())
        .map(|value| value.split_whitespace().map(str::to_owned).collect());
    let of_table = |table: &DeTable<'_>| -> Option<Runner> {
        let target = match table.get("target")?.get_ref() {
            DeValue::Table(targets) => targets.get(triple)?,
            _ => return None,
        };
        let DeValue::Table(target) = target.get_ref() else {
            return None;
        };
        match target.get("runner")?.get_ref() {
            DeValue::String(words) => Some(Runner {
                words: words.split_whitespace().map(str::to_owned).collect(),
                string_in_config: true,
            }),
            DeValue::Array(words) => Some(Runner {
                words: words
                    .iter()
                    .filter_map(|word| match word.get_ref() {
                        DeValue::String(word) => Some(word.to_string()),
                        _ => None,
                    })
                    .collect(),
                string_in_config: false,
            }),
            _ => None,
        }
    };
    // The variable wins over files, but the type of what cargo merges over is the files'.
    let mut in_config = None;
    for argument in option_values(cargo_args, "--config").iter().rev() {
        let file = cwd.join(argument);
        let text = if file.is_file() {
            std::fs::read_to_string(&file).unwrap_or_default()
        } else {
            argument.clone()
        };
        if let Some(found) = DeTable::parse(&text)
            .ok()
            .and_then(|table| of_table(table.get_ref()))
        {
            in_config = Some(found);
            break;
        }
    }
    let var = |name: &str| std::env::var(name).ok();
    if in_config.is_none() {
        for file in config_files(cwd, cargo_home(&var).as_deref()) {
            let text = std::fs::read_to_string(&file).map_err(|error| {
                Error::BadConfig(format!(
                    "cannot read cargo's config {}: {error}",
                    file.display()
                ))
            })?;
            if let Some(found) = DeTable::parse(&text)
                .ok()
                .and_then(|table| of_table(table.get_ref()))
            {
                in_config = Some(found);
                break;
            }
        }
    }
    Ok(match (from_variable, in_config) {
        (Some(words), in_config) => Some(Runner {
            words,
            string_in_config: in_config.is_some_and(|runner| runner.string_in_config),
        }),
        (None, in_config) => in_config,
    })
}

/// Every value of an option written `--name VALUE` or `--name=VALUE` before `--`.
pub fn option_values(args: &[OsString], name: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        if arg == name {
            if let Some(value) = args.next() {
                values.push(value.to_string_lossy().into_owned());
            }
        } else if let Some(value) = arg.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
            values.push(value.to_owned());
        }
    }
    values
}

fn cargo_home(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cargo")))
}

/// cargo's config files for `cwd`, the one that wins first: nearest directory first, then
/// cargo's home if no directory above `cwd` already was it. In each directory `config` is
/// read if it exists (cargo prefers it, with a warning), else `config.toml`.
pub fn config_files(cwd: &Path, cargo_home: Option<&Path>) -> Vec<PathBuf> {
    let in_dir = |dir: &Path| {
        ["config", "config.toml"]
            .iter()
            .map(|name| dir.join(name))
            .find(|file| file.is_file())
    };
    let mut files: Vec<PathBuf> = cwd
        .ancestors()
        .filter_map(|dir| in_dir(&dir.join(".cargo")))
        .collect();
    if let Some(file) = cargo_home.and_then(in_dir) {
        let canonical = |path: &Path| path.canonicalize().ok();
        if !files.iter().any(|seen| canonical(seen) == canonical(&file)) {
            files.push(file);
        }
    }
    files
}

fn file_keys(file: &Path, origin: Origin) -> Result<Vec<(Key, Value, Origin)>, Error> {
    let text = std::fs::read_to_string(file).map_err(|error| {
        Error::BadConfig(format!(
            "cannot read cargo's config {}: {error}",
            file.display()
        ))
    })?;
    let table = DeTable::parse(&text).map_err(|error| {
        Error::BadConfig(format!(
            "cannot read cargo's config {}: {}",
            file.display(),
            error.message()
        ))
    })?;
    Ok(keys(table.get_ref(), origin))
}

/// The rustflags keys of one config table: `build.rustflags`, `target.*.rustflags`.
pub fn keys(table: &DeTable<'_>, origin: Origin) -> Vec<(Key, Value, Origin)> {
    let mut found = Vec::new();
    let rustflags = |table: &DeValue<'_>| match table {
        DeValue::Table(table) => match table.get("rustflags").map(|value| value.get_ref()) {
            Some(DeValue::String(flags)) => Some(Value::String(flags.to_string())),
            Some(DeValue::Array(_)) => Some(Value::List),
            _ => None,
        },
        _ => None,
    };
    if let Some(value) = table
        .get("build")
        .and_then(|build| rustflags(build.get_ref()))
    {
        found.push((Key::Build, value, origin));
    }
    if let Some(DeValue::Table(targets)) = table.get("target").map(|targets| targets.get_ref()) {
        for (name, target) in targets {
            if let Some(value) = rustflags(target.get_ref()) {
                found.push((Key::Target(name.get_ref().to_string()), value, origin));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(Key, Value, Origin)> {
        keys(DeTable::parse(text).unwrap().get_ref(), Origin::File)
    }

    #[test]
    fn finds_rustflags_however_the_toml_writes_them() {
        let text = r#"
build.target-dir = "elsewhere"
build.rustflags = "--cfg a"

[target.'cfg(unix)']
rustflags = ["--cfg", "b"]

[target.x86_64-unknown-linux-gnu]
runner = "valgrind"
"#;
        assert_eq!(
            parsed(text),
            [
                (Key::Build, Value::String("--cfg a".into()), Origin::File),
                (Key::Target("cfg(unix)".into()), Value::List, Origin::File),
            ]
        );
        assert_eq!(
            parsed("[build]\nrustflags = []\n"),
            [(Key::Build, Value::List, Origin::File)]
        );
        assert_eq!(parsed("[build]\njobs = 2\n"), []);
    }

    #[test]
    fn the_user_s_runner_is_found_in_a_config_argument() {
        let cwd = std::env::temp_dir();
        let args: Vec<OsString> = [
            "--config",
            "target.x86_64-unknown-linux-gnu.runner = [\"qemu-x\", \"-L\", \"/sys\"]",
            "--config",
            "target.aarch64-unknown-linux-gnu.runner = \"qemu-aarch64 -L /a\"",
        ]
        .map(OsString::from)
        .to_vec();
        assert_eq!(
            runner(&cwd, &args, "x86_64-unknown-linux-gnu").unwrap(),
            Some(Runner {
                words: vec!["qemu-x".into(), "-L".into(), "/sys".into()],
                string_in_config: false,
            })
        );
        assert_eq!(
            runner(&cwd, &args, "aarch64-unknown-linux-gnu").unwrap(),
            Some(Runner {
                words: vec!["qemu-aarch64".into(), "-L".into(), "/a".into()],
                string_in_config: true,
            })
        );
    }

    #[test]
    fn config_option_values_before_dashes() {
        let args: Vec<OsString> = [
            "-p",
            "x",
            "--config",
            "a=1",
            "--config=b=2",
            "--",
            "--config",
            "c",
        ]
        .map(OsString::from)
        .to_vec();
        assert_eq!(option_values(&args, "--config"), ["a=1", "b=2"]);
    }

    #[test]
    fn files_nearest_first_then_cargo_home() {
        let root =
            std::env::temp_dir().join(format!("cargo-leakcheck-config-{}", std::process::id()));
        let member = root.join("ws").join("member");
        let home = root.join("home");
        for dir in [&member.join(".cargo"), &root.join("ws/.cargo"), &home] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(member.join(".cargo/config.toml"), "").unwrap();
        std::fs::write(root.join("ws/.cargo/config"), "").unwrap();
        std::fs::write(root.join("ws/.cargo/config.toml"), "").unwrap();
        std::fs::write(home.join("config.toml"), "").unwrap();
        let files = config_files(&member, Some(&home));
        assert_eq!(
            files,
            [
                member.join(".cargo/config.toml"),
                root.join("ws/.cargo/config"),
                home.join("config.toml"),
            ]
        );
        // Cargo's home above the working directory is read once.
        let inside = config_files(&member, Some(&member.join(".cargo")));
        assert_eq!(inside.len(), 2, "{inside:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
