//! Scopes, and the per-thread attribution context: which scope the calling thread spawns
//! into now, and which task it is polling. A spawned thread starts in its parent's scope
//! (set by the spawn hook), and a worker polling a task works in that task's scope (set by
//! the task hooks), so ownership is inherited down any chain of spawns without walking
//! parents at check time.
//!
//! A leaf: it imports nothing of the crate but its lock. Checking a scope is the library's
//! surface (`impl Scope` in `lib.rs`), not this module's.

use std::cell::Cell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use crate::lock::Lock;

/// Id of a scope. `0` is the process level: what `main`, static initialisers and anything
/// outside every scope spawn.
pub(crate) type ScopeId = u64;
pub(crate) const PROCESS: ScopeId = 0;

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// Scopes' names for reports, kept after a [`Scope`] is dropped while what it spawned
/// still runs (a thread it leaked may be reported at exit), and forgotten with the scope's
/// last thread and task (`registry::forget_finished_scopes`), so that a service entering
/// a scope per request keeps memory bounded.
static NAMES: LazyLock<Lock<Names>> = LazyLock::new(Default::default);

#[derive(Default)]
struct Names {
    named: HashMap<ScopeId, Arc<str>>,
    /// Scopes whose `Scope` has been dropped, named or not, until they are forgotten.
    closed: Vec<ScopeId>,
}

/// A task as the threads and tasks it spawns remember it: its id and spawn line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskRef {
    pub(crate) id: tokio::task::Id,
    pub(crate) spawned_at: &'static std::panic::Location<'static>,
}

thread_local! {
    // `const` and `Cell`, no destructor: the spawn hooks read these at any point of a
    // thread's life, TLS teardown included.
    static CURRENT: Cell<ScopeId> = const { Cell::new(PROCESS) };
}

#[cfg(any(lc_thread_hook, tokio_unstable))]
thread_local! {
    /// The task this thread is polling, if a hooked runtime's worker is polling one.
    static POLLED: Cell<Option<TaskRef>> = const { Cell::new(None) };
}

#[cfg(tokio_unstable)]
thread_local! {
    /// The scope a worker was in before it started polling a task, to go back to after.
    static OUTSIDE_POLL: Cell<Option<ScopeId>> = const { Cell::new(None) };
}

/// The scope the calling thread spawns into now.
pub(crate) fn current() -> ScopeId {
    CURRENT.try_with(Cell::get).unwrap_or(PROCESS)
}

/// Makes `scope` the calling thread's scope; returns the one it replaces.
pub(crate) fn set_current(scope: ScopeId) -> ScopeId {
    CURRENT.try_with(|c| c.replace(scope)).unwrap_or(PROCESS)
}

/// The task the calling thread is polling now, for the thread spawn hook: a thread spawned
/// from inside a task was spawned by that task. Always `None` without task hooks.
#[cfg(lc_thread_hook)]
pub(crate) fn polled_task() -> Option<TaskRef> {
    POLLED.try_with(Cell::get).ok().flatten()
}

/// Before a poll: the calling worker now works for `task`, in `scope` (the task's, when it
/// is registered).
#[cfg(tokio_unstable)]
pub(crate) fn enter_task(task: TaskRef, scope: Option<ScopeId>) {
    if let Some(scope) = scope {
        let outside = set_current(scope);
        let _ = OUTSIDE_POLL.try_with(|saved| saved.set(Some(outside)));
    }
    let _ = POLLED.try_with(|polled| polled.set(Some(task)));
}

/// After a poll: back to the scope the worker was in before [`enter_task`].
#[cfg(tokio_unstable)]
pub(crate) fn leave_task() {
    let _ = POLLED.try_with(|polled| polled.set(None));
    if let Some(outside) = OUTSIDE_POLL.try_with(Cell::take).ok().flatten() {
        set_current(outside);
    }
}

/// The name reports use for `scope`: the name it was entered with, else `scope #N`.
pub(crate) fn label(scope: ScopeId) -> String {
    NAMES
        .lock()
        .named
        .get(&scope)
        .map_or_else(|| format!("scope #{scope}"), |name| name.to_string())
}

