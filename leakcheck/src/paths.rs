//! Source paths as reports show them, one rule everywhere: relative to the workspace root
//! (where cargo runs rustc, so the form rustc records in a `Location` and tokio's spawn
//! lines have), a dependency's as `crate-version/src/...`, std's as `std/src/...`. And the
//! workspace root itself, which `leakcheck.toml`'s search stops at. A leaf: it imports
//! nothing of the crate.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// Whether `dir` is a workspace root: its `Cargo.toml` has a `[workspace]` table.
pub(crate) fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
}

/// The workspace root of the running test: the nearest workspace root at or above the test
/// crate's directory (cargo's `CARGO_MANIFEST_DIR`, else the working directory, where cargo
/// runs tests), or that directory itself for a package of no workspace.
fn workspace_root() -> Option<&'static Path> {
    static ROOT: LazyLock<Option<PathBuf>> = LazyLock::new(|| {
        let start = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())?;
        let root = start
            .ancestors()
            .find(|dir| is_workspace_root(dir))
            .unwrap_or(&start);
        Some(root.to_path_buf())
    });
    ROOT.as_deref()
}

/// `path` as reports show it.
pub(crate) fn display(path: &Path) -> String {
    if let Some(relative) = workspace_root().and_then(|root| path.strip_prefix(root).ok()) {
        return relative.display().to_string();
    }
    let shown = path.display().to_string();
    // `/rustc/<commit>/library/std/src/...`: the standard library's sources.
    if let Some((_, below)) = shown
        .split_once("/library/")
        .filter(|_| shown.starts_with("/rustc/"))
    {
        return below.to_owned();
    }
    // `~/.cargo/registry/src/<index>-<hash>/tokio-1.54.1/src/...`
    match shown.split_once("/registry/src/") {
        Some((_, below)) => below
            .split_once('/')
            .map_or(below, |(_index, rest)| rest)
            .to_owned(),
        None => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shown_from_the_workspace_root() {
        // This crate's tests run in `leakcheck/`, a member of the repository's workspace.
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/paths.rs");
        assert_eq!(display(&here), "leakcheck/src/paths.rs");
        assert_eq!(
            display(Path::new(
                "/home/u/.cargo/registry/src/index-1/tokio-1.54.1/src/lib.rs"
            )),
            "tokio-1.54.1/src/lib.rs"
        );
        assert_eq!(
            display(Path::new("/rustc/abc/library/std/src/thread/mod.rs")),
            "std/src/thread/mod.rs"
        );
        assert_eq!(display(Path::new("tests/demo.rs")), "tests/demo.rs");
    }
}
