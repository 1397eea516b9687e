//! The house holds: inside `leakcheck/src`, every module imports only from layers below its
//! own (DESIGN.md, "The house"). A reference to `crate::X` in code (not in comments) from a
//! module of a layer at or below `X`'s fails this test, naming the file, the line and both
//! layers; so does a source file of a module no layer lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, and the layers each may use: the check pipeline is one stack (spawn hooks
/// -> registry -> verify -> describe -> report -> outcome), and the service view (snapshots
/// and the watcher) a side branch beside it, on the same sources, that the pipeline never
/// uses and that never uses the pipeline. A module may use the modules of the layers its
/// layer may use (and theirs, all the way down) and its own submodules; nothing of its own
/// layer or any other. `lib` is the crate root: its public items (`crate::Options`, ...)
/// count as the top layer.
const LAYERS: &[(&str, &[&str], &[&str])] = &[
    ("foundation", &["lock", "paths", "unwind", "interpose"], &[]),
    (
        "leaves",
        &["scope", "frames", "config", "clock"],
        &["foundation"],
    ),
    ("store and data", &["registry", "report"], &["leaves"]),
    ("thread sources", &["threads"], &["store and data"]),
    ("task sources", &["tasks"], &["thread sources"]),
    ("process sources", &["processes"], &["task sources"]),
    ("panic sources", &["panics"], &["process sources"]),
    (
        "rules and start-up",
        &["options", "filter", "init"],
        &["panic sources"],
    ),
    ("check", &["verify"], &["rules and start-up"]),
    ("describe", &["describe"], &["check"]),
    ("face", &["outcome"], &["describe"]),
    ("watchdog", &["watchdog"], &["face"]),
    ("entry", &["harness", "exit_gate"], &["watchdog"]),
    // The exit gate as the library `cargo leakcheck` preloads installs it.
    ("preloaded entry", &["preload"], &["entry"]),
    // The side branch: on the sources, beside the check pipeline.
    ("service view", &["snapshot"], &["panic sources"]),
    ("service watch", &["watcher"], &["service view"]),
    (
        "public surface",
        &["lib"],
        &["preloaded entry", "service watch", "rules and start-up"],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules, _)| modules.contains(&module))
}

/// Whether layer `from` may use layer `to`: `to` is among the layers `from` may use, or
/// theirs, all the way down.
fn may_use(from: usize, to: usize) -> bool {
    let mut seen = vec![false; LAYERS.len()];
    let mut stack = vec![from];
    while let Some(layer) = stack.pop() {
        for name in LAYERS[layer].2 {
            let below = LAYERS
                .iter()
                .position(|(other, _, _)| other == name)
                .expect("a layer of the list");
            if below == to {
                return true;
            }
            if !seen[below] {
                seen[below] = true;
                stack.push(below);
            }
        }
    }
    false
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
    paths_after(code, "crate::")
}

/// The first segment of every `prefix` path (`crate::`, or `super::` in a top-level
/// module, where it means the same).
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        // `$crate::` is a macro's path to the crate from outside, and `my_crate::` another
        // crate's path: neither is an import.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
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
    let modules: Vec<&str> = LAYERS
        .iter()
        .flat_map(|(_, m, _)| m.iter().copied())
        .collect();
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
        // In `src/x.rs` or `src/x/mod.rs`, `super::` is the crate root.
        let relative = path.strip_prefix(source_dir()).unwrap();
        let top_level = relative.components().count() == 1
            || relative.file_name().is_some_and(|name| name == "mod.rs")
                && relative.components().count() == 2;
        // Inside an inline `mod x { .. }` of the file, `super::` is the file's own module.
        let mut depth = 0usize;
        let mut inline_modules: Vec<usize> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let code = code_of(line);
            let mut references = crate_references(code);
            if top_level && inline_modules.is_empty() {
                references.extend(
                    paths_after(code, "super::")
                        .into_iter()
                        .filter(|reference| !reference.is_empty()),
                );
            }
            let trimmed = code.trim_start();
            let opens_module = (trimmed.starts_with("mod ")
                || trimmed.starts_with("pub(crate) mod ")
                || trimmed.starts_with("pub mod "))
                && trimmed.trim_end().ends_with('{');
            if opens_module {
                inline_modules.push(depth);
            }
            depth += code.matches('{').count();
            depth = depth.saturating_sub(code.matches('}').count());
            while inline_modules.last().is_some_and(|&opened| depth <= opened) {
                inline_modules.pop();
            }
            for reference in references {
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
                if !may_use(own, theirs) {
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
    assert_eq!(paths_after("use super::{a, b::c};", "super::"), ["a", "b"]);
}

#[test]
fn the_service_view_and_the_check_pipeline_are_branches_apart() {
    let layer = |name: &str| {
        LAYERS
            .iter()
            .position(|(other, _, _)| *other == name)
            .unwrap()
    };
    assert!(may_use(layer("service view"), layer("task sources")));
    assert!(!may_use(layer("service view"), layer("check")));
    assert!(!may_use(layer("entry"), layer("service view")));
    assert!(may_use(layer("public surface"), layer("service view")));
}