/// Attributes what the current thread spawns, from now until the `Scope` is dropped.
///
/// Threads started while a scope is active belong to it, and so does everything *they*
/// spawn. [`Scope::verify_none`] then checks this scope alone, so tests that run in
/// parallel never blame each other. `#[leakcheck::test]` enters a scope named after the
/// test; use `Scope` directly in a custom harness or to check part of a test.
///
/// Scopes nest: dropping one restores the scope that was current before it, so drop them
/// in the reverse order they were entered. A `Scope` belongs to the thread that entered it
/// and cannot be sent to another.
///
/// ```
/// let scope = leakcheck::Scope::enter_named("checks the worker");
/// let worker = std::thread::spawn(|| 2 + 2);
/// assert_eq!(worker.join().unwrap(), 4);
/// scope.verify_none(); // the worker was joined: nothing leaked
/// ```
#[must_use = "a scope ends when it is dropped: bind it, `let scope = Scope::enter();`"]
pub struct Scope {
    id: ScopeId,
    previous: ScopeId,
    name: Arc<str>,
    // `!Send`: restoring `previous` only makes sense on the thread that entered.
    _thread_bound: PhantomData<*const ()>,
}

impl Scope {
    /// Enters a new scope named after the current thread (libtest names a test's thread
    /// after the test), or `scope #N` on an unnamed thread.
    ///
    /// ```
    /// let scope = leakcheck::Scope::enter();
    /// assert!(!scope.name().is_empty());
    /// ```
    pub fn enter() -> Scope {
        let id = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
        let name = match std::thread::current().name() {
            Some(name) if name != "main" => name.to_owned(),
            _ => format!("scope #{id}"),
        };
        Self::enter_with_id(id, name)
    }

    /// Enters a new scope with the name reports will use for it.
    ///
    /// ```
    /// let scope = leakcheck::Scope::enter_named("startup");
    /// assert_eq!(scope.name(), "startup");
    /// ```
    pub fn enter_named(name: impl Into<String>) -> Scope {
        let id = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
        Self::enter_with_id(id, name.into())
    }

    fn enter_with_id(id: ScopeId, name: String) -> Scope {
        let name: Arc<str> = name.into();
        NAMES.lock().named.insert(id, name.clone());
        let previous = set_current(id);
        Scope {
            id,
            previous,
            name,
            _thread_bound: PhantomData,
        }
    }

    pub(crate) fn id(&self) -> ScopeId {
        self.id
    }

    /// The name reports use for this scope.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Out of order, this would restore a scope that is not the one before it.
        debug_assert!(
            std::thread::panicking() || current() == self.id,
            "scopes dropped out of order"
        );
        set_current(self.previous);
        NAMES.lock().closed.push(self.id);
    }
}

/// The scope names, held by a forking thread across `fork` (`registry::fork`).
#[cfg(lc_thread_hook)]
pub(crate) struct NamesHeld(std::sync::MutexGuard<'static, Names>);

/// Takes the names' lock until the fork is done.
#[cfg(lc_thread_hook)]
pub(crate) fn hold_names() -> NamesHeld {
    NamesHeld(NAMES.lock())
}

#[cfg(lc_thread_hook)]
impl NamesHeld {
    /// In a forked child: the parent's scopes are not the child's. Forgotten, not dropped.
    pub(crate) fn forget_all(mut self) {
        std::mem::forget(std::mem::take(&mut *self.0));
    }
}

/// The scopes dropped since they were last forgotten: the candidates for forgetting.
pub(crate) fn closed() -> Vec<ScopeId> {
    NAMES.lock().closed.clone()
}

/// Forgets dropped scopes whose threads and tasks have all ended: their names go.
pub(crate) fn forget(finished: &[ScopeId]) {
    if finished.is_empty() {
        return;
    }
    let finished: std::collections::HashSet<ScopeId> = finished.iter().copied().collect();
    let mut names = NAMES.lock();
    names.closed.retain(|id| !finished.contains(id));
    for id in &finished {
        names.named.remove(id);
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        let outer = Scope::enter_named("outer");
        let inner = Scope::enter_named("inner");
        assert_eq!(current(), inner.id());
        assert_eq!(label(inner.id()), "inner");
        drop(inner);
        assert_eq!(current(), outer.id());
        drop(outer);
        assert_eq!(current(), PROCESS);
    }

    #[test]
    fn a_forgotten_scope_keeps_no_name() {
        let scope = Scope::enter_named("short-lived");
        let id = scope.id();
        assert!(!closed().contains(&id));
        drop(scope);
        assert!(closed().contains(&id));
        assert_eq!(label(id), "short-lived");
        forget(&[id]);
        assert!(!closed().contains(&id));
        assert_eq!(label(id), format!("scope #{id}"));
    }

    #[test]
    #[should_panic(expected = "scopes dropped out of order")]
    #[cfg(debug_assertions)]
    fn dropping_scopes_out_of_order_is_caught() {
        let outer = Scope::enter_named("outer");
        let _inner = Scope::enter_named("inner");
        drop(outer);
    }
}
