//! The command line: which command, cargo-leakcheck's own options, and everything else, which
//! goes to cargo untouched. Only three options are cargo-leakcheck's; every other argument
//! is cargo's or the test binaries', so they are picked out by name and the rest is passed
//! on in order, as written (an argument parser would have to know every option of cargo and
//! nextest to pass them through intact).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::Error;

/// How to run the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `cargo test`
    Test,
    /// `cargo nextest run`
    Nextest,
}

/// What was asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the suite with `tool`: `cargo_args` before `--`, `test_args` after it (`None`
    /// without a `--`).
    Run {
        tool: Tool,
        cargo_args: Vec<OsString>,
        test_args: Option<Vec<OsString>>,
    },
    /// Merge these JSON report files and summarise them.
    Report {
        files: Vec<PathBuf>,
    },
    Help,
    Version,
}

/// cargo-leakcheck's own options.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `--warn`: leaks are reported, not failed.
    pub warn: bool,
    /// `--json PATH`: write the merged records.
    pub json: Option<PathBuf>,
    /// `--summary-md PATH`: write the summary as Markdown.
    pub summary_md: Option<PathBuf>,
}

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub options: Options,
}

pub const USAGE: &str = "\
Runs a test suite with every test binary leak-checked, then prints its leaks by spawn site.
A binary that does not link leakcheck gets it preloaded (threads, child processes, lost
panics; no edit, no rebuild, your own target directory). Where a crate uses leakcheck's
attribute, the suite is built with tokio's task hooks (--cfg tokio_unstable, added to your
own rustflags) in its own target directory (target/leakcheck).

Usage:
    cargo leakcheck [OPTIONS] [CARGO TEST ARGS...] [-- TEST BINARY ARGS...]
    cargo leakcheck [OPTIONS] nextest [CARGO NEXTEST RUN ARGS...] [-- TEST BINARY ARGS...]
    cargo leakcheck [OPTIONS] report FILE...

Options:
    --warn              report leaks without failing on them (test failures still fail)
    --json PATH         write the merged JSON records (one per line) to PATH
    --summary-md PATH   write the summary as Markdown to PATH (a CI job summary page)
    -h, --help          print this help
    -V, --version       print the version

Exit status: 0 when no test leaked or failed; 1 when one leaked (without --warn) or a
report's test failed; cargo's own status when cargo failed; 2 on bad input (the command
line, a report file, a cargo config file); 3 when cargo could not be run (or could not tell
the target directory); 4 when a file could not be written (the target directory, --json,
--summary-md, LEAKCHECK_REPORT).
To filter tests named `nextest` or `report`, put the filter after `--`.";

/// Parses the arguments after the program's name. cargo runs `cargo-leakcheck leakcheck
/// ARGS...` for `cargo leakcheck ARGS...`; the `leakcheck` is skipped.
pub fn parse(args: Vec<OsString>) -> Result<Invocation, Error> {
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|first| first == "leakcheck") {
        args.next();
    }
    let mut options = Options::default();
    let mut rest = Vec::new();
    let mut test_args = None;
    let mut help = false;
    let mut version = false;
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            rest.push(arg);
            continue;
        };
        match text {
            "--" => {
                test_args = Some(args.by_ref().collect());
                break;
            }
            "--warn" => options.warn = true,
            "-h" | "--help" => help = true,
            "-V" | "--version" => version = true,
            _ => {
                if let Some(path) = path_option(text, "--json", &mut args)? {
                    once(&mut options.json, path, "--json")?;
                } else if let Some(path) = path_option(text, "--summary-md", &mut args)? {
                    once(&mut options.summary_md, path, "--summary-md")?;
                } else {
                    rest.push(arg);
                }
            }
        }
    }
    let command = if help {
        Command::Help
    } else if version {
        Command::Version
    } else {
        command(rest, test_args)?
    };
    Ok(Invocation { command, options })
}

fn command(mut rest: Vec<OsString>, test_args: Option<Vec<OsString>>) -> Result<Command, Error> {
    let first = rest.first().and_then(|first| first.to_str());
    let tool = match first {
        Some("report") => {
            rest.remove(0);
            return report(rest, test_args.unwrap_or_default());
        }
        Some("nextest") => {
            rest.remove(0);
            Tool::Nextest
        }
        _ => Tool::Test,
    };
    Ok(Command::Run {
        tool,
        cargo_args: rest,
        test_args,
    })
}

/// `report FILE...`: every argument is a file; after `--`, even one that starts with `-`.
fn report(files: Vec<OsString>, after_dashes: Vec<OsString>) -> Result<Command, Error> {
    if let Some(option) = files
        .iter()
        .find(|file| file.to_str().is_some_and(|file| file.starts_with('-')))
    {
        return Err(Error::Usage(format!(
            "unknown option `{}` for `cargo leakcheck report`: expected --warn, --json PATH, \
             --summary-md PATH, and report files (a file whose name starts with `-` goes after `--`)",
            option.to_string_lossy()
        )));
    }
    let files: Vec<PathBuf> = files
        .into_iter()
        .chain(after_dashes)
        .map(PathBuf::from)
        .collect();
    if files.is_empty() {
        return Err(Error::Usage(
            "`cargo leakcheck report` needs the report files to merge: \
             cargo leakcheck report FILE..."
                .into(),
        ));
    }
    Ok(Command::Report { files })
}

