//! The rules that silence a leak or a group of them, made from the leak's facts, each one
//! matching exactly what it was made from:
//!
//! - a named thread: its name (`ignore_thread`, the glob characters escaped), unless the
//!   name is a runtime's or a pool's generic one (`tokio-rt-worker`, `blocking-3`), which
//!   would silence every thread of it; threads of one group named differently: a glob over
//!   their common start;
//! - a process: its program's file name (`ignore_process`, the glob characters escaped);
//! - its spawn site: the function that spawned it (`ignore_spawn`), or for a task tokio's
//!   `file:line`; for a pool's thread running a closure or job of the user's, that closure's
//!   function at the top of its stack (`ignore_top`), since the spawn path is an earlier
//!   spawn's.
//!
//! A leak kept for the whole process on purpose (`Note::KeptForTheProcess`) gets its spawn
//! rule first: it silences every thread started there. A crate's process-wide singleton
//! that the default allowlist knows (rayon's global pool, reported when the allowlist is
//! off) gets the allowlist's own function first (`rayon_core::registry::set_global_registry`):
//! the spawn function below it (`Registry::new`) starts every pool the crate builds, and
//! would silence a pool a test built and forgot too.

use leakcheck_schema::rules::Rule;

use super::group::Group;
use super::{Identity, Leak, Note};
use crate::config::allowlist::{POOLS, SINGLETONS};

/// Thread names a runtime or a pool gives all its threads: a rule over one would silence
/// them all.
const GENERIC_NAMES: &[&str] = &["tokio-rt-worker", "tokio-runtime-worker"];

/// Whether a thread's name is a runtime's or a pool's, given to every thread of it.
fn is_generic(name: &str) -> bool {
    GENERIC_NAMES.contains(&name)
        || POOLS
            .iter()
            .any(|pool| pool.named.iter().any(|start| name.starts_with(start)))
}

pub(super) fn of_leak(leak: &Leak) -> Vec<Rule> {
    let name = match &leak.identity {
        Identity::Thread {
            name: Some(name), ..
        } if !is_generic(name) => Some(Rule::thread_named(name)),
        Identity::Process { .. } => program_rule(leak),
        _ => None,
    };
    ordered(leak, name)
}

/// A process's program, by its file name (`ignore_process = "sleep"`).
fn program_rule(leak: &Leak) -> Option<Rule> {
    let program = leak.process.as_ref()?.program.as_deref()?;
    Some(Rule::program_named(program))
}

pub(super) fn of_group(group: &Group<'_>) -> Vec<Rule> {
    let leak = group.first();
    let names = group.names();
    let all_named = names.len() == group.leaks.len();
    let name = match &leak.identity {
        Identity::Thread { .. } if all_named && !names.iter().any(|name| is_generic(name)) => {
            Rule::threads_named(names.iter().copied())
        }
        // A group's processes run the same command line.
        Identity::Process { .. } => program_rule(leak),
        _ => None,
    };
    ordered(leak, name)
}

/// The name rule and the site rule, in the order a reader should pick them.
fn ordered(leak: &Leak, name: Option<Rule>) -> Vec<Rule> {
    // The test's own thread is no leak.
    if leak.is_test_thread {
        return Vec::new();
    }
    // A lost panic is accepted by `ignore_panic` alone: a thread rule would decide that
    // site's thread leaks too.
    if leak.panic.is_some() {
        return panic_rule(leak).into_iter().collect();
    }
    let site = site_rule(leak);
    let mut rules: Vec<Rule> = singleton_rule(leak).into_iter().collect();
    if leak.notes.contains(&Note::KeptForTheProcess) {
        rules.extend(site.into_iter().chain(name));
    } else {
        rules.extend(name.into_iter().chain(site));
    }
    rules.dedup();
    rules
}

/// `ignore_panic` over where the panicking thread was spawned (the function, else its
/// `file:line`), else over where it panicked (`file:line`).
fn panic_rule(leak: &Leak) -> Option<Rule> {
    if let Some(site) = leak.spawn_site() {
        match (site.function(), site.file(), site.line()) {
            (Some(function), _, _) => return Some(Rule::panics_of(function)),
            (None, Some(file), Some(line)) => {
                return Some(Rule::panics_of(&format!("{file}:{line}")));
            }
            _ => {}
        }
    }
    let location = leak.panic.as_ref()?.location.as_deref()?;
    // `file:line:column`: the column is left out, so the rule reads as a line.
    let line = location.rsplit_once(':').map_or(location, |(line, _)| line);
    Some(Rule::panics_of(line))
}

/// The exact rule for a singleton of the default allowlist on the spawn path: it silences
/// that singleton and nothing else its crate starts.
fn singleton_rule(leak: &Leak) -> Option<Rule> {
    SINGLETONS
        .iter()
        .flat_map(|singleton| singleton.spawned_in.iter())
        .find(|needle| {
            leak.spawn_backtrace.iter().any(|frame| {
                frame
                    .function()
                    .is_some_and(|function| function.contains(**needle))
            })
        })
        .map(|function| Rule::spawned_in(function))
}

