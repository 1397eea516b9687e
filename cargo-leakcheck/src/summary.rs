//! The suite's leaks grouped by spawn site: for each site (kind and `file:line`), how many
//! leaked and which tests leaked them, whether stuck or active, and the rule that silences
//! them; then the totals. Pure: records in, [`Summary`] out; [`crate::render`] writes it.

use std::collections::{BTreeMap, BTreeSet};

use leakcheck_schema::record::{Activity, Check, Group, Kind, Mode, Outcome, Record};
use leakcheck_schema::rules::{Rule, RuleKind};

/// The suite at a glance.
#[derive(Debug, Default)]
pub struct Summary {
    /// Checks of `#[leakcheck::test]`s.
    pub tests_checked: usize,
    /// Exit checks: a test binary (or, under nextest, a test's process) checked as it
    /// exits, by `verify_test_main!` or the library `cargo leakcheck` preloads.
    pub exit_checks: usize,
    /// `verify_none` calls.
    pub other_checks: usize,
    /// Tests (and other checks) blamed for a leak, each once; zombies are not leaks here.
    pub leaked_tests: usize,
    /// Leaks in all, zombies apart.
    pub leaks: u64,
    /// Children that exited and were never waited for: not running, so not leaks; by
    /// default reported, not failed.
    pub zombies: u64,
    /// Tests (and other checks) that left a zombie, each once.
    pub zombie_tests: usize,
    /// Whether a zombie's record failed its check (`zombies = "fail"`).
    pub failing_zombies: bool,
    /// Leaks (zombies apart) whose record only warned, by why: `LEAKCHECK=warn` (or
    /// `--warn`), or a kind's policy (`lost_panics = "warn"`, `untracked_tasks = "warn"`).
    pub warned: BTreeMap<&'static str, u64>,
    /// Leaks the records left out to stay bounded, so in no site.
    pub omitted_leaks: u64,
    /// Tests that failed on their own (a record's `test_passed` is false).
    pub failed_tests: usize,
    /// Whether a leak failed its test (`mode` `"fail"`), as opposed to a warning.
    pub failing_leaks: bool,
    /// Biggest first: most tests, then most leaks.
    pub sites: Vec<Site>,
}

/// What leaked from one spawn site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub kind: Kind,
    /// Processes: these exited and were never waited for (zombies), a site of their own.
    pub zombie: bool,
    /// `file:line`; `None` when unknown (tasks counted without tokio's hooks).
    pub location: Option<String>,
    /// Thread names, each once, sorted; none for lost panics, which are known by their site
    /// (a name some of them had would label them all).
    pub names: Vec<String>,
    /// Threads of the site that had no name.
    pub unnamed: u64,
    /// Processes: their command lines, each once, sorted.
    pub commands: Vec<String>,
    /// Lost panics: `message` at `file:line:column`, each once, sorted.
    pub panics: Vec<String>,
    /// The tests that leaked from here, each once, sorted.
    pub tests: Vec<String>,
    pub leaks: u64,
    pub stuck: u64,
    pub active: u64,
    pub busy: u64,
    /// The rules that each silence every leak of the site: the first report's that every
    /// other report of the site offered too, its thread name rule made to cover every name
    /// the site's threads had (`blocking-*` for `blocking-1` and `blocking-2`), and the
    /// site's `file:line` where the spawn functions differ.
    pub rules: Vec<Rule>,
    /// Rules as text, from records of a writer that wrote no `rules` (shown as they are).
    pub rules_as_written: Vec<String>,
}