/// Sets an option that is given once: a second one is refused, rather than the last one
/// silently winning.
fn once(slot: &mut Option<PathBuf>, path: PathBuf, name: &str) -> Result<(), Error> {
    match slot {
        Some(first) => Err(Error::Usage(format!(
            "{name} is given twice ({} and {}): it takes one file",
            first.display(),
            path.display()
        ))),
        None => {
            *slot = Some(path);
            Ok(())
        }
    }
}

/// The value of `--name PATH` or `--name=PATH` if `arg` is that option.
fn path_option(
    arg: &str,
    name: &str,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<Option<PathBuf>, Error> {
    let missing = || Error::Usage(format!("{name} needs a file path: {name} PATH"));
    if arg == name {
        let value = args.next().ok_or_else(missing)?;
        if value.is_empty() || value == "--" {
            return Err(missing());
        }
        return Ok(Some(PathBuf::from(value)));
    }
    match arg
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
    {
        Some("") => Err(missing()),
        Some(value) => Ok(Some(PathBuf::from(value))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Invocation, String> {
        parse(words.split_whitespace().map(OsString::from).collect()).map_err(|error| {
            assert_eq!(error.exit_code(), 2, "{error}");
            error.to_string()
        })
    }

    fn os(words: &str) -> Vec<OsString> {
        words.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn cargo_test_arguments_pass_through_in_order() {
        let invocation =
            parse_words("leakcheck -p app --warn --test suite --json out.jsonl -- --nocapture")
                .unwrap();
        assert_eq!(
            invocation.command,
            Command::Run {
                tool: Tool::Test,
                cargo_args: os("-p app --test suite"),
                test_args: Some(os("--nocapture")),
            }
        );
        assert!(invocation.options.warn);
        assert_eq!(invocation.options.json, Some(PathBuf::from("out.jsonl")));
    }

    #[test]
    fn nextest_is_the_first_argument_after_our_options() {
        let invocation =
            parse_words("leakcheck --summary-md=s.md nextest --partition count:1/2").unwrap();
        assert_eq!(
            invocation.command,
            Command::Run {
                tool: Tool::Nextest,
                cargo_args: os("--partition count:1/2"),
                test_args: None,
            }
        );
        assert_eq!(invocation.options.summary_md, Some(PathBuf::from("s.md")));
        // Anywhere else it is a test filter for cargo test.
        let filter = parse_words("leakcheck -p app nextest").unwrap();
        assert!(matches!(
            filter.command,
            Command::Run {
                tool: Tool::Test,
                ..
            }
        ));
    }

    #[test]
    fn everything_after_dashes_goes_to_the_test_binaries() {
        let invocation = parse_words("leakcheck -- --warn --json").unwrap();
        assert_eq!(invocation.options, Options::default());
        assert_eq!(
            invocation.command,
            Command::Run {
                tool: Tool::Test,
                cargo_args: Vec::new(),
                test_args: Some(os("--warn --json")),
            }
        );
    }

    #[test]
    fn the_subcommand_name_is_optional() {
        assert_eq!(
            parse_words("report a.jsonl"),
            parse_words("leakcheck report a.jsonl")
        );
    }

    #[test]
    fn report_takes_files() {
        let invocation =
            parse_words("leakcheck report --warn a.jsonl b.jsonl -- -c.jsonl").unwrap();
        assert_eq!(
            invocation.command,
            Command::Report {
                files: ["a.jsonl", "b.jsonl", "-c.jsonl"]
                    .map(PathBuf::from)
                    .to_vec()
            }
        );
        assert!(invocation.options.warn);
    }

    #[test]
    fn bad_input_says_what_was_expected() {
        let cases = [
            (
                "leakcheck report --wran a.jsonl",
                "unknown option `--wran` for `cargo leakcheck report`: expected --warn",
            ),
            (
                "leakcheck report",
                "`cargo leakcheck report` needs the report files to merge",
            ),
            ("leakcheck --json", "--json needs a file path: --json PATH"),
            ("leakcheck --json -- x", "--json needs a file path"),
            ("leakcheck --summary-md=", "--summary-md needs a file path"),
            (
                "leakcheck --json a.jsonl --json=b.jsonl",
                "--json is given twice (a.jsonl and b.jsonl): it takes one file",
            ),
            (
                "leakcheck --summary-md a.md report x.jsonl --summary-md b.md",
                "--summary-md is given twice",
            ),
        ];
        for (words, expected) in cases {
            let error = parse_words(words).unwrap_err();
            assert!(error.contains(expected), "{words}: {error}");
        }
    }

    #[test]
    fn the_help_text_is_pinned() {
        insta::assert_snapshot!(USAGE);
    }

    #[test]
    fn help_and_version() {
        assert_eq!(
            parse_words("leakcheck --help").unwrap().command,
            Command::Help
        );
        assert_eq!(
            parse_words("leakcheck nextest -h").unwrap().command,
            Command::Help
        );
        assert_eq!(
            parse_words("leakcheck -V").unwrap().command,
            Command::Version
        );
        // After `--`, the test binaries' own.
        assert!(matches!(
            parse_words("leakcheck -- --help").unwrap().command,
            Command::Run { .. }
        ));
    }
}