/// The rule over where it came from.
fn site_rule(leak: &Leak) -> Option<Rule> {
    let site = leak.spawn_site()?;
    if leak.notes.contains(&Note::SiteFromCurrentStack) {
        return site.function().map(Rule::running);
    }
    match (site.function(), site.file(), site.line()) {
        (Some(function), _, _) => Some(Rule::spawned_in(function)),
        (None, Some(file), Some(line)) => Some(Rule::spawned_in(&format!("{file}:{line}"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::Frame;

    fn thread(name: &str) -> Leak {
        Leak {
            spawn_site: Some(Frame::new(
                Some("demo::Pool::start::{{closure}}".into()),
                Some("tests/demo.rs".into()),
                Some(22),
                Some(9),
            )),
            ..Leak::known_only_by(Identity::Thread {
                tid: Some(1),
                name: Some(name.into()),
            })
        }
    }

    fn texts(rules: &[Rule]) -> Vec<String> {
        rules.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_named_thread_gets_its_name_then_its_spawn_function() {
        assert_eq!(
            texts(&of_leak(&thread("we\"ird\\name-7501"))),
            [
                r#"ignore_thread = "we\"ird\\name-7501""#,
                r#"ignore_spawn = "demo::Pool::start""#
            ]
        );
    }

    #[test]
    fn a_runtime_s_generic_name_is_no_rule() {
        assert_eq!(
            texts(&of_leak(&thread("tokio-rt-worker"))),
            [r#"ignore_spawn = "demo::Pool::start""#]
        );
        assert_eq!(texts(&of_leak(&thread("blocking-3"))).len(), 1);
    }

    #[test]
    fn what_a_pool_s_thread_runs_now_is_matched_at_the_top_of_its_stack() {
        let leak = Leak {
            notes: vec![Note::SiteFromCurrentStack],
            ..thread("tokio-rt-worker")
        };
        assert_eq!(
            texts(&of_leak(&leak)),
            [r#"ignore_top = "demo::Pool::start""#]
        );
    }

    #[test]
    fn a_group_of_names_gets_a_glob_over_their_start() {
        let leaks = [thread("pool-1"), thread("pool-2"), thread("pool-12")];
        let group = Group {
            leaks: leaks.iter().collect(),
        };
        assert_eq!(
            texts(&of_group(&group)),
            [
                r#"ignore_thread = "pool-*""#,
                r#"ignore_spawn = "demo::Pool::start""#
            ]
        );
        let unrelated = [thread("alpha"), thread("beta")];
        let group = Group {
            leaks: unrelated.iter().collect(),
        };
        assert_eq!(
            texts(&of_group(&group)),
            [r#"ignore_spawn = "demo::Pool::start""#]
        );
    }

    /// rayon's global pool, reported with the default allowlist off: the allowlist's own
    /// rule first; a pool the test built (no `set_global_registry` on its path) gets none.
    #[test]
    fn a_known_singleton_gets_its_exact_rule_first() {
        let frame = |function: &str| Frame::new(Some(function.into()), None, None, None);
        let global = Leak {
            spawn_backtrace: vec![
                frame("rayon_core::registry::Registry::new"),
                frame("rayon_core::registry::set_global_registry::{{closure}}"),
                frame("rayon_core::registry::set_global_registry"),
                frame("demo::uses_rayon"),
            ],
            notes: vec![Note::KeptForTheProcess],
            ..thread("tokio-rt-worker")
        };
        assert_eq!(
            texts(&of_leak(&global)),
            [
                r#"ignore_spawn = "rayon_core::registry::set_global_registry""#,
                r#"ignore_spawn = "demo::Pool::start""#
            ]
        );
        let built = Leak {
            spawn_backtrace: vec![
                frame("rayon_core::registry::Registry::new"),
                frame("rayon_core::thread_pool::ThreadPool::build"),
            ],
            ..global
        };
        assert_eq!(
            texts(&of_leak(&built)),
            [r#"ignore_spawn = "demo::Pool::start""#]
        );
    }

    #[test]
    fn a_process_gets_its_program_then_its_spawn_function() {
        let process = Leak {
            process: Some(crate::report::ProcessFacts {
                program: Some("/usr/bin/sl[e]ep".into()),
                ..Default::default()
            }),
            ..thread("unused")
        };
        let process = Leak {
            identity: Identity::Process {
                pid: 42,
                command: Some("/usr/bin/sl[e]ep 600".into()),
            },
            ..process
        };
        assert_eq!(
            texts(&of_leak(&process)),
            [
                r#"ignore_process = "sl[[]e[]]ep""#,
                r#"ignore_spawn = "demo::Pool::start""#
            ]
        );
    }

    #[test]
    fn a_task_gets_tokio_s_line() {
        let task = Leak {
            spawn_site: Some(Frame::new(
                None,
                Some("tests/demo.rs".into()),
                Some(68),
                Some(25),
            )),
            ..Leak::known_only_by(Identity::Task { id: 4 })
        };
        assert_eq!(
            texts(&of_leak(&task)),
            [r#"ignore_spawn = "tests/demo.rs:68""#]
        );
    }
}