/// The summary of `records`.
pub fn summarize<'a>(records: impl IntoIterator<Item = &'a Record>) -> Summary {
    let mut summary = Summary::default();
    let mut sites: BTreeMap<(Kind, bool, Option<String>), SiteBuilder> = BTreeMap::new();
    let mut leaked_tests = BTreeSet::new();
    let mut zombie_tests = BTreeSet::new();
    let mut failed_tests = BTreeSet::new();
    // Which binaries each test name was seen in: a name in two is shown with its binary.
    let mut binaries_of: BTreeMap<String, BTreeSet<Option<String>>> = BTreeMap::new();
    for record in records {
        if let Some(test) = &record.test {
            binaries_of
                .entry(test.clone())
                .or_default()
                .insert(record.binary.clone());
        }
        match record.check {
            Check::Test => summary.tests_checked += 1,
            Check::Exit => summary.exit_checks += 1,
            _ => summary.other_checks += 1,
        }
        if record.test_passed == Some(false) {
            failed_tests.insert((record.binary.clone(), record.test.clone()));
        }
        if record.outcome != Outcome::Leaked {
            continue;
        }
        summary.failing_leaks |= record.mode == Mode::Fail;
        summary.omitted_leaks += record.omitted.map_or(0, |omitted| omitted.leaks);
        for group in &record.groups {
            let test = (
                record.binary.clone(),
                blamed(record, group.owner.as_deref()),
            );
            let zombie = group.zombie == Some(true);
            if zombie {
                zombie_tests.insert(test.clone());
                summary.zombies += group.count;
                summary.failing_zombies |= record.mode == Mode::Fail;
            } else {
                leaked_tests.insert(test.clone());
                summary.leaks += group.count;
                if record.mode == Mode::Warn {
                    *summary.warned.entry(why_warned(record, group)).or_default() += group.count;
                }
            }
            let location = group
                .spawn
                .as_ref()
                .and_then(|spawn| Some(format!("{}:{}", spawn.file.as_deref()?, spawn.line?)));
            let site = sites
                .entry((group.kind, zombie, location))
                .or_insert_with(|| SiteBuilder {
                    first: Some(group.clone()),
                    ..SiteBuilder::default()
                });
            site.tests.insert(test);
            site.offered.push(
                group
                    .rules
                    .iter()
                    .filter_map(|record| record.rule())
                    .collect(),
            );
            if group.kind == Kind::Thread {
                let names = group.names.as_deref().unwrap_or_default();
                site.names.extend(names.iter().cloned());
                // A record lists 16 names at most: past that, the rest are not unnamed.
                if names.len() < NAMES_IN_A_RECORD {
                    site.unnamed += group.count.saturating_sub(names.len() as u64);
                }
            }
            site.commands.extend(group.command.iter().cloned());
            site.panics.extend(group.panic.as_ref().map(|panic| {
                // Neither message nor location: the panic could not be read (an unwinder
                // header leakcheck does not know); a location without a message is an older
                // record's non-string payload.
                let message = match (&panic.message, &panic.location) {
                    (Some(message), _) => format!("{message:?}"),
                    (None, Some(_)) => format!("{:?}", "(a payload that is not text)"),
                    (None, None) => "(its message not seen)".to_owned(),
                };
                match &panic.location {
                    Some(location) => format!("{message} at {location}"),
                    None => message,
                }
            }));
            site.leaks += group.count;
            match group.activity {
                Some(Activity::Stuck) => site.stuck += group.count,
                Some(Activity::Active) => site.active += group.count,
                Some(Activity::Busy) => site.busy += group.count,
                _ => {}
            }
        }
    }
    summary.leaked_tests = leaked_tests.len();
    summary.zombie_tests = zombie_tests.len();
    summary.failed_tests = failed_tests.len();
    summary.sites = sites
        .into_iter()
        .map(|((kind, zombie, location), site)| {
            let (rules, rules_as_written) = site.rules(location.as_deref());
            Site {
                kind,
                zombie,
                location,
                names: site.names.into_iter().collect(),
                unnamed: site.unnamed,
                commands: site.commands.into_iter().collect(),
                panics: site.panics.into_iter().collect(),
                tests: site
                    .tests
                    .into_iter()
                    .map(|(binary, test)| match binary {
                        Some(binary) if binaries_of.get(&test).is_some_and(|b| b.len() > 1) => {
                            format!("{test} (in {binary})")
                        }
                        _ => test,
                    })
                    .collect(),
                leaks: site.leaks,
                stuck: site.stuck,
                active: site.active,
                busy: site.busy,
                rules,
                rules_as_written,
            }
        })
        .collect();
    // Stable: ties stay in kind and location order.
    summary
        .sites
        .sort_by_key(|site| std::cmp::Reverse((site.tests.len(), site.leaks)));
    summary
}

