//! The summary as text for the terminal and a CI log, and as Markdown for a CI job summary
//! page. A clean suite is one line; a leaky one is a paragraph per spawn site, then the
//! totals.

use std::fmt::Write;

use leakcheck_schema::record::Kind;
use leakcheck_schema::rules::Rule;

use crate::summary::{Site, Summary};

/// Test names listed per site before the rest are counted.
const TESTS_LISTED: usize = 10;
/// Thread names shown per site.
const NAMES_LISTED: usize = 3;

/// The text summary, ending with a newline.
pub fn text(summary: &Summary, warn: bool) -> String {
    let mut out = String::new();
    if !summary.sites.is_empty() {
        out.push_str("leakcheck: leaks across the suite, by spawn site\n\n");
    }
    for site in &summary.sites {
        let _ = writeln!(out, "{}:", headline(site));
        for test in site.tests.iter().take(TESTS_LISTED) {
            let _ = writeln!(out, "    {test}");
        }
        if site.tests.len() > TESTS_LISTED {
            let _ = writeln!(out, "    … and {} more", site.tests.len() - TESTS_LISTED);
        }
        for panic in site.panics.iter().take(NAMES_LISTED) {
            let _ = writeln!(out, "  panicked: {panic}");
        }
        let rules = rules(site);
        if !rules.is_empty() {
            let _ = writeln!(out, "  in leakcheck.toml: {}", rules.join("  or  "));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "leakcheck: {}", totals(summary, warn));
    out
}

/// The summary in Markdown.
pub fn markdown(summary: &Summary, warn: bool) -> String {
    let mut out = format!("## leakcheck\n\n{}.\n", totals(summary, warn));
    if summary.sites.is_empty() {
        return out;
    }
    out.push_str(
        "\n| leaked | spawned at | activity | tests | to ignore, in `leakcheck.toml` |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for site in &summary.sites {
        let mut tests: Vec<String> = site
            .tests
            .iter()
            .take(TESTS_LISTED)
            .map(|test| code(test))
            .collect();
        if site.tests.len() > TESTS_LISTED {
            tests.push(format!("and {} more", site.tests.len() - TESTS_LISTED));
        }
        let mut leaked = count(site.leaks, kind_noun(site.kind));
        if !site.names.is_empty() || !site.commands.is_empty() {
            leaked = format!("{leaked} {}", code(&names(site)));
        }
        for panic in site.panics.iter().take(NAMES_LISTED) {
            leaked = format!("{leaked}, panicked: {panic}");
        }
        let rules: Vec<String> = rules(site).iter().map(|rule| code(rule)).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&leaked),
            site.location.as_deref().map_or("unknown".into(), code),
            activity(site).unwrap_or_default(),
            cell(&format!("{}: {}", site.tests.len(), tests.join(", "))),
            cell(&rules.join(" or ")),
        );
    }
    out
}

/// `2 tasks spawned at pool/src/lib.rs:19, active, in 2 tests`
fn headline(site: &Site) -> String {
    let mut line = count(site.leaks, kind_noun(site.kind));
    if !site.names.is_empty() || !site.commands.is_empty() {
        let _ = write!(line, " {}", names(site));
    }
    match &site.location {
        Some(location) => {
            let _ = write!(line, " spawned at {location}");
        }
        None if site.kind == Kind::UntrackedTasks => {
            line.push_str(" with no spawn site (counted without tokio's task hooks)");
        }
        None => line.push_str(" with no known spawn site"),
    }
    if let Some(activity) = activity(site) {
        let _ = write!(line, ", {activity}");
    }
    let _ = write!(line, ", in {}", count(site.tests.len() as u64, "test"));
    line
}

/// The site's rules as `leakcheck.toml` lines, with the attribute form beside one whose
/// pattern has a control character.
fn rules(site: &Site) -> Vec<String> {
    site.rules
        .iter()
        .map(Rule::suggestion)
        .chain(site.rules_as_written.iter().cloned())
        .collect()
}

/// What the site's leaks are called: thread names (`"a" "b" "c" and 2 more`) or process
/// command lines (`` `sleep 600` ``).
fn names(site: &Site) -> String {
    let quoted = site
        .names
        .iter()
        .map(|name| format!("{name:?}"))
        .chain(site.commands.iter().map(|command| format!("`{command}`")));
    let mut shown: Vec<String> = quoted.take(NAMES_LISTED).collect();
    let all = site.names.len() + site.commands.len();
    if all > NAMES_LISTED {
        shown.push(format!("and {} more", all - NAMES_LISTED));
    }
    shown.join(" ")
}

