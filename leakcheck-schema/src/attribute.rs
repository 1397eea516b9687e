//! The names of `#[leakcheck::test]`'s own arguments: the attribute accepts exactly these,
//! and leakcheck's docs test checks that the attribute's page describes each.
//!
//! ```
//! assert!(leakcheck_schema::attribute::ARGUMENTS.contains(&"grace"));
//! ```

/// Every argument of `#[leakcheck::test]`, in the order its page lists them.
pub const ARGUMENTS: &[&str] = &[
    "grace",
    "timeout",
    "ignore_thread",
    "ignore_spawn",
    "ignore_top",
    "ignore_process",
    "ignore_panic",
    "zombies",
    "lost_panics",
    "untracked_tasks",
    "kill_leaked_processes",
];

/// The arguments as an error message lists them: `grace, timeout, ... or
/// kill_leaked_processes`.
///
/// ```
/// assert!(leakcheck_schema::attribute::expected().ends_with(" or kill_leaked_processes"));
/// ```
pub fn expected() -> String {
    match ARGUMENTS.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}
