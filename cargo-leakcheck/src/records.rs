//! The JSON lines leak-checked tests write to `LEAKCHECK_REPORT`, read into the types
//! leakcheck writes them from (`leakcheck_schema::record`): from one or more files (one per
//! CI shard), checked line by line, merged in order. Fields and values a later leakcheck
//! adds are ignored.

use std::path::Path;

use crate::error::Error;

pub use leakcheck_schema::record::{Record, SCHEMA_VERSION};

/// A line as it was written, and what it says.
#[derive(Clone, Debug)]
pub struct Line {
    pub text: String,
    pub record: Record,
}

/// Reads the records of every file, in order.
pub fn read_all(files: &[impl AsRef<Path>]) -> Result<Vec<Line>, Error> {
    let mut lines = Vec::new();
    for file in files {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|error| {
            Error::BadReport(format!(
                "cannot read the report file {}: {error}",
                file.display()
            ))
        })?;
        lines.extend(parse(&file.display().to_string(), &text).map_err(Error::BadReport)?);
    }
    Ok(lines)
}

/// The records of one file's text; an error names `name` and the line.
pub fn parse(name: &str, text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |problem: String| format!("{name}:{}: {problem}", index + 1);
        let value: serde_json::Value = serde_json::from_str(line).map_err(|error| {
            at(format!(
                "not a JSON line of a leakcheck report ({error}): {}",
                excerpt(line)
            ))
        })?;
        match value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(version) if version == u64::from(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(at(format!(
                    "a record of schema_version {other}: this cargo-leakcheck reads version \
                     {SCHEMA_VERSION}; use the cargo-leakcheck of the leakcheck release that \
                     wrote it"
                )));
            }
            None => {
                return Err(at(format!(
                    "no schema_version: not a line of a leakcheck report: {}",
                    excerpt(line)
                )));
            }
        }
        let record = serde_json::from_value(value)
            .map_err(|error| at(format!("not a leakcheck record: {error}")))?;
        lines.push(Line {
            text: line.to_owned(),
            record,
        });
    }
    Ok(lines)
}

/// The start of a long line, for an error message.
fn excerpt(line: &str) -> String {
    const SHOWN: usize = 80;
    match line.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}…", &line[..end]),
        None => format!("{line:?}"),
    }
}

/// Writes the lines to `path`, one record a line.
pub fn write(path: &Path, lines: &[Line]) -> Result<(), Error> {
    let text: String = lines
        .iter()
        .map(|line| format!("{}\n", line.text))
        .collect();
    std::fs::write(path, text).map_err(|error| Error::io("write", path, error))
}

/// Appends the lines to `path` (a `LEAKCHECK_REPORT` the user set, which is appended to).
pub fn append(path: &Path, lines: &[Line]) -> Result<(), Error> {
    use std::io::Write;
    let text: String = lines
        .iter()
        .map(|line| format!("{}\n", line.text))
        .collect();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|error| Error::io("append to", path, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = r#"{"schema_version":2,"check":"test","test":"a","outcome":"clean","mode":"fail","test_passed":true,"waited_ms":0,"ended":null,"groups":[],"omitted":null}"#;

    #[test]
    fn reads_lines_and_keeps_their_text() {
        let text = format!("{CLEAN}\n\n{CLEAN}\n");
        let lines = parse("a.jsonl", &text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, CLEAN);
        assert_eq!(lines[0].record.test.as_deref(), Some("a"));
        assert_eq!(
            lines[0].record.outcome,
            leakcheck_schema::record::Outcome::Clean
        );
    }

    #[test]
    fn bad_lines_are_named_by_file_and_line() {
        let cases = [
            (
                format!("{CLEAN}\nnot json\n"),
                "shard.jsonl:2: not a JSON line of a leakcheck report (expected ident",
            ),
            (
                CLEAN.replace("\"schema_version\":2", "\"schema_version\":1"),
                "shard.jsonl:1: a record of schema_version 1: this cargo-leakcheck reads version 2",
            ),
            (
                "{\"hello\":1}".into(),
                "shard.jsonl:1: no schema_version: not a line of a leakcheck report",
            ),
            (
                CLEAN.replace("\"check\":\"test\",", ""),
                "shard.jsonl:1: not a leakcheck record: missing field `check`",
            ),
        ];
        for (text, expected) in cases {
            let error = parse("shard.jsonl", &text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = read_all(&["/nonexistent/shard.jsonl"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error
                .to_string()
                .starts_with("cannot read the report file /nonexistent/shard.jsonl: "),
            "{error}"
        );
    }
}
