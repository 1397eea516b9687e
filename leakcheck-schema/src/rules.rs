//! The one grammar of leakcheck's ignore rules, shared by the three places a rule is written:
//! the `#[leakcheck::test(..)]` attribute (checked at compile time, the error pointing at
//! the argument), `leakcheck::Options` (checked when the rule is added) and `leakcheck.toml`
//! (checked when the file is read, the error naming its line).
//!
//! ```
//! use leakcheck_schema::rules::RuleKind;
//!
//! assert!(RuleKind::Thread.parse("pool-*").is_ok());
//! let error = RuleKind::Spawn.parse("").unwrap_err();
//! assert!(error.to_string().contains("an empty rule would match everything"));
//! ```

use std::fmt;

/// Which kind of ignore rule a string is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RuleKind {
    /// `ignore_thread`: a glob over a thread's full name.
    Thread,
    /// `ignore_spawn`: part of a function path or `file:line` on the spawn path.
    Spawn,
    /// `ignore_top`: part of a function path at the top of a thread's current stack.
    Top,
    /// `ignore_process`: a glob over a child process's program file name or its whole
    /// command line.
    Process,
    /// `ignore_panic`: part of a function path or `file:line` on the spawn path of the
    /// thread a lost panic ended, or part of the panic's location (`file:line:column`).
    Panic,
}

/// A rule, checked. Its `Display` is a line of `leakcheck.toml` (`ignore_thread =
/// "pool-*"`, a TOML basic string, escaped), which reads back as this very rule;
/// [`Rule::attribute`] is the same as a `#[leakcheck::test(..)]` argument.
///
/// ```
/// use leakcheck_schema::rules::Rule;
///
/// let rule = Rule::thread_named("we\"ird\\name-7");
/// assert_eq!(rule.to_string(), r#"ignore_thread = "we\"ird\\name-7""#);
/// assert!(rule.matches_thread("we\"ird\\name-7"));
/// assert!(!rule.matches_thread("we\"ird\\name-8"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// A thread-name glob.
    Thread(glob::Pattern),
    /// A spawn-path substring, never empty.
    Spawn(String),
    /// A current-stack substring, never empty.
    Top(String),
    /// A glob over a child process's program file name (`sleep`) or whole command line
    /// (`sleep 600`).
    Process(glob::Pattern),
    /// A substring of a lost panic's thread's spawn path or of the panic's location, never
    /// empty: it accepts those lost panics, and decides nothing else.
    Panic(String),
}

impl Rule {
    /// The rule that silences a thread of this exact name: its glob characters escaped.
    pub fn thread_named(name: &str) -> Rule {
        Rule::Thread(
            glob::Pattern::new(&glob::Pattern::escape(name)).expect("an escaped name is a glob"),
        )
    }

    /// The rule that silences threads of these names: the name where they are all one, else
    /// a glob over their common start (`worker-*`); `None` when they have none, or a name is
    /// missing.
    pub fn threads_named<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Rule> {
        let names: Vec<&str> = names.into_iter().collect();
        let first = *names.first()?;
        if names.iter().all(|name| *name == first) {
            return Some(Rule::thread_named(first));
        }
        let start = common_start(&names);
        if start.is_empty() {
            return None;
        }
        let pattern = format!("{}*", glob::Pattern::escape(start));
        Some(Rule::Thread(
            glob::Pattern::new(&pattern).expect("an escaped start and a star are a glob"),
        ))
    }

    /// The rule that silences child processes running this program: its file name (the
    /// last part of its path), glob characters escaped.
    ///
    /// ```
    /// use leakcheck_schema::rules::Rule;
    ///
    /// let rule = Rule::program_named("/usr/bin/sleep");
    /// assert_eq!(rule.to_string(), r#"ignore_process = "sleep""#);
    /// assert!(rule.matches_process("/bin/sleep", "sleep 600"));
    /// ```
    pub fn program_named(program: &str) -> Rule {
        let name = program.rsplit('/').next().unwrap_or(program);
        Rule::Process(
            glob::Pattern::new(&glob::Pattern::escape(name)).expect("an escaped name is a glob"),
        )
    }

    /// `ignore_spawn` for a function path (closures stand for their function) or a
    /// `file:line`.
    pub fn spawned_in(place: &str) -> Rule {
        Rule::Spawn(
            place
                .split("::{{closure}}")
                .next()
                .unwrap_or(place)
                .to_owned(),
        )
    }

