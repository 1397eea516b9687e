//! `--cfg tokio_unstable` added to the user's own rustflags, wherever cargo takes them from,
//! without losing any. cargo uses the first of these that is set, and only that one:
//! `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`, the `target.<triple>` and matching
//! `target.<cfg>` tables' `rustflags` (joined), `build.rustflags`; so setting `RUSTFLAGS`
//! would silently drop the flags of the user's `.cargo/config.toml`.
//!
//! When an environment variable is set, the flag is appended to it. Otherwise the flag goes
//! to every config key the user has (and to `build.rustflags`) through `--config`, whose
//! arrays cargo appends to the files' own: which table applies (a `cfg(...)` table matches or
//! not) stays cargo's decision. A key the user wrote as a string cannot take an array
//! (cargo refuses to merge the two), so it gets the user's string with the flag appended.

/// The flag, as separate arguments to rustc.
pub const FLAG: [&str; 2] = ["--cfg", "tokio_unstable"];

/// A config key that holds rustflags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// `build.rustflags`
    Build,
    /// `target.<name>.rustflags`: a triple or a `cfg(...)` expression.
    Target(String),
}

impl Key {
    /// The key as `--config` takes it, the table's name quoted.
    fn config_path(&self) -> String {
        match self {
            Key::Build => "build.rustflags".into(),
            Key::Target(name) => format!("target.{}.rustflags", toml_string(name)),
        }
    }

    /// The environment variable cargo reads for the key (cargo's own spelling: upper case,
    /// `-` and `.` as `_`); `None` for a `cfg(...)` table, which has none.
    fn env_var(&self) -> Option<String> {
        match self {
            Key::Build => Some("CARGO_BUILD_RUSTFLAGS".into()),
            Key::Target(name) if name.starts_with("cfg(") => None,
            Key::Target(name) => Some(format!(
                "CARGO_TARGET_{}_RUSTFLAGS",
                name.to_uppercase().replace(['-', '.'], "_")
            )),
        }
    }
}

/// How a config source wrote a rustflags value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `rustflags = "--cfg foo"`
    String(String),
    /// `rustflags = ["--cfg", "foo"]`
    List,
}

/// Where a config value came from: a `--config` argument outranks the environment, which
/// outranks a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Argument,
    File,
}

/// Everything that decides the rustflags cargo uses.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `CARGO_ENCODED_RUSTFLAGS`, if set.
    pub encoded: Option<String>,
    /// `RUSTFLAGS`, if set.
    pub rustflags: Option<String>,
    /// The config variables that are set: `CARGO_BUILD_RUSTFLAGS`,
    /// `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`.
    pub config_env: Vec<(String, String)>,
    /// The rustflags keys of the config files and `--config` arguments, the one that wins
    /// first (arguments, last first; then files, nearest first).
    pub config: Vec<(Key, Value, Origin)>,
}

/// What to add to cargo's invocation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Environment variables to set.
    pub env: Vec<(String, String)>,
    /// `--config` arguments to add after the user's own.
    pub config_args: Vec<String>,
}

/// The additions that give cargo the user's rustflags plus [`FLAG`].
pub fn plan(sources: &Sources) -> Plan {
    let mut plan = Plan::default();
    if let Some(encoded) = &sources.encoded {
        let mut flags: Vec<&str> = encoded.split('\x1f').filter(|f| !f.is_empty()).collect();
        flags.extend(FLAG);
        plan.env
            .push(("CARGO_ENCODED_RUSTFLAGS".into(), flags.join("\x1f")));
        return plan;
    }
    if let Some(rustflags) = &sources.rustflags {
        plan.env
            .push(("RUSTFLAGS".into(), appended(Some(rustflags))));
        return plan;
    }
    let mut keys = vec![Key::Build];
    for (key, _, _) in &sources.config {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    let env_value = |name: &str| {
        sources
            .config_env
            .iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.as_str())
    };
    for key in &keys {
        let winner = sources.config.iter().find(|(other, _, _)| other == key);
        let value = match winner {
            // A string: cargo would not merge an array into it, and a variable replaces a
            // file's string: the flag goes after what cargo would have used.
            Some((_, Value::String(string), origin)) => {
                let base = match origin {
                    Origin::File => key.env_var().and_then(|var| env_value(&var)),
                    Origin::Argument => None,
                }
                .unwrap_or(string);
                toml_string(&appended(Some(base)))
            }
            // An array (or nothing): cargo appends ours, then the variable's.
            _ => format!("[{}]", FLAG.map(toml_string).join(", ")),
        };
        plan.config_args
            .push(format!("{}={value}", key.config_path()));
    }
    // A variable for a target no config file names: ours is appended to it, as cargo would
    // read it.
    for (var, value) in &sources.config_env {
        let named = keys.iter().any(|key| key.env_var().as_ref() == Some(var));
        if !named && var.starts_with("CARGO_TARGET_") {
            plan.env.push((var.clone(), appended(Some(value))));
        }
    }
    plan
}

