//! The target runner `cargo leakcheck` gives cargo (and nextest) for the test binaries:
//! `cargo-leakcheck __runner OPTIONS -- [USER RUNNER...] BINARY ARGS...`. It decides, per
//! binary, how leakcheck reaches it, notes that in the run's state directory, and `exec`s the
//! binary (through the user's own runner, if the workspace had one):
//!
//! - a binary that links leakcheck checks itself: it only gets the run's records file and
//!   mode, as `cargo leakcheck` has always given them;
//! - any other dynamically linked binary gets the preloaded library in `LD_PRELOAD`, with
//!   the library's settings, and, in `LEAKCHECK_PRELOAD_RESTORE`, how to put every variable
//!   it touched back for the programs the test starts;
//! - a static binary, which no loader preloads into, and doctests, run as they are; the
//!   summary says which went unchecked.
//!
//! The runner only ever adds to a binary's environment; nothing of it reaches cargo, rustc
//! or build scripts.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binary::Binary;
use crate::error::Error;

/// The first argument that makes `cargo-leakcheck` the runner.
pub const RUNNER_ARG: &str = "__runner";

/// What `cargo leakcheck` tells the runner, on its command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The preloaded library.
    pub library: PathBuf,
    /// The file the tests append their JSON records to.
    pub report: PathBuf,
    /// The run's state directory (see [`State`]).
    pub state: PathBuf,
    /// `LEAKCHECK=warn` for the tests.
    pub warn: bool,
    /// The user's own runner, which the binary is started through.
    pub chain: Vec<String>,
}

impl Settings {
    /// The runner's words for cargo's `target.<triple>.runner`, with `program` (this
    /// executable) first; cargo appends the binary and its arguments.
    pub fn words(&self, program: &Path) -> Vec<String> {
        let mut words = vec![
            program.display().to_string(),
            RUNNER_ARG.to_owned(),
            "--library".to_owned(),
            self.library.display().to_string(),
            "--report".to_owned(),
            self.report.display().to_string(),
            "--state".to_owned(),
            self.state.display().to_string(),
            "--chain".to_owned(),
            self.chain.len().to_string(),
        ];
        if self.warn {
            words.push("--warn".to_owned());
        }
        words.push("--".to_owned());
        words.extend(self.chain.iter().cloned());
        words
    }

    /// Parses [`Settings::words`] after the program and [`RUNNER_ARG`]; the binary and its
    /// arguments are what follows.
    fn parse(args: &[OsString]) -> Result<(Settings, &[OsString]), Error> {
        let bad = |why: &str| Error::Usage(format!("cargo-leakcheck {RUNNER_ARG}: {why}"));
        let mut settings = Settings::default();
        let mut chain = 0usize;
        let mut at = 0;
        while at < args.len() {
            let arg = args[at].to_str().unwrap_or_default();
            let value = || {
                args.get(at + 1)
                    .ok_or_else(|| bad(&format!("{arg} needs a value")))
            };
            match arg {
                "--" => {
                    at += 1;
                    break;
                }
                "--library" => settings.library = value()?.into(),
                "--report" => settings.report = value()?.into(),
                "--state" => settings.state = value()?.into(),
                "--chain" => {
                    chain = value()?
                        .to_str()
                        .and_then(|count| count.parse().ok())
                        .ok_or_else(|| bad("--chain needs a count"))?;
                }
                "--warn" => {
                    settings.warn = true;
                    at += 1;
                    continue;
                }
                other => return Err(bad(&format!("unexpected argument {other:?}"))),
            }
            at += 2;
        }
        let rest = &args[at.min(args.len())..];
        if rest.len() <= chain {
            return Err(bad("no test binary to run"));
        }
        settings.chain = rest[..chain]
            .iter()
            .map(|word| word.to_string_lossy().into_owned())
            .collect();
        Ok((settings, &rest[chain..]))
    }
}

/// The run's state directory: what the runner did with each binary, for the summary.
/// Each fact is an empty file named after the binary, in a directory per fact.
pub struct State<'a>(pub &'a Path);