/// Names a record lists per group (leakcheck's `NAMES_LISTED`).
const NAMES_IN_A_RECORD: usize = 16;

#[derive(Default)]
struct SiteBuilder {
    names: BTreeSet<String>,
    unnamed: u64,
    /// The rules each group of the site offered.
    offered: Vec<Vec<Rule>>,
    commands: BTreeSet<String>,
    panics: BTreeSet<String>,
    /// (binary, test)
    tests: BTreeSet<(Option<String>, String)>,
    leaks: u64,
    stuck: u64,
    active: u64,
    busy: u64,
    /// The first group of the site, whose rules the site's are made from.
    first: Option<Group>,
}

impl SiteBuilder {
    /// The site's rules, each of which silences the whole site: the first group's, where
    /// every group offered it; a thread name rule over every name the site had; where the
    /// groups' spawn rules differ (a line reached from two functions), the site's own
    /// `file:line`; a program rule only where all ran one program (`cat`, `echo` and `sh`
    /// have no glob in common that is not too wide).
    fn rules(&self, location: Option<&str>) -> (Vec<Rule>, Vec<String>) {
        let Some(first) = &self.first else {
            return (Vec::new(), Vec::new());
        };
        if first.rules.is_empty() {
            return (Vec::new(), first.ignore_rules.clone());
        }
        let offered_by_all = |rule: &Rule| self.offered.iter().all(|rules| rules.contains(rule));
        let every_name = Rule::threads_named(self.names.iter().map(String::as_str))
            .filter(|_| self.unnamed == 0)
            .filter(|_| {
                self.offered
                    .iter()
                    .all(|rules| rules.iter().any(|rule| rule.kind() == RuleKind::Thread))
            });
        let mut rules: Vec<Rule> = Vec::new();
        for rule in first.rules.iter().filter_map(|record| record.rule()) {
            let covering = match rule.kind() {
                RuleKind::Thread => every_name.clone(),
                _ if offered_by_all(&rule) => Some(rule),
                RuleKind::Spawn => location.map(Rule::spawned_in),
                _ => None,
            };
            if let Some(covering) = covering.filter(|rule| !rules.contains(rule)) {
                rules.push(covering);
            }
        }
        (rules, Vec::new())
    }
}

/// Why a leak in a record that only warned did not fail: a kind's own policy, or the run's
/// mode.
fn why_warned(record: &Record, group: &Group) -> &'static str {
    // A policy warns only when every leak of the record is of a kind that may: a thread or
    // a task beside it in a warning record means the whole run warned.
    let by_policy = record.groups.iter().all(|group| {
        group.zombie == Some(true) || matches!(group.kind, Kind::LostPanic | Kind::UntrackedTasks)
    });
    match group.kind {
        Kind::LostPanic if by_policy => "lost_panics = \"warn\"",
        Kind::UntrackedTasks if by_policy => "untracked_tasks = \"warn\"",
        _ => "LEAKCHECK=warn",
    }
}

/// Who a leak is blamed on: the test; at exit, the plain `#[test]` that spawned it.
fn blamed(record: &Record, owner: Option<&str>) -> String {
    match (record.test.as_deref(), owner, record.check) {
        (Some(test), _, _) | (None, Some(test), _) => test.to_owned(),
        (None, None, Check::Exit) => "(no test: spawned outside every test, seen at exit)".into(),
        (None, None, _) => "(a process-wide verify_none)".into(),
    }
}