    /// `ignore_panic` for a function path on the spawn path of a panicking thread (closures
    /// stand for their function) or a panic's `file:line`.
    ///
    /// ```
    /// use leakcheck_schema::rules::Rule;
    ///
    /// let rule = Rule::panics_of("threadpool::spawn_in_pool::{{closure}}");
    /// assert_eq!(rule.to_string(), r#"ignore_panic = "threadpool::spawn_in_pool""#);
    /// ```
    pub fn panics_of(place: &str) -> Rule {
        Rule::Panic(
            place
                .split("::{{closure}}")
                .next()
                .unwrap_or(place)
                .to_owned(),
        )
    }

    /// `ignore_top` for a function path (closures stand for their function).
    pub fn running(function: &str) -> Rule {
        Rule::Top(
            function
                .split("::{{closure}}")
                .next()
                .unwrap_or(function)
                .to_owned(),
        )
    }

    /// Which kind of rule it is.
    pub fn kind(&self) -> RuleKind {
        match self {
            Rule::Thread(_) => RuleKind::Thread,
            Rule::Spawn(_) => RuleKind::Spawn,
            Rule::Top(_) => RuleKind::Top,
            Rule::Process(_) => RuleKind::Process,
            Rule::Panic(_) => RuleKind::Panic,
        }
    }

    /// The pattern or substring, as written.
    pub fn pattern(&self) -> &str {
        match self {
            Rule::Thread(pattern) | Rule::Process(pattern) => pattern.as_str(),
            Rule::Spawn(text) | Rule::Top(text) | Rule::Panic(text) => text,
        }
    }

    /// Whether a thread rule matches this name (`false` for other kinds).
    pub fn matches_thread(&self, name: &str) -> bool {
        match self {
            Rule::Thread(pattern) => pattern.matches(name),
            Rule::Spawn(_) | Rule::Top(_) | Rule::Process(_) | Rule::Panic(_) => false,
        }
    }

    /// Whether a process rule matches a child: its program's file name (the last part of
    /// `program`, a path or a bare name) or its whole command line (`false` for other kinds).
    pub fn matches_process(&self, program: &str, command: &str) -> bool {
        match self {
            Rule::Process(pattern) => {
                let name = program.rsplit('/').next().unwrap_or(program);
                pattern.matches(name) || pattern.matches(command)
            }
            Rule::Thread(_) | Rule::Spawn(_) | Rule::Top(_) | Rule::Panic(_) => false,
        }
    }

    /// The rule as a `#[leakcheck::test(..)]` argument: the pattern as a Rust string literal.
    /// The same text as [`Display`](fmt::Display)'s where the pattern has no control
    /// character.
    pub fn attribute(&self) -> String {
        format!("{} = {:?}", self.kind().key(), self.pattern())
    }

    /// Whether the TOML line and the attribute argument differ (a control character in the
    /// pattern): then a report prints both.
    pub fn needs_attribute_form(&self) -> bool {
        self.pattern().chars().any(char::is_control)
    }

    /// The rule as a report suggests it: the `leakcheck.toml` line, and beside it the
    /// attribute argument where the two differ.
    ///
    /// ```
    /// use leakcheck_schema::rules::Rule;
    ///
    /// assert_eq!(Rule::thread_named("io").suggestion(), r#"ignore_thread = "io""#);
    /// assert_eq!(
    ///     Rule::thread_named("a\tb").suggestion(),
    ///     r#"ignore_thread = "a\tb" (as an attribute: ignore_thread = "a\tb")"#
    /// );
    /// ```
    pub fn suggestion(&self) -> String {
        if self.needs_attribute_form() {
            format!("{self} (as an attribute: {})", self.attribute())
        } else {
            self.to_string()
        }
    }
}

/// `ignore_thread = "pool-*"`: a line of `leakcheck.toml`, the pattern a TOML basic string.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = \"", self.kind().key())?;
        for c in self.pattern().chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\u{:04X}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// The longest start all `names` share, whole characters.
