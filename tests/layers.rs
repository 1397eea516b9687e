//! The house holds: inside `leakcheck/src`, every module imports only from layers below its
//! own (DESIGN.md, "The house"). A reference to `crate::X` in code (not in comments) from a
//! module of a layer at or below `X`'s fails this test, naming the file, the line and both
//! layers; so does a source file of a module no layer lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom up. A module may use the modules of lower layers, and its own
/// submodules; nothing of its own layer or above. `lib` is the crate root: its public
/// items (`crate::Options`, ...) count as the top layer.
const LAYERS: &[(&str, &[&str])] = &[
    ("locks", &["lock"]),
    ("leaves", &["scope", "frames", "config", "clock", "unwind"]),
    ("store and data", &["registry", "report"]),
    ("thread sources", &["threads"]),
    ("task sources", &["tasks"]),
    ("rules and start-up", &["options", "filter", "init"]),
    ("check", &["verify"]),
    ("describe", &["describe"]),
    ("service view", &["snapshot"]),
    ("face", &["outcome"]),
    ("watch", &["watchdog", "watcher"]),
    ("entry", &["harness", "exit_gate"]),
    ("public surface", &["lib"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn source_dir() -> PathBuf {
    leakcheck_suite::root().join("leakcheck").join("src")
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(dir: &Path, files: &mut BTreeMap<PathBuf, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(source_dir()).unwrap();
            let first = relative.iter().next().unwrap().to_string_lossy();
            let module = first.trim_end_matches(".rs").to_owned();
            files.insert(path, module);
        }
    }
}

/// The first segment of every `crate::` path in a line of code: `crate::verify::check`
/// gives `verify`, `crate::{describe, verify}` gives both.
fn crate_references(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `$crate::` is a macro's path to the crate from outside, and `my_crate::` another
        // crate's path: neither is an import.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c == '$' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(
                group
                    .split(',')
                    .map(first_segment)
                    .filter(|s| !s.is_empty()),
            );
        } else {
            found.push(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Comments (doc links included) say things; only code imports.
fn code_of(line: &str) -> &str {
    line.split("//").next().unwrap_or(line)
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let mut files = BTreeMap::new();
    sources(&source_dir(), &mut files);
    assert!(files.len() > 20, "too few sources found: {files:?}");
    let modules: Vec<&str> = LAYERS.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    let mut problems = Vec::new();
    for (path, module) in &files {
        let Some(own) = layer_of(module) else {
            problems.push(format!(
                "{}: module `{module}` is in no layer",
                path.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for (number, line) in text.lines().enumerate() {
            for reference in crate_references(code_of(line)) {
                // A public item of the crate root, such as `crate::Options`, is the top layer.
                let target = if modules.contains(&reference.as_str()) {
                    reference.as_str()
                } else {
                    "lib"
                };
                if target == module {
                    continue;
                }
                let theirs = layer_of(target).unwrap();
                if theirs >= own {
                    problems.push(format!(
                        "{}:{}: `{module}` ({}) uses `crate::{reference}` ({})",
                        path.display(),
                        number + 1,
                        LAYERS[own].0,
                        LAYERS[theirs].0,
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports that do not go down the layers:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reference_finder_sees_grouped_and_inline_paths() {
    assert_eq!(
        crate_references("use crate::{describe, verify::Target};"),
        ["describe", "verify"]
    );
    assert_eq!(
        crate_references("let x = crate::config::mode(); $crate::Options::new()"),
        ["config"]
    );
    assert!(crate_references("ignore_spawn(\"my_crate::telemetry\")").is_empty());
    assert_eq!(code_of("foo(); // see crate::verify"), "foo(); ");
}
