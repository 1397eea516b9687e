//! `leakcheck.toml`: ignore rules and defaults shared by a whole crate or workspace, found
//! the way `clippy.toml` is: the nearest one from the test crate's manifest directory up to
//! the workspace root. A file that does not parse, or says something leakcheck does not
//! know, is an error naming the file, the line and the problem.
//!
//! ```toml
//! grace = "300ms"
//! timeout = "60s"
//! ignore_thread = ["metrics-*"]
//! ignore_spawn = ["my_crate::telemetry::start"]
//! ignore_top = ["my_crate::pool::park"]
//! ignore_process = ["sleep", "my-daemon --serve *"]
//! ignore_panic = ["threadpool::spawn_in_pool"]
//! default_allowlist = true
//! untracked_tasks = "fail"
//! zombies = "warn"
//! lost_panics = "fail"
//! kill_leaked_processes = false
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use leakcheck_schema::rules::RuleKind;
use toml::de::{DeTable, DeValue};

use super::{LOST_PANICS, Policy, Settings, UNTRACKED_TASKS, ZOMBIES};

/// The file's name.
pub(crate) const FILE_NAME: &str = "leakcheck.toml";

/// Every key the file takes.
pub(crate) const KEYS: &[&str] = &[
    "grace",
    "timeout",
    "ignore_thread",
    "ignore_spawn",
    "ignore_top",
    "ignore_process",
    "ignore_panic",
    "default_allowlist",
    "untracked_tasks",
    "zombies",
    "lost_panics",
    "kill_leaked_processes",
];

static MANIFEST_DIR: OnceLock<&'static str> = OnceLock::new();

/// The test crate's manifest directory as it was at compile time, for a binary run without
/// cargo (which sets `CARGO_MANIFEST_DIR` at run time too). The first caller wins.
pub(crate) fn remember_manifest_dir(dir: &'static str) {
    let _ = MANIFEST_DIR.set(dir);
}

/// The shared file, read once: `LEAKCHECK_CONFIG` if set, else the nearest `leakcheck.toml`.
pub(crate) fn shared(explicit: Option<&Path>) -> Result<Option<&'static Settings>, &'static str> {
    static READ: OnceLock<Result<Option<Settings>, String>> = OnceLock::new();
    READ.get_or_init(|| {
        let path = match explicit {
            Some(path) => path.to_owned(),
            None => match find(&start_dir()) {
                Some(path) => path,
                None => return Ok(None),
            },
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("leakcheck: cannot read {}: {error}", path.display()))?;
        parse(&path, &text).map(Some)
    })
    .as_ref()
    .map(Option::as_ref)
    .map_err(String::as_str)
}

fn start_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| MANIFEST_DIR.get().map(PathBuf::from))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default()
}

/// The nearest `leakcheck.toml` in `start` or above it, not above the workspace root (the
/// first directory whose `Cargo.toml` has a `[workspace]` table).
pub(crate) fn find(start: &Path) -> Option<PathBuf> {
    for dir in start.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        if crate::paths::is_workspace_root(dir) {
            return None;
        }
    }
    None
}

/// Parses the text of `path` into the same settings `Options` builds, its rules checked by
/// the same grammar.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Settings, String> {
    let error_at = |span: Option<Range<usize>>, problem: &str| {
        let (line, column) = span.map_or((1, 1), |span| line_and_column(text, span.start));
        format!("leakcheck: {}:{line}:{column}: {problem}", path.display())
    };
    let table = DeTable::parse(text).map_err(|error| error_at(error.span(), error.message()))?;
    let mut file = Settings::default();
    for (key, value) in table.get_ref().iter() {
        let span = Some(value.span());
        let bad =
            |problem: &str| error_at(span.clone(), &format!("`{}`: {problem}", key.get_ref()));
        match key.get_ref().as_ref() {
            "grace" | "timeout" => {
                let DeValue::String(text) = value.get_ref() else {
                    return Err(bad("expected a duration in a string, such as \"300ms\""));
                };
                let duration = leakcheck_schema::duration::parse(text).map_err(|error| {
                    bad(&format!(
                        "{text:?} is not a duration ({error}), such as \"300ms\""
                    ))
                })?;
                match key.get_ref().as_ref() {
                    "grace" => file.grace = Some(duration),
                    _ => file.timeout = Some(duration),
                }
            }
            "untracked_tasks" | "zombies" | "lost_panics" => {
                let (accepted, slot) = match key.get_ref().as_ref() {
                    "untracked_tasks" => (UNTRACKED_TASKS, &mut file.untracked_tasks),
                    "zombies" => (ZOMBIES, &mut file.zombies),
                    _ => (LOST_PANICS, &mut file.lost_panics),
                };
                let policy = match value.get_ref() {
                    DeValue::String(text) => Policy::parse(text, accepted),
                    _ => None,
                };
                *slot = Some(policy.ok_or_else(|| {
                    bad(&format!(
                        "expected {} (the first is the default)",
                        Policy::expected(accepted)
                    ))
                })?);
            }
            "default_allowlist" | "kill_leaked_processes" => {
                let DeValue::Boolean(on) = value.get_ref() else {
                    return Err(bad("expected true or false"));
                };
                match key.get_ref().as_ref() {
                    "default_allowlist" => file.default_allowlist = Some(*on),
                    _ => file.kill_processes = Some(*on),
                }
            }
            "ignore_thread" | "ignore_spawn" | "ignore_top" | "ignore_process" | "ignore_panic" => {
                let kind = RuleKind::from_key(key.get_ref()).expect("a rule key");
                for (text, span) in strings(value, &error_at, kind.key())? {
                    let rule = kind
                        .parse(&text)
                        .map_err(|error| error_at(Some(span), &error.to_string()))?;
                    file.add_rule(rule);
                }
            }
            other => {
                return Err(error_at(
                    Some(key.span()),
                    &format!("unknown key `{other}`: expected {}", KEYS.join(", ")),
                ));
            }
        }
    }
    Ok(file)
}

