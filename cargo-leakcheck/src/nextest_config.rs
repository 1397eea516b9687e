//! What of nextest's own configuration keeps the runner out: a wrapper script whose
//! `target-runner` is `"ignore"` (nextest's default for wrapper scripts) replaces the target
//! runner for the tests it wraps, so those tests would run unchecked, silently. Read from the
//! workspace's `.config/nextest.toml` (or `--config-file`), so that the summary names them.

use std::ffi::OsString;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::cargo_config::option_values;

/// One rule that runs tests through a wrapper script that ignores the target runner.
#[derive(Debug, PartialEq, Eq)]
pub struct Bypass {
    /// The profile whose rule it is.
    pub profile: String,
    /// The rule's filterset: the tests it wraps.
    pub filter: String,
    /// The wrapper script.
    pub script: String,
}

impl Bypass {
    /// The summary's note.
    pub fn note(&self) -> String {
        format!(
            "not checked: the tests matching `{}` (profile {}), which nextest runs through the \
             wrapper script `{}` with the target runner ignored (target-runner = \"ignore\", \
             nextest's default for wrapper scripts): set target-runner = \"within-wrapper\" \
             on the script to check them",
            self.filter, self.profile, self.script
        )
    }
}

/// The rules of the nextest configuration for `workspace_root` that bypass the runner.
pub fn bypasses(workspace_root: &Path, cargo_args: &[OsString]) -> Vec<Bypass> {
    let file = option_values(cargo_args, "--config-file")
        .pop()
        .map_or_else(|| workspace_root.join(".config/nextest.toml"), Into::into);
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let Ok(table) = DeTable::parse(&text) else {
        // nextest says what is wrong with it.
        return Vec::new();
    };
    bypasses_in(table.get_ref())
}

/// The table `key` of `table`, if it is one.
fn table_at<'t, 'a>(table: &'t DeTable<'a>, key: &str) -> Option<&'t DeTable<'a>> {
    match table.get(key)?.get_ref() {
        DeValue::Table(inner) => Some(inner),
        _ => None,
    }
}

/// The string `key` of `table`, if it is one.
fn text_at(table: &DeTable<'_>, key: &str) -> Option<String> {
    match table.get(key)?.get_ref() {
        DeValue::String(text) => Some(text.to_string()),
        _ => None,
    }
}

fn bypasses_in(table: &DeTable<'_>) -> Vec<Bypass> {
    let ignoring: Vec<String> = table_at(table, "scripts")
        .and_then(|scripts| table_at(scripts, "wrapper"))
        .map(|wrappers| {
            wrappers
                .iter()
                .filter(|(_, script)| match script.get_ref() {
                    DeValue::Table(script) => {
                        text_at(script, "target-runner").is_none_or(|runner| runner == "ignore")
                    }
                    _ => false,
                })
                .map(|(name, _)| name.get_ref().to_string())
                .collect()
        })
        .unwrap_or_default();
    if ignoring.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (profile, settings) in table_at(table, "profile").into_iter().flatten() {
        let DeValue::Table(settings) = settings.get_ref() else {
            continue;
        };
        let Some(DeValue::Array(rules)) = settings.get("scripts").map(|rules| rules.get_ref())
        else {
            continue;
        };
        for rule in rules {
            let DeValue::Table(rule) = rule.get_ref() else {
                continue;
            };
            if let Some(script) =
                text_at(rule, "run-wrapper").filter(|name| ignoring.contains(name))
            {
                found.push(Bypass {
                    profile: profile.get_ref().to_string(),
                    filter: text_at(rule, "filter").unwrap_or_else(|| "all()".into()),
                    script,
                });
            }
        }
    }
    found.sort_by(|a, b| (&a.profile, &a.filter).cmp(&(&b.profile, &b.filter)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_that_ignore_the_runner_are_found_with_their_filters() {
        let text = r#"
experimental = ["wrapper-scripts"]

[scripts.wrapper.sudo-run]
command = "sudo -E"

[scripts.wrapper.in-container]
command = "podman run"
target-runner = "ignore"

[scripts.wrapper.timed]
command = "time"
target-runner = "within-wrapper"

[[profile.default.scripts]]
filter = "test(needs_root)"
run-wrapper = "sudo-run"

[[profile.default.scripts]]
filter = "package(plain)"
run-wrapper = "timed"

[[profile.ci.scripts]]
filter = "binary(integration)"
run-wrapper = "in-container"
"#;
        let table = DeTable::parse(text).unwrap();
        assert_eq!(
            bypasses_in(table.get_ref()),
            [
                Bypass {
                    profile: "ci".into(),
                    filter: "binary(integration)".into(),
                    script: "in-container".into(),
                },
                Bypass {
                    profile: "default".into(),
                    filter: "test(needs_root)".into(),
                    script: "sudo-run".into(),
                },
            ]
        );
        assert!(
            bypasses_in(
                DeTable::parse("[profile.default]\nretries = 1\n")
                    .unwrap()
                    .get_ref()
            )
            .is_empty()
        );
    }
}