/// Binaries the preloaded library was meant to reach.
const PRELOADED: &str = "preloaded";
/// Binaries whose preloaded library's constructor ran.
const LOADED: &str = "loaded";
/// Binaries no loader preloads into.
const STATIC: &str = "static";
/// Binaries that use tokio without linking leakcheck.
const TOKIO: &str = "tokio";
/// Doctests, run as they are.
const DOCTESTS: &str = "doctests";
/// The cache of what each binary is.
const BINARIES: &str = "binaries";

impl State<'_> {
    fn note(&self, fact: &str, binary: &str) {
        let dir = self.0.join(fact);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::File::create(dir.join(binary));
    }

    fn names(&self, fact: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.0.join(fact))
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// What the run left unchecked or checked only in part, one line each, for the end of
    /// the summary.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let loaded = self.names(LOADED);
        let missed: Vec<String> = self
            .names(PRELOADED)
            .into_iter()
            .filter(|binary| !loaded.contains(binary))
            .collect();
        if !missed.is_empty() {
            notes.push(format!(
                "not checked: {} (started through a wrapper that dropped LD_PRELOAD, such as \
                 sudo, or not through cargo's runner: add leakcheck to the crate, and \
                 leakcheck::verify_test_main!() or #[leakcheck::test], to check it)",
                missed.join(", ")
            ));
        }
        let statics = self.names(STATIC);
        if !statics.is_empty() {
            notes.push(format!(
                "not checked: {} (statically linked: no library can be preloaded into it; \
                 add leakcheck to the crate to check it)",
                statics.join(", ")
            ));
        }
        let doctests = self.names(DOCTESTS);
        if !doctests.is_empty() {
            notes.push(format!(
                "doctests ran unchecked ({} of them): leakcheck checks test binaries, not \
                 the programs rustdoc builds for examples",
                doctests.len()
            ));
        }
        let tokio = self.names(TOKIO);
        if !tokio.is_empty() {
            notes.push(format!(
                "tokio tasks are not checked in {} (only OS threads, child processes and \
                 lost panics are, without the attribute): `cargo add --dev leakcheck` and \
                 #[leakcheck::test] in place of #[tokio::test] checks a test's tasks too",
                tokio.join(", ")
            ));
        }
        notes
    }
}

/// The runner: decides how leakcheck reaches the binary and `exec`s it. Returns only if it
/// could not be started.
pub fn run(args: &[OsString]) -> Error {
    let (settings, command) = match Settings::parse(args) {
        Ok(parsed) => parsed,
        Err(error) => return error,
    };
    let binary_path = Path::new(&command[0]);
    let name = binary_name(binary_path);
    let state = State(&settings.state);
    // Through the user's runner, if any: the binary becomes one of its arguments.
    let mut run = match settings.chain.split_first() {
        Some((runner, runner_args)) => {
            let mut run = Command::new(runner);
            run.args(runner_args).args(command);
            run
        }
        None => {
            let mut run = Command::new(&command[0]);
            run.args(&command[1..]);
            run
        }
    };
    if is_doctest(binary_path) {
        state.note(DOCTESTS, &name);
        return exec(run, binary_path);
    }
    let binary = Binary::read_cached(binary_path, &settings.state.join(BINARIES));
    if binary.is_some_and(|binary| !binary.dynamic) {
        state.note(STATIC, &name);
        return exec(run, binary_path);
    }
    let mut restore = Restore::default();
    restore.set(&mut run, "LEAKCHECK_REPORT", settings.report.as_os_str());
    if settings.warn {
        restore.set(&mut run, "LEAKCHECK", OsStr::new("warn"));
    }
    if binary.is_some_and(|binary| binary.links_leakcheck) {
        // It checks itself, as it always has under `cargo leakcheck`: records and mode
        // only, which its children inherit as before.
        return exec(run, binary_path);
    }
    if binary.is_some_and(|binary| binary.uses_tokio) {
        state.note(TOKIO, &name);
    }
    state.note(PRELOADED, &name);
    let loaded = settings.state.join(LOADED);
    let _ = std::fs::create_dir_all(&loaded);
    let mut preload = settings.library.clone().into_os_string();
    if let Some(theirs) = std::env::var_os("LD_PRELOAD").filter(|theirs| !theirs.is_empty()) {
        preload.push(" ");
        preload.push(theirs);
    }
    restore.set(&mut run, "LD_PRELOAD", &preload);
    restore.set(
        &mut run,
        "LEAKCHECK_PRELOAD_LOADED",
        loaded.join(&name).as_os_str(),
    );
    // Through a runner of the user's, the library loads into that first: it waits for the
    // binary named here.
    run.env("LEAKCHECK_PRELOAD_TARGET", binary_path);
    run.env("LEAKCHECK_PRELOAD_RESTORE", restore.encoded());
    exec(run, binary_path)
}