/// A string, or an array of strings, with each string's span.
fn strings(
    value: &toml::Spanned<DeValue<'_>>,
    error_at: &dyn Fn(Option<Range<usize>>, &str) -> String,
    key: &str,
) -> Result<Vec<(String, Range<usize>)>, String> {
    let expected = format!("`{key}`: expected a string or an array of strings");
    match value.get_ref() {
        DeValue::String(one) => Ok(vec![(one.to_string(), value.span())]),
        DeValue::Array(items) => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(one) => Ok((one.to_string(), item.span())),
                _ => Err(error_at(Some(item.span()), &expected)),
            })
            .collect(),
        _ => Err(error_at(Some(value.span()), &expected)),
    }
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse_text(text: &str) -> Result<Settings, String> {
        parse(Path::new("/repo/leakcheck.toml"), text)
    }

    #[test]
    fn reads_every_key() {
        let file = parse_text(
            "grace = \"250ms\"\n\
             timeout = \"1m\"\n\
             ignore_thread = [\"metrics-*\", \"audit\"]\n\
             ignore_spawn = \"my_crate::telemetry::start\"\n\
             ignore_top = [\"my_crate::pool::park\"]\n\
             default_allowlist = false\n\
             untracked_tasks = \"warn\"\n\
             ignore_process = [\"sleep\", \"my-daemon *\"]\n\
             zombies = \"fail\"\n\
             lost_panics = \"off\"\n\
             kill_leaked_processes = true\n",
        )
        .unwrap();
        assert_eq!(file.grace, Some(Duration::from_millis(250)));
        assert_eq!(file.timeout, Some(Duration::from_secs(60)));
        assert_eq!(file.ignore_threads.len(), 2);
        assert_eq!(file.ignore_spawns, ["my_crate::telemetry::start"]);
        assert_eq!(file.ignore_tops, ["my_crate::pool::park"]);
        assert_eq!(file.default_allowlist, Some(false));
        assert_eq!(file.untracked_tasks, Some(Policy::Warn));
        assert_eq!(file.ignore_processes.len(), 2);
        assert_eq!(file.zombies, Some(Policy::Fail));
        assert_eq!(file.lost_panics, Some(Policy::Off));
        assert_eq!(file.kill_processes, Some(true));
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let cases = [
            (
                "grace = \"soon\"\n",
                "/repo/leakcheck.toml:1:9: `grace`: \"soon\" is not a duration",
            ),
            (
                "\nignore_thread = [\"[\"]\n",
                ":2:18: `ignore_thread`: \"[\" is not a glob",
            ),
            (
                "grace = \"1s\"\nignore_treads = []\n",
                ":2:1: unknown key `ignore_treads`",
            ),
            (
                "ignore_spawn = [1]\n",
                ":1:17: `ignore_spawn`: expected a string or an array",
            ),
            ("ignore_top = \"\"\n", ":1:14: `ignore_top`: an empty rule"),
            (
                "default_allowlist = \"no\"\n",
                ":1:21: `default_allowlist`: expected true or false",
            ),
            (
                "zombies = \"loud\"\n",
                ":1:11: `zombies`: expected \"warn\", \"fail\" or \"off\"",
            ),
            (
                "untracked_tasks = \"off\"\n",
                "`untracked_tasks`: expected \"fail\" or \"warn\"",
            ),
            (
                "kill_leaked_processes = 1\n",
                ":1:25: `kill_leaked_processes`: expected true or false",
            ),
            (
                "ignore_process = \"\"\n",
                ":1:18: `ignore_process`: an empty rule",
            ),
            ("grace = \n", "/repo/leakcheck.toml:1:"),
        ];
        for (text, expected) in cases {
            let error = parse_text(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_nearest_file_up_to_the_workspace_root_is_found() {
        let root = std::env::temp_dir().join(format!("leakcheck-find-{}", std::process::id()));
        let member = root.join("crates").join("member");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::write(member.join("Cargo.toml"), "[package]\nname = \"member\"\n").unwrap();
        assert_eq!(find(&member), None);
        std::fs::write(root.join(FILE_NAME), "").unwrap();
        assert_eq!(find(&member), Some(root.join(FILE_NAME)));
        std::fs::write(member.join(FILE_NAME), "").unwrap();
        assert_eq!(find(&member), Some(member.join(FILE_NAME)));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