/// `stuck`, `active`, `busy`, `2 stuck, 1 active`; `None` where nothing was watched.
fn activity(site: &Site) -> Option<String> {
    let counts = [
        (site.stuck, "stuck"),
        (site.active, "active"),
        (site.busy, "busy"),
    ];
    let seen: Vec<_> = counts.iter().filter(|(count, _)| *count > 0).collect();
    match seen.as_slice() {
        [] => None,
        [(_, word)] => Some((*word).to_owned()),
        several => Some(
            several
                .iter()
                .map(|(count, word)| format!("{count} {word}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

fn kind_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::UntrackedTasks => "task",
        Kind::LostPanic => "lost panic",
        other => other.as_str(),
    }
}

/// `5 tests checked, 3 leaked: 3 leaks from 2 spawn sites`
fn totals(summary: &Summary, warn: bool) -> String {
    if summary.tests_checked + summary.other_checks == 0 {
        return "no leak-checked test ran (no #[leakcheck::test], verify_none or \
                verify_test_main! wrote a record)"
            .into();
    }
    let mut line = count(summary.tests_checked as u64, "test");
    line.push_str(" checked");
    if summary.other_checks > 0 {
        let _ = write!(
            line,
            " (and {})",
            count(summary.other_checks as u64, "other check")
        );
    }
    if summary.leaks == 0 {
        line.push_str(", none leaked");
    } else {
        let _ = write!(
            line,
            ", {} leaked: {} from {}",
            summary.leaked_tests,
            count(summary.leaks, "leak"),
            count(summary.sites.len() as u64, "spawn site")
        );
    }
    if summary.omitted_leaks > 0 {
        let _ = write!(
            line,
            " ({} more left out of the records)",
            count(summary.omitted_leaks, "leak")
        );
    }
    if summary.failed_tests > 0 {
        let own = if summary.failed_tests == 1 {
            "its"
        } else {
            "their"
        };
        let _ = write!(line, "; {} failed on {own} own", summary.failed_tests);
    }
    if summary.leaks > 0 && (warn || !summary.failing_leaks) {
        line.push_str("; warn mode: reported, not failed");
    }
    line
}

/// `1 test`, `2 tests`
fn count(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n if noun.ends_with('s') => format!("{n} {noun}es"),
        n => format!("{n} {noun}s"),
    }
}

/// Inline code, whatever backticks the text holds.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// A table cell: a `|` would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::summarize;
    use crate::summary::tests::{THREAD, line, records, task};

    fn leaky() -> Summary {
        summarize(&records(&[
            line(
                "leaks_the_reaper_of_a_dropped_pool",
                &[&task(19, 1, "active")],
            ),
            line(
                "leaks_the_reaper_of_a_forgotten_pool",
                &[&task(19, 1, "active")],
            ),
            line("leaks_a_thread", &[THREAD]),
            line("clean_pool_shut_down", &[]),
        ]))
    }

    #[test]
    fn a_clean_suite_is_one_line() {
        let summary = summarize(&records(&[line("a", &[]), line("b", &[])]));
        assert_eq!(
            text(&summary, false),
            "leakcheck: 2 tests checked, none leaked\n"
        );
        assert_eq!(
            markdown(&summary, false),
            "## leakcheck\n\n2 tests checked, none leaked.\n"
        );
        let nothing = summarize(&[]);
        assert!(text(&nothing, false).starts_with("leakcheck: no leak-checked test ran"));
    }

    #[test]
    fn text_of_a_leaky_suite() {
        insta::assert_snapshot!(text(&leaky(), false));
    }

    #[test]
    fn markdown_of_a_leaky_suite() {
        insta::assert_snapshot!(markdown(&leaky(), false));
    }

    #[test]
    fn text_with_warnings_failures_and_many_tests() {
        let mut lines: Vec<String> = (0..12)
            .map(|n| line(&format!("t{n:02}"), &[&task(7, 2, "stuck")]))
            .collect();
        lines.push(line("mixed", &[&task(7, 1, "active")]));
        lines.push(line("fails", &[]).replace("\"test_passed\":true", "\"test_passed\":false"));
        let untracked = r#"{"kind":"untracked_tasks","count":2,"ids":[],"owner":null,"activity":null,"spawn":null,"ignore_rules":[]}"#;
        lines.push(line("plain_build", &[untracked]));
        insta::assert_snapshot!(text(&summarize(&records(&lines)), true));
    }

    /// Child processes and lost panics are sites like threads and tasks, counted in their
    /// own nouns.
    #[test]
    fn processes_and_lost_panics_are_summed_up_by_site() {
        let process = r#"{"kind":"process","count":2,"ids":[41,42],"owner":null,"activity":null,"spawn":{"function":"suite::leaks_a_child","file":"tests/suite.rs","line":30,"column":9},"ignore_rules":["ignore_process = \"sleep\""],"rules":[{"key":"ignore_process","pattern":"sleep"}],"pid":41,"command":"sleep 600","zombie":false}"#;
        let panic = r#"{"kind":"lost_panic","count":1,"ids":[43],"names":["worker"],"owner":null,"activity":null,"spawn":{"function":"suite::loses_a_panic","file":"tests/suite.rs","line":40,"column":9},"ignore_rules":[],"rules":[],"panic":{"message":"boom","location":"tests/suite.rs:40:30"}}"#;
        let summary = summarize(&records(&[
            line("leaks_a_child", &[process]),
            line("loses_a_panic", &[panic]),
        ]));
        insta::assert_snapshot!(text(&summary, false));
        insta::assert_snapshot!(
            "processes_and_lost_panics_in_markdown",
            markdown(&summary, false)
        );
    }

    #[test]
    fn markdown_cells_are_escaped() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(code("x`y"), "`` x`y ``");
    }
}
