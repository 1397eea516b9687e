//! Why `cargo leakcheck` could not do what it was asked, each cause with an exit status of
//! its own, documented in the help text: a CI step can tell a bad command line from a cargo
//! that is not there from a disk that is full.

use std::fmt;
use std::path::PathBuf;

/// A run that could not be done.
#[derive(Debug)]
pub enum Error {
    /// The command line is not understood.
    Usage(String),
    /// A report file cannot be read, or a line of it is not a leakcheck record.
    BadReport(String),
    /// A cargo configuration file of the user's cannot be read.
    BadConfig(String),
    /// cargo cannot be run, or cannot say where the workspace's target directory is.
    Cargo {
        /// What was being done.
        doing: String,
        /// What cargo or the system said.
        why: String,
    },
    /// A file or directory cannot be read or written by cargo-leakcheck itself.
    Io {
        /// What, and where.
        doing: String,
        source: std::io::Error,
    },
}

/// Exit statuses, beside 0 (nothing leaked or failed), 1 (a test leaked or failed) and
/// cargo's own when cargo fails.
pub mod status {
    /// Bad input: the command line, a report file, a cargo configuration file.
    pub const BAD_INPUT: u8 = 2;
    /// cargo could not be run, or could not tell the target directory.
    pub const CARGO: u8 = 3;
    /// A file or directory could not be read or written (the target directory, `--json`,
    /// `--summary-md`, `LEAKCHECK_REPORT`).
    pub const IO: u8 = 4;
}

impl Error {
    /// The process's exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::BadReport(_) | Error::BadConfig(_) => status::BAD_INPUT,
            Error::Cargo { .. } => status::CARGO,
            Error::Io { .. } => status::IO,
        }
    }

    /// An I/O error while `doing` something to `path`.
    pub fn io(doing: &str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            doing: format!("{doing} {}", path.into().display()),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(why) | Error::BadReport(why) | Error::BadConfig(why) => f.write_str(why),
            Error::Cargo { doing, why } => write!(f, "{doing}: {why}"),
            Error::Io { doing, source } => write!(f, "cannot {doing}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_has_its_own_status() {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let cases = [
            (Error::Usage("u".into()), 2),
            (Error::BadReport("r".into()), 2),
            (Error::BadConfig("c".into()), 2),
            (
                Error::Cargo {
                    doing: "cannot run cargo".into(),
                    why: "not found".into(),
                },
                3,
            ),
            (Error::io("write", "/x/summary.md", io()), 4),
        ];
        for (error, status) in cases {
            assert_eq!(error.exit_code(), status, "{error}");
        }
        assert_eq!(
            Error::io("write", "/x/summary.md", io()).to_string(),
            "cannot write /x/summary.md: permission denied"
        );
    }
}
