//! A child's command line as reports show it: one string, the same in the text and the
//! JSON `command`. Arguments are joined by single spaces; an argument that holds whitespace
//! (or is empty) is put in single quotes; a control character is written as Rust escapes
//! it (`\n`), so the string stays one line; the whole is cut at 200 bytes, on a character
//! boundary, ending in `…`.

use crate::registry::ProcessOrigin;

/// The most bytes a command line is shown with, `…` included.
pub(crate) const MAX_BYTES: usize = 200;

/// The command line of `args` (the program's `argv`).
pub(crate) fn command_line<'a>(args: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (at, arg) in args.into_iter().enumerate() {
        if at > 0 {
            line.push(' ');
        }
        let quote = arg.is_empty() || arg.chars().any(char::is_whitespace);
        if quote {
            line.push('\'');
        }
        for c in arg.chars() {
            match c {
                '\n' => line.push_str("\\n"),
                '\t' if !quote => line.push_str("\\t"),
                '\t' => line.push('\t'),
                c if c.is_control() => line.extend(c.escape_default()),
                c => line.push(c),
            }
        }
        if quote {
            line.push('\'');
        }
        if line.len() > MAX_BYTES {
            break;
        }
    }
    cut(line)
}

/// `line`, cut to [`MAX_BYTES`] with `…` when longer.
fn cut(mut line: String) -> String {
    if line.len() <= MAX_BYTES {
        return line;
    }
    let mut end = MAX_BYTES - '…'.len_utf8();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push('…');
    line
}

/// The command line `origin` was started with: the spawn's arguments, or what a fork
/// child noted it `exec`ed. For when `/proc` has none left (a zombie).
pub(crate) fn as_started(origin: &ProcessOrigin) -> Option<String> {
    origin.command.as_deref().map(str::to_owned).or_else(|| {
        Some(command_line(
            origin.exec_noted()?.args.iter().map(String::as_str),
        ))
    })
}

/// The program `origin` was started with: the spawn's path or file name, or a fork child's
/// `exec`'s.
pub(crate) fn program_as_started(origin: &ProcessOrigin) -> Option<String> {
    origin
        .program
        .as_deref()
        .map(str::to_owned)
        .or_else(|| Some(origin.exec_noted()?.program))
}

/// The command line of a `/proc/<pid>/cmdline` (arguments each ended by a NUL).
pub(crate) fn from_cmdline(raw: &[u8]) -> Option<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return None;
    }
    let args: Vec<String> = raw
        .split(|&byte| byte == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    Some(command_line(args.iter().map(String::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_with_whitespace_are_quoted_and_others_are_not() {
        assert_eq!(command_line(["sleep", "600"]), "sleep 600");
        assert_eq!(
            command_line(["sh", "-c", "sleep 600 & exit 0"]),
            "sh -c 'sleep 600 & exit 0'"
        );
        assert_eq!(command_line(["printf", ""]), "printf ''");
        assert_eq!(command_line(["echo", "a\nb"]), "echo 'a\\nb'");
        assert_eq!(command_line(["echo", "bell\u{7}"]), "echo bell\\u{7}");
    }

    #[test]
    fn a_long_command_line_is_cut_at_200_bytes_on_a_character() {
        let long = "é".repeat(300);
        let line = command_line(["echo", &long]);
        assert!(line.len() <= MAX_BYTES, "{}", line.len());
        assert!(line.ends_with('…'));
        assert!(line.starts_with("echo éé"));
        let exact = "x".repeat(MAX_BYTES - 5);
        assert_eq!(command_line(["echo", &exact]).len(), MAX_BYTES);
    }

    #[test]
    fn proc_s_cmdline_reads_as_its_arguments() {
        assert_eq!(
            from_cmdline(b"sh\0-c\0sleep 600 & exit 0\0").as_deref(),
            Some("sh -c 'sleep 600 & exit 0'")
        );
        assert_eq!(from_cmdline(b""), None);
    }
}
