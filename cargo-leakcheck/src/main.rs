//! `cargo leakcheck`: runs a test suite (`cargo test`, or `cargo nextest run`) with
//! leakcheck's task hooks on, in a target directory of its own, collects every leak-checked
//! test's JSON record, and prints one summary of the suite's leaks by spawn site;
//! `cargo leakcheck report FILE...` does the same for records saved by CI shards.
//!
//! Modules, one concern each: [`args`] the command line; [`cargo_config`] and [`rustflags`]
//! the user's rustflags plus `--cfg tokio_unstable`; [`cargo`] the run; [`records`] the JSON
//! lines; [`summary`] their grouping by spawn site; [`render`] the text and Markdown;
//! [`error`] why a run could not be done, with its exit status.

mod args;
mod binary;
mod cargo;
mod cargo_config;
mod error;
mod nextest_config;
mod preload;
mod records;
mod render;
mod runner;
mod rustflags;
mod summary;
mod toolchain;

use std::ffi::OsString;
use std::process::ExitCode;

use args::{Command, Options};
use error::Error;
use records::Line;
use summary::Summary;

/// Exit status when leaks or failures are found (and cargo itself did not fail).
const FOUND: u8 = 1;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args
        .first()
        .is_some_and(|first| first == runner::RUNNER_ARG)
    {
        // cargo's target runner for a test binary: `exec`s it, returning only on failure.
        let error = runner::run(&args[1..]);
        eprintln!("error: {error}");
        return ExitCode::from(error.exit_code());
    }
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(args: Vec<OsString>) -> Result<ExitCode, Error> {
    let args::Invocation { command, options } = args::parse(args)?;
    match command {
        Command::Help => {
            println!("{}", args::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("cargo-leakcheck {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { files } => {
            let lines = records::read_all(&files)?;
            let summary = summarize(&lines, &options, "")?;
            Ok(verdict(&summary, &options))
        }
        Command::Run {
            tool,
            cargo_args,
            test_args,
        } => {
            let ran = cargo::Run {
                tool,
                cargo_args: &cargo_args,
                test_args: test_args.as_deref(),
                warn: options.warn,
            }
            .run()?;
            let lines = records::read_all(&[&ran.report]);
            let mut notes = runner::State(&ran.state).notes();
            notes.extend(ran.notes);
            let _ = std::fs::remove_file(&ran.report);
            let _ = std::fs::remove_dir_all(&ran.state);
            let lines = lines?;
            // A `LEAKCHECK_REPORT` of the user's own gets the records too, as if the tests
            // had appended to it.
            if let Some(path) = std::env::var_os("LEAKCHECK_REPORT").filter(|p| !p.is_empty()) {
                records::append(path.as_ref(), &lines)?;
            }
            let built_only = cargo_args.iter().any(|arg| arg == "--no-run");
            if lines.is_empty() && (built_only || !ran.status.success()) {
                // Nothing was meant to run, or the build failed: cargo has said why.
                write_files(&lines, &options)?;
                return Ok(exit_code(ran.status));
            }
            let summary = summarize(&lines, &options, "\n")?;
            for note in notes {
                println!("leakcheck: {note}");
            }
            Ok(if ran.status.success() {
                verdict(&summary, &options)
            } else {
                exit_code(ran.status)
            })
        }
    }
}

/// Prints the summary after `lead`, and writes the files the options ask for.
fn summarize(lines: &[Line], options: &Options, lead: &str) -> Result<Summary, Error> {
    let summary = write_files(lines, options)?;
    print!("{lead}{}", render::text(&summary, options.warn));
    Ok(summary)
}

/// Writes the files the options ask for; the summary they are made from.
fn write_files(lines: &[Line], options: &Options) -> Result<Summary, Error> {
    let summary = summary::summarize(lines.iter().map(|line| &line.record));
    if let Some(path) = &options.json {
        records::write(path, lines)?;
    }
    if let Some(path) = &options.summary_md {
        std::fs::write(path, render::markdown(&summary, options.warn))
            .map_err(|error| Error::io("write", path, error))?;
    }
    Ok(summary)
}

fn verdict(summary: &Summary, options: &Options) -> ExitCode {
    if summary.fails(options.warn) {
        ExitCode::from(FOUND)
    } else {
        ExitCode::SUCCESS
    }
}

/// cargo's own status; 101 (cargo's for a failed test) if it was ended by a signal.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    let code = status.code().unwrap_or(101);
    ExitCode::from(u8::try_from(code).unwrap_or(101))
}