fn common_start<'a>(names: &[&'a str]) -> &'a str {
    let Some((first, rest)) = names.split_first() else {
        return "";
    };
    let mut end = first.len();
    for name in rest {
        end = first
            .char_indices()
            .zip(name.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((at, a), _)| at + a.len_utf8())
            .min(end);
    }
    &first[..end]
}

impl RuleKind {
    /// The kind of rule a key names (`ignore_thread`, ...), if it names one.
    pub fn from_key(key: &str) -> Option<RuleKind> {
        [
            RuleKind::Thread,
            RuleKind::Spawn,
            RuleKind::Top,
            RuleKind::Process,
            RuleKind::Panic,
        ]
        .into_iter()
        .find(|kind| kind.key() == key)
    }

    /// The argument, method and `leakcheck.toml` key that take this kind of rule.
    pub fn key(self) -> &'static str {
        match self {
            RuleKind::Thread => "ignore_thread",
            RuleKind::Spawn => "ignore_spawn",
            RuleKind::Top => "ignore_top",
            RuleKind::Process => "ignore_process",
            RuleKind::Panic => "ignore_panic",
        }
    }

    /// What a rule of this kind looks like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            RuleKind::Thread => "a glob over the thread's name, such as \"pool-*\"",
            RuleKind::Spawn => {
                "part of a function path or file:line, such as \"my_crate::telemetry::start\""
            }
            RuleKind::Top => "part of a function path, such as \"my_crate::pool::park\"",
            RuleKind::Process => {
                "a glob over the program's file name or the whole command line, such as \"sleep\""
            }
            RuleKind::Panic => {
                "part of the panicking thread's spawn path or of the panic's file:line, such as \"threadpool::spawn_in_pool\""
            }
        }
    }

    /// Checks `text` as a rule of this kind.
    ///
    /// ```
    /// use leakcheck_schema::rules::{Rule, RuleKind};
    ///
    /// assert_eq!(
    ///     RuleKind::Top.parse("my_crate::pool::park"),
    ///     Ok(Rule::Top("my_crate::pool::park".into()))
    /// );
    /// assert!(RuleKind::Thread.parse("[").is_err());
    /// ```
    pub fn parse(self, text: &str) -> Result<Rule, RuleError> {
        let error = |problem: String| RuleError {
            kind: self,
            problem,
        };
        match self {
            RuleKind::Thread => glob::Pattern::new(text)
                .map(Rule::Thread)
                .map_err(|glob| error(format!("{text:?} is not a glob ({glob})"))),
            RuleKind::Process if text.trim().is_empty() => {
                Err(error("an empty rule would match nothing".to_owned()))
            }
            RuleKind::Process => glob::Pattern::new(text)
                .map(Rule::Process)
                .map_err(|glob| error(format!("{text:?} is not a glob ({glob})"))),
            // A substring rule that is empty, or only blanks, is contained in every path.
            RuleKind::Spawn | RuleKind::Top | RuleKind::Panic if text.trim().is_empty() => {
                Err(error("an empty rule would match everything".to_owned()))
            }
            RuleKind::Spawn => Ok(Rule::Spawn(text.to_owned())),
            RuleKind::Top => Ok(Rule::Top(text.to_owned())),
            RuleKind::Panic => Ok(Rule::Panic(text.to_owned())),
        }
    }
}

/// Why a string is not a rule of its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    kind: RuleKind,
    problem: String,
}

impl RuleError {
    /// The kind of rule that was asked for.
    pub fn kind(&self) -> RuleKind {
        self.kind
    }
}

/// `` `ignore_top`: an empty rule would match everything: expected part of a function
/// path, such as "my_crate::pool::park" ``.
impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: {}: expected {}",
            self.kind.key(),
            self.problem,
            self.kind.expected()
        )
    }
}

