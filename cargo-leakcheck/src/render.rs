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
        let mut leaked = count(site.leaks, noun(site));
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
            state(site).unwrap_or_default(),
            cell(&format!("{}: {}", site.tests.len(), tests.join(", "))),
            cell(&rules.join(" or ")),
        );
    }
    out
}

/// `2 tasks spawned at pool/src/lib.rs:19, active, in 2 tests`
fn headline(site: &Site) -> String {
    let mut line = count(site.leaks, noun(site));
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
    if let Some(state) = state(site) {
        let _ = write!(line, ", {state}");
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
    // The names are not all of them: say so, or they would label the unnamed too.
    if site.unnamed > 0 {
        shown.push(format!("and {} unnamed", site.unnamed));
    }
    shown.join(" ")
}

/// What the site's leaks are: `zombie process` for children that exited and were never
/// waited for, else the kind's noun.
fn noun(site: &Site) -> &'static str {
    if site.zombie {
        "zombie process"
    } else {
        kind_noun(site.kind)
    }
}

/// What the site's leaks are doing: zombies `exited, never waited for`, else their activity.
fn state(site: &Site) -> Option<String> {
    if site.zombie {
        return Some("exited, never waited for".to_owned());
    }
    activity(site)
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
    if summary.tests_checked + summary.exit_checks + summary.other_checks == 0 {
        return "no leak-checked test ran (no #[leakcheck::test], verify_none or \
                verify_test_main! wrote a record)"
            .into();
    }
    let mut checked = Vec::new();
    if summary.tests_checked > 0 || summary.exit_checks == 0 {
        checked.push(format!(
            "{} checked",
            count(summary.tests_checked as u64, "test")
        ));
    }
    if summary.exit_checks > 0 {
        checked.push(format!(
            "{} checked as {} exited",
            count(summary.exit_checks as u64, "test process"),
            if summary.exit_checks == 1 {
                "it"
            } else {
                "they"
            }
        ));
    }
    let mut line = checked.join(" and ");
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
        let sites = summary.sites.iter().filter(|site| !site.zombie).count();
        let leaked = if summary.tests_checked == 0 {
            count(summary.leaked_tests as u64, "test")
        } else {
            summary.leaked_tests.to_string()
        };
        let _ = write!(
            line,
            ", {leaked} leaked: {} from {}",
            count(summary.leaks, "leak"),
            count(sites as u64, "spawn site")
        );
    }
    if summary.zombies > 0 {
        let _ = write!(
            line,
            "; {} left {} (exited, never waited for",
            count(summary.zombie_tests as u64, "test"),
            count(summary.zombies, "zombie process")
        );
        if !warn && !summary.failing_zombies {
            line.push_str(": reported, not failed, by zombies = \"warn\", the default");
        }
        line.push(')');
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
    if warn && summary.leaks + summary.zombies > 0 {
        line.push_str("; warn mode: reported, not failed");
    } else if !summary.warned.is_empty() {
        let why: Vec<String> = summary
            .warned
            .iter()
            .map(|(why, leaks)| format!("{} by {why}", count(*leaks, "leak")))
            .collect();
        let _ = write!(line, "; reported, not failed: {}", why.join(", "));
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

    /// A process record group: `program` run from `function` at `tests/suite.rs:30`.
    fn process(program: &str, function: &str, zombie: bool) -> String {
        format!(
            r#"{{"kind":"process","count":1,"ids":[41],"owner":null,"activity":null,"spawn":{{"function":"{function}","file":"tests/suite.rs","line":30,"column":9}},"ignore_rules":[],"rules":[{{"key":"ignore_process","pattern":"{program}"}},{{"key":"ignore_spawn","pattern":"{function}"}}],"pid":41,"command":"{program} 600","zombie":{zombie}}}"#
        )
    }

    /// Zombies are no leaks: named as what they are, counted apart, and "warn mode" is said
    /// only under `--warn`.
    #[test]
    fn zombies_are_said_as_what_they_are() {
        let warned = |line: String| line.replace("\"mode\":\"fail\"", "\"mode\":\"warn\"");
        let summary = summarize(&records(&[
            warned(line("a", &[&process("true", "suite::a", true)])),
            warned(line("b", &[&process("true", "suite::a", true)])),
            line("c", &[THREAD]),
        ]));
        assert_eq!((summary.leaks, summary.zombies), (1, 2));
        let printed = text(&summary, false);
        assert!(
            printed.contains(
                "2 zombie processes `true 600` spawned at tests/suite.rs:30, exited, never waited \
                 for, in 2 tests:"
            ),
            "{printed}"
        );
        assert!(
            printed.ends_with(
                "leakcheck: 3 tests checked, 1 leaked: 1 leak from 1 spawn site; 2 tests left 2 \
                 zombie processes (exited, never waited for: reported, not failed, by zombies = \
                 \"warn\", the default)\n"
            ),
            "{printed}"
        );
        assert!(!printed.contains("warn mode"), "{printed}");
        assert!(text(&summary, true).contains("; warn mode: reported, not failed"));
        // Zombies alone: no leak, and the run passes.
        let summary = summarize(&records(&[warned(line(
            "a",
            &[&process("true", "suite::a", true)],
        ))]));
        assert!(!summary.fails(false));
        assert!(
            text(&summary, false).contains("1 test checked, none leaked; 1 test left 1 zombie")
        );
    }

    /// A site whose leaks ran several programs, or came from several functions, is offered
    /// only rules that silence all of it.
    #[test]
    fn a_mixed_site_is_offered_rules_that_silence_all_of_it() {
        let rules = |lines: &[String]| -> Vec<String> {
            summarize(&records(lines)).sites[0]
                .rules
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        // duct's `child_grandchild` and `sleep`, from one function: its rule alone.
        assert_eq!(
            rules(&[
                line("a", &[&process("child_grandchild", "duct::spawn", false)]),
                line("b", &[&process("sleep", "duct::spawn", false)]),
            ]),
            ["ignore_spawn = \"duct::spawn\""]
        );
        // One program from a std and a tokio spawn at one line: the program, then the line.
        assert_eq!(
            rules(&[
                line("a", &[&process("cat", "wrap::std_spawn", false)]),
                line("b", &[&process("cat", "wrap::tokio_spawn", false)]),
            ]),
            [
                "ignore_process = \"cat\"",
                "ignore_spawn = \"tests/suite.rs:30\""
            ]
        );
        // The same program from one function: both rules, as each report offers them.
        assert_eq!(
            rules(&[
                line("a", &[&process("cat", "wrap::spawn", false)]),
                line("b", &[&process("cat", "wrap::spawn", false)]),
            ]),
            ["ignore_process = \"cat\"", "ignore_spawn = \"wrap::spawn\""]
        );
    }

    /// Lost panics are known by their spawn site, not by a name one of them had; threads some
    /// of which had no name say how many.
    #[test]
    fn a_name_labels_only_what_had_it() {
        let panics = r#"{"kind":"lost_panic","count":9,"ids":[43],"names":["test"],"owner":null,"activity":null,"spawn":{"function":"suite::loses","file":"tests/suite.rs","line":40,"column":9},"ignore_rules":[],"rules":[],"panic":{"message":"boom","location":"tests/suite.rs:40:30"}}"#;
        let threads = THREAD.replace("\"count\":1", "\"count\":3");
        let summary = summarize(&records(&[line("a", &[panics, &threads])]));
        let printed = text(&summary, false);
        assert!(
            printed.contains("9 lost panics spawned at tests/suite.rs:40, in 1 test:"),
            "{printed}"
        );
        assert!(
            printed.contains("3 threads \"cli-worker\" and 2 unnamed spawned at tests/suite.rs:13"),
            "{printed}"
        );
        // A name rule would leave the unnamed: the spawn rule alone.
        let rules: Vec<String> = summary.sites[1]
            .rules
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            rules,
            ["ignore_spawn = \"suite::leaks_a_thread\""],
            "{printed}"
        );
    }

    /// A record that only warned by a kind's policy says which.
    #[test]
    fn a_policy_that_warned_is_named() {
        let panic = r#"{"kind":"lost_panic","count":1,"ids":[43],"owner":null,"activity":null,"spawn":null,"ignore_rules":[],"rules":[]}"#;
        let warned = line("a", &[panic]).replace("\"mode\":\"fail\"", "\"mode\":\"warn\"");
        let printed = text(&summarize(&records(&[warned])), false);
        assert!(
            printed.ends_with("; reported, not failed: 1 leak by lost_panics = \"warn\"\n"),
            "{printed}"
        );
    }

    #[test]
    fn markdown_cells_are_escaped() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(code("x`y"), "`` x`y ``");
    }
}