impl Summary {
    /// Whether leaks were found that fail the run (without `--warn`).
    pub fn fails(&self, warn: bool) -> bool {
        self.failed_tests > 0 || (self.failing_leaks && !warn)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::records::parse;

    /// A record line as leakcheck writes it (the fields the summary reads, and a few more).
    pub(crate) fn line(test: &str, groups: &[&str]) -> String {
        let outcome = if groups.is_empty() { "clean" } else { "leaked" };
        format!(
            r#"{{"schema_version":2,"check":"test","test":"{test}","outcome":"{outcome}","mode":"fail","test_passed":true,"waited_ms":0,"ended":null,"groups":[{}],"omitted":null}}"#,
            groups.join(",")
        )
    }

    pub(crate) const THREAD: &str = r#"{"kind":"thread","count":1,"ids":[20311],"names":["cli-worker"],"owner":null,"activity":"stuck","woken_during_grace":0,"test_thread":false,"spawn":{"function":"suite::leaks_a_thread","file":"tests/suite.rs","line":13,"column":10},"spawned_by":null,"state":"sleeping","spawn_backtrace":[],"current_stack":[],"awaiting":[],"ignore_rules":["ignore_thread = \"cli-worker\"","ignore_spawn = \"suite::leaks_a_thread\""],"rules":[{"key":"ignore_thread","pattern":"cli-worker"},{"key":"ignore_spawn","pattern":"suite::leaks_a_thread"}]}"#;

    pub(crate) fn task(line: u32, count: u64, activity: &str) -> String {
        format!(
            r#"{{"kind":"task","count":{count},"ids":[4],"owner":null,"activity":"{activity}","woken_during_grace":9,"test_thread":false,"spawn":{{"function":null,"file":"pool/src/lib.rs","line":{line},"column":22}},"spawned_by":null,"state":null,"spawn_backtrace":[],"current_stack":[],"awaiting":[],"ignore_rules":["ignore_spawn = \"pool/src/lib.rs:{line}\""],"rules":[{{"key":"ignore_spawn","pattern":"pool/src/lib.rs:{line}"}}]}}"#
        )
    }

    pub(crate) fn records(lines: &[String]) -> Vec<Record> {
        parse("test.jsonl", &lines.join("\n"))
            .unwrap()
            .into_iter()
            .map(|line| line.record)
            .collect()
    }

    #[test]
    fn leaks_are_grouped_by_site_across_tests() {
        let records = records(&[
            line("a", &[&task(19, 1, "active")]),
            line("b", &[THREAD, &task(19, 2, "stuck")]),
            line("c", &[]),
            line("d", &[&task(40, 1, "stuck")]),
        ]);
        let summary = summarize(&records);
        assert_eq!(summary.tests_checked, 4);
        assert_eq!(summary.leaked_tests, 3);
        assert_eq!(summary.leaks, 5);
        assert!(summary.fails(false));
        assert!(!summary.fails(true));
        let sites: Vec<(&str, &str, usize, u64, u64, u64)> = summary
            .sites
            .iter()
            .map(|site| {
                (
                    site.kind.as_str(),
                    site.location.as_deref().unwrap(),
                    site.tests.len(),
                    site.leaks,
                    site.stuck,
                    site.active,
                )
            })
            .collect();
        assert_eq!(
            sites,
            [
                ("task", "pool/src/lib.rs:19", 2, 3, 2, 1),
                ("thread", "tests/suite.rs:13", 1, 1, 1, 0),
                ("task", "pool/src/lib.rs:40", 1, 1, 1, 0),
            ]
        );
        assert_eq!(summary.sites[0].tests, ["a", "b"]);
        assert_eq!(summary.sites[1].names, ["cli-worker"]);
        assert_eq!(
            summary.sites[0].rules[0].to_string(),
            "ignore_spawn = \"pool/src/lib.rs:19\""
        );
    }

    #[test]
    fn a_site_s_name_rule_covers_every_name_its_threads_had() {
        let named = |name: &str| {
            THREAD
                .replace(
                    "\"names\":[\"cli-worker\"]",
                    &format!("\"names\":[\"{name}\"]"),
                )
                .replace(
                    "\"pattern\":\"cli-worker\"",
                    &format!("\"pattern\":\"{name}\""),
                )
        };
        let summary = summarize(&records(&[
            line("a", &[&named("blocking-1")]),
            line("b", &[&named("blocking-2")]),
        ]));
        let rules: Vec<String> = summary.sites[0]
            .rules
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            rules,
            [
                "ignore_thread = \"blocking-*\"",
                "ignore_spawn = \"suite::leaks_a_thread\""
            ]
        );
        // Names with nothing in common: the spawn rule alone covers them.
        let unrelated = records(&[line("a", &[&named("left")]), line("b", &[&named("right")])]);
        let rules = &summarize(&unrelated).sites[0].rules;
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].to_string(),
            "ignore_spawn = \"suite::leaks_a_thread\""
        );
    }

    #[test]
    fn the_same_test_twice_counts_once() {
        // A retried test (nextest --retries), or two shards given the same test.
        let records = records(&[line("a", &[THREAD]), line("a", &[THREAD])]);
        let summary = summarize(&records);
        assert_eq!(summary.leaked_tests, 1);
        assert_eq!(summary.sites[0].tests, ["a"]);
        assert_eq!(summary.sites[0].leaks, 2);
    }

    #[test]
    fn tests_of_two_binaries_that_share_a_name_are_two_tests() {
        let in_binary = |binary: &str| {
            line("it_works", &[THREAD]).replace(
                "\"check\":\"test\"",
                &format!("\"check\":\"test\",\"binary\":\"{binary}\""),
            )
        };
        let summary = summarize(&records(&[in_binary("api"), in_binary("db")]));
        assert_eq!(summary.leaked_tests, 2);
        assert_eq!(
            summary.sites[0].tests,
            ["it_works (in api)", "it_works (in db)"]
        );
        // A name in one binary only is shown as it is.
        let summary = summarize(&records(&[in_binary("api"), in_binary("api")]));
        assert_eq!(summary.sites[0].tests, ["it_works"]);
    }

    #[test]
    fn warnings_and_failures_decide_the_verdict() {
        let warned = line("a", &[THREAD]).replace("\"mode\":\"fail\"", "\"mode\":\"warn\"");
        let summary = summarize(&records(&[warned]));
        assert!(!summary.fails(false));
        let failed = line("b", &[]).replace("\"test_passed\":true", "\"test_passed\":false");
        let summary = summarize(&records(&[failed]));
        assert_eq!(summary.failed_tests, 1);
        assert!(
            summary.fails(true),
            "--warn never hides a test's own failure"
        );
    }

    #[test]
    fn exit_checks_blame_the_owner() {
        let exit = r#"{"schema_version":2,"check":"exit","test":null,"outcome":"leaked","mode":"fail","test_passed":null,"waited_ms":500,"ended":null,"omitted":{"groups":1,"leaks":7},"groups":[{"kind":"thread","count":1,"names":["gate"],"owner":"plain_test","activity":"stuck","spawn":null,"ignore_rules":[]},{"kind":"thread","count":1,"names":["main-helper"],"owner":null,"activity":null,"spawn":null,"ignore_rules":[]}]}"#;
        let summary = summarize(&records(&[exit.to_owned()]));
        assert_eq!(summary.tests_checked, 0);
        assert_eq!(summary.exit_checks, 1);
        assert_eq!(summary.omitted_leaks, 7);
        assert_eq!(summary.sites.len(), 1, "one site: spawn unknown");
        assert_eq!(
            summary.sites[0].tests,
            [
                "(no test: spawned outside every test, seen at exit)",
                "plain_test"
            ]
        );
    }
}