/// The variables the runner sets, and what each was before, for the preloaded library to
/// put back: `NAME=value`, or `NAME` where it was not set, joined by 0x1f.
#[derive(Default)]
struct Restore(Vec<u8>);

impl Restore {
    fn set(&mut self, command: &mut Command, name: &str, value: &OsStr) {
        if !self.0.is_empty() {
            self.0.push(0x1f);
        }
        self.0.extend_from_slice(name.as_bytes());
        if let Some(before) = std::env::var_os(name) {
            self.0.push(b'=');
            self.0.extend_from_slice(before.as_bytes());
        }
        command.env(name, value);
    }

    fn encoded(&self) -> OsString {
        OsString::from_vec(self.0.clone())
    }
}

/// The binary's name in the state directory and the summary: its file name without the
/// hash cargo adds (`plain-0a1b2c3d4e5f6a7b` is `plain`).
fn binary_name(path: &Path) -> String {
    let file = path.file_name().map_or_else(
        || "test".to_owned(),
        |name| name.to_string_lossy().into_owned(),
    );
    match file.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_owned()
        }
        _ => file,
    }
}

/// Whether `path` is a doctest rustdoc built (`rust_out`, in a `rustdoctest` directory).
fn is_doctest(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "rust_out")
        || path.components().any(|part| {
            part.as_os_str()
                .to_string_lossy()
                .starts_with("rustdoctest")
        })
}

/// Replaces this process with `command`; the error if it could not.
fn exec(mut command: Command, binary: &Path) -> Error {
    let error = command.exec();
    Error::Cargo {
        doing: format!("cannot run the test binary {}", binary.display()),
        why: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_reads_back_the_words_it_gives_cargo() {
        let settings = Settings {
            library: "/c/lib.so".into(),
            report: "/t/r.jsonl".into(),
            state: "/t/state".into(),
            warn: true,
            chain: vec!["qemu-x".into(), "-L".into(), "/sys".into()],
        };
        let mut words: Vec<OsString> = settings
            .words(Path::new("/bin/cargo-leakcheck"))
            .into_iter()
            .skip(2)
            .map(OsString::from)
            .collect();
        words.extend(["/t/deps/a-1", "--exact", "x"].map(OsString::from));
        let (parsed, command) = Settings::parse(&words).unwrap();
        assert_eq!(parsed, settings);
        assert_eq!(command, ["/t/deps/a-1", "--exact", "x"].map(OsString::from));
        assert!(Settings::parse(&words[..words.len() - 3]).is_err());
    }

    #[test]
    fn binaries_are_named_without_cargo_s_hash() {
        assert_eq!(
            binary_name(Path::new("/t/deps/plain-0a1b2c3d4e5f6a7b")),
            "plain"
        );
        assert_eq!(
            binary_name(Path::new("/t/deps/my-tests-0a1b2c3d4e5f6a7b")),
            "my-tests"
        );
        assert_eq!(binary_name(Path::new("/t/debug/my-tool")), "my-tool");
    }

    #[test]
    fn doctests_are_told_by_their_place() {
        assert!(is_doctest(Path::new("/tmp/rustdoctestAbc/rust_out")));
        assert!(is_doctest(Path::new("/tmp/rustdoctest1/x/doctest_bundle")));
        assert!(!is_doctest(Path::new("/w/target/debug/deps/plain-0a1b")));
    }
}