/// Space-separated flags with [`FLAG`] after them.
fn appended(flags: Option<&str>) -> String {
    let flags = flags.map(str::trim).unwrap_or_default();
    let ours = FLAG.join(" ");
    if flags.is_empty() {
        ours
    } else {
        format!("{flags} {ours}")
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = r#"build.rustflags=["--cfg", "tokio_unstable"]"#;

    #[test]
    fn nothing_set_puts_the_flag_in_build_rustflags() {
        let plan = plan(&Sources::default());
        assert_eq!(plan.env, []);
        assert_eq!(plan.config_args, [OURS]);
    }

    #[test]
    fn rustflags_in_the_environment_take_the_flag_and_config_is_left_alone() {
        let sources = Sources {
            rustflags: Some("-C debuginfo=1 ".into()),
            config: vec![(Key::Build, Value::List, Origin::File)],
            ..Sources::default()
        };
        let plan = plan(&sources);
        assert_eq!(
            plan.env,
            [(
                "RUSTFLAGS".to_owned(),
                "-C debuginfo=1 --cfg tokio_unstable".to_owned()
            )]
        );
        assert_eq!(plan.config_args, Vec::<String>::new());
    }

    #[test]
    fn encoded_rustflags_outrank_rustflags() {
        let sources = Sources {
            encoded: Some("-C\x1fdebuginfo=1".into()),
            rustflags: Some("--cfg ignored".into()),
            ..Sources::default()
        };
        assert_eq!(
            plan(&sources).env,
            [(
                "CARGO_ENCODED_RUSTFLAGS".to_owned(),
                "-C\x1fdebuginfo=1\x1f--cfg\x1ftokio_unstable".to_owned()
            )]
        );
        // Set but empty: no flags of the user's, and still the one cargo reads.
        let empty = Sources {
            encoded: Some(String::new()),
            ..Sources::default()
        };
        assert_eq!(plan(&empty).env[0].1, "--cfg\x1ftokio_unstable");
    }

    #[test]
    fn every_target_table_gets_the_flag_so_cargo_still_picks_the_table() {
        let sources = Sources {
            config: vec![
                (Key::Target("cfg(unix)".into()), Value::List, Origin::File),
                (
                    Key::Target("x86_64-unknown-linux-gnu".into()),
                    Value::List,
                    Origin::File,
                ),
                (Key::Build, Value::List, Origin::File),
            ],
            ..Sources::default()
        };
        assert_eq!(
            plan(&sources).config_args,
            [
                OURS,
                r#"target."cfg(unix)".rustflags=["--cfg", "tokio_unstable"]"#,
                r#"target."x86_64-unknown-linux-gnu".rustflags=["--cfg", "tokio_unstable"]"#,
            ]
        );
    }

    #[test]
    fn a_string_value_gets_the_user_s_string_with_the_flag() {
        let sources = Sources {
            config: vec![
                (Key::Build, Value::String("--cfg near".into()), Origin::File),
                (Key::Build, Value::String("--cfg far".into()), Origin::File),
            ],
            ..Sources::default()
        };
        assert_eq!(
            plan(&sources).config_args,
            [r#"build.rustflags="--cfg near --cfg tokio_unstable""#]
        );
        // The variable replaces a file's string, as cargo reads it; an argument's string
        // outranks the variable.
        let with_env = Sources {
            config_env: vec![("CARGO_BUILD_RUSTFLAGS".into(), "--cfg env".into())],
            ..sources.clone()
        };
        assert_eq!(
            plan(&with_env).config_args,
            [r#"build.rustflags="--cfg env --cfg tokio_unstable""#]
        );
        let mut with_argument = with_env.clone();
        with_argument.config.insert(
            0,
            (
                Key::Build,
                Value::String("--cfg arg".into()),
                Origin::Argument,
            ),
        );
        assert_eq!(
            plan(&with_argument).config_args,
            [r#"build.rustflags="--cfg arg --cfg tokio_unstable""#]
        );
    }

    #[test]
    fn a_target_variable_no_file_names_takes_the_flag_itself() {
        let sources = Sources {
            config_env: vec![
                (
                    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS".into(),
                    "--cfg mine".into(),
                ),
                ("CARGO_BUILD_RUSTFLAGS".into(), "--cfg build".into()),
            ],
            ..Sources::default()
        };
        let plan = plan(&sources);
        assert_eq!(
            plan.env,
            [(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS".to_owned(),
                "--cfg mine --cfg tokio_unstable".to_owned()
            )]
        );
        // CARGO_BUILD_RUSTFLAGS is appended by cargo to the array given by --config.
        assert_eq!(plan.config_args, [OURS]);
    }

    #[test]
    fn a_target_variable_a_file_names_is_merged_by_cargo() {
        let sources = Sources {
            config_env: vec![(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS".into(),
                "--cfg mine".into(),
            )],
            config: vec![(
                Key::Target("x86_64-unknown-linux-gnu".into()),
                Value::List,
                Origin::File,
            )],
            ..Sources::default()
        };
        let plan = plan(&sources);
        assert_eq!(plan.env, []);
        assert_eq!(plan.config_args.len(), 2);
    }

    #[test]
    fn table_names_are_quoted_for_toml() {
        assert_eq!(
            toml_string(r#"cfg(feature = "x")"#),
            r#""cfg(feature = \"x\")""#
        );
        assert_eq!(toml_string("a\u{7f}"), r#""a\u007F""#);
    }
}
