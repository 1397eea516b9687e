//! Adding leakcheck never breaks a build that compiled without it: the inference traps of
//! `fixtures/inference` (code whose types are inferred from the trait impls std and the
//! primitive types have) compile and pass without leakcheck, then with it and every one of
//! its features, on the suite's own build (plain or `--cfg tokio_unstable`).

use std::process::Command;

use leakcheck_suite::{fixtures_dir, root};

/// `cargo test` of the inference traps, with `features`; its output on failure.
fn test_traps(features: &[&str]) -> Result<String, String> {
    let _heavy = leakcheck_suite::heavy();
    let output = Command::new(env!("CARGO"))
        .args(["test", "-p", "inference-traps"])
        .args(features.iter().flat_map(|feature| ["--features", feature]))
        .arg("--manifest-path")
        .arg(fixtures_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(root().join("target").join("fixtures"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("cargo runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn linking_leakcheck_changes_no_type_inference() {
    let without = test_traps(&[]).unwrap_or_else(|output| {
        panic!("the traps must compile and pass without leakcheck:\n{output}")
    });
    assert!(without.contains("test result: ok. 8 passed"), "{without}");
    let with = test_traps(&["leakcheck"]).unwrap_or_else(|output| {
        panic!("linking leakcheck broke code that compiled without it:\n{output}")
    });
    assert!(with.contains("test result: ok. 8 passed"), "{with}");
}

/// The traps are built with every feature leakcheck has: a new feature (and what it pulls
/// in) is checked too, not forgotten.
#[test]
fn the_traps_turn_every_feature_of_leakcheck_on() {
    let library = std::fs::read_to_string(root().join("leakcheck").join("Cargo.toml")).unwrap();
    let traps =
        std::fs::read_to_string(fixtures_dir().join("inference").join("Cargo.toml")).unwrap();
    let features = library
        .split("\n[features]\n")
        .nth(1)
        .expect("leakcheck has a [features] table")
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| line.split_once(" = ").map(|(name, _)| name.trim()))
        .filter(|name| !name.starts_with('#') && !name.is_empty());
    for feature in features {
        assert!(
            traps.contains(&format!("\"leakcheck/{feature}\"")),
            "fixtures/inference does not turn on leakcheck's `{feature}` feature"
        );
    }
}