impl std::error::Error for RuleError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string value of a one-line TOML document, as the TOML parser leakcheck reads
    /// `leakcheck.toml` with reads it.
    fn toml_string(line: &str) -> String {
        let table =
            toml::de::DeTable::parse(line).unwrap_or_else(|error| panic!("{line}: {error}"));
        let (_, value) = table.get_ref().iter().next().expect("one key");
        match value.get_ref() {
            toml::de::DeValue::String(text) => text.to_string(),
            other => panic!("{line}: not a string: {other:?}"),
        }
    }

    #[test]
    fn a_thread_rule_is_valid_toml_and_matches_the_name_it_was_made_from() {
        for name in [
            "we\"ird\\name-7501",
            "pool[[]1[]][*][?]-7502",
            "pool[1]*?",
            "naïve-🧵",
            "tab\there\u{1}",
        ] {
            let rule = Rule::thread_named(name);
            assert!(rule.matches_thread(name), "{name}");
            assert!(!rule.matches_thread(&format!("{name}x")), "{name}");
            let line = rule.to_string();
            assert_eq!(toml_string(&line), rule.pattern(), "{line}");
            // And the grammar reads the pattern back as the same rule.
            assert_eq!(RuleKind::Thread.parse(rule.pattern()), Ok(rule.clone()));
            assert_eq!(rule.needs_attribute_form(), name.contains(['\t', '\u{1}']));
        }
    }

    #[test]
    fn names_that_differ_share_a_glob_over_their_start() {
        let rule = Rule::threads_named(["blocking-1", "blocking-2", "blocking-12"]).unwrap();
        assert_eq!(rule.to_string(), "ignore_thread = \"blocking-*\"");
        for name in ["blocking-1", "blocking-2", "blocking-12"] {
            assert!(rule.matches_thread(name));
        }
        assert_eq!(
            Rule::threads_named(["a[1]-x", "a[1]-y"]).unwrap().pattern(),
            "a[[]1[]]-*"
        );
        assert!(Rule::threads_named(["alpha", "beta"]).is_none());
        assert_eq!(
            Rule::threads_named(["same", "same"]),
            Some(Rule::thread_named("same"))
        );
    }

    #[test]
    fn spawn_and_top_rules_stand_for_the_function_of_a_closure() {
        assert_eq!(
            Rule::spawned_in("demo::Pool::start::{{closure}}").to_string(),
            "ignore_spawn = \"demo::Pool::start\""
        );
        assert_eq!(
            Rule::running("pools::leaks::{{closure}}::{{closure}}").attribute(),
            "ignore_top = \"pools::leaks\""
        );
    }

    #[test]
    fn a_process_rule_matches_the_program_s_name_or_the_whole_command_line() {
        let by_name = RuleKind::Process.parse("sleep").unwrap();
        assert!(by_name.matches_process("/usr/bin/sleep", "/usr/bin/sleep 600"));
        assert!(by_name.matches_process("sleep", "sleep 600"));
        assert!(!by_name.matches_process("/usr/bin/sleepy", "sleepy"));
        let by_line = RuleKind::Process.parse("sh -c *").unwrap();
        assert!(by_line.matches_process("/bin/sh", "sh -c 'sleep 600 & exit 0'"));
        assert!(!by_line.matches_thread("sh -c x"));
        let odd = Rule::program_named("./bin/we\"ird[1]");
        assert_eq!(odd.to_string(), r#"ignore_process = "we\"ird[[]1[]]""#);
        assert!(odd.matches_process("./bin/we\"ird[1]", "x"));
        assert_eq!(
            RuleKind::from_key("ignore_process"),
            Some(RuleKind::Process)
        );
        assert!(RuleKind::Process.parse("").is_err());
    }

    #[test]
    fn globs_and_substrings_are_rules() {
        assert!(matches!(
            RuleKind::Thread.parse("metrics-*"),
            Ok(Rule::Thread(_))
        ));
        assert_eq!(
            RuleKind::Spawn.parse("src/lib.rs:12"),
            Ok(Rule::Spawn("src/lib.rs:12".into()))
        );
    }

    #[test]
    fn empty_substrings_and_bad_globs_are_refused_with_what_was_expected() {
        for kind in [RuleKind::Spawn, RuleKind::Top] {
            for empty in ["", "  "] {
                let error = kind.parse(empty).unwrap_err();
                assert_eq!(error.kind(), kind);
                let text = error.to_string();
                assert!(
                    text.starts_with(&format!("`{}`: an empty rule", kind.key())),
                    "{text}"
                );
                assert!(text.contains("expected part of a function path"), "{text}");
            }
        }
        let text = RuleKind::Thread.parse("[").unwrap_err().to_string();
        assert!(
            text.starts_with("`ignore_thread`: \"[\" is not a glob ("),
            "{text}"
        );
        assert!(text.ends_with("expected a glob over the thread's name, such as \"pool-*\""));
    }
}
