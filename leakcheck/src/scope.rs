//! Scopes: who owns what is spawned. The current scope is a thread-local id; a spawned
//! thread starts in its parent's scope (set by the spawn hook), so ownership is inherited
//! down any chain of spawns without walking parents at check time.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Options;
use crate::registry;
use crate::report::Report;

/// Id of a scope. `0` is the process level: what `main`, static initialisers and anything
/// outside every scope spawn.
pub(crate) type ScopeId = u64;
pub(crate) const PROCESS: ScopeId = 0;

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    // `const` and `Cell`: no destructor, so the spawn hook can read it at any point of a
    // thread's life, TLS teardown included.
    static CURRENT: Cell<ScopeId> = const { Cell::new(PROCESS) };
}

/// The scope the calling thread spawns into now.
pub(crate) fn current() -> ScopeId {
    CURRENT.try_with(Cell::get).unwrap_or(PROCESS)
}

/// Makes `scope` the calling thread's scope; returns the one it replaces.
pub(crate) fn set_current(scope: ScopeId) -> ScopeId {
    CURRENT.try_with(|c| c.replace(scope)).unwrap_or(PROCESS)
}

/// Attributes what the current thread spawns, from now until the `Scope` is dropped.
///
/// Threads started while a scope is active belong to it, and so does everything *they*
/// spawn. [`Scope::verify_none`] then checks this scope alone, so tests that run in
/// parallel never blame each other. `#[leakcheck::test]` enters a scope named after the
/// test; use `Scope` directly in a custom harness or to check part of a test.
///
/// Scopes nest: dropping one restores the scope that was current before it. A `Scope`
/// belongs to the thread that entered it and cannot be sent to another.
///
/// ```
/// let scope = leakcheck::Scope::enter_named("checks the worker");
/// let worker = std::thread::spawn(|| 2 + 2);
/// assert_eq!(worker.join().unwrap(), 4);
/// scope.verify_none(); // the worker was joined: nothing leaked
/// ```
pub struct Scope {
    id: ScopeId,
    previous: ScopeId,
    name: std::sync::Arc<str>,
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
        let name: std::sync::Arc<str> = name.into();
        registry::name_scope(id, name.clone());
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

    /// Checks this scope with default options; panics with the report if anything
    /// it owns is still running after the grace period.
    ///
    /// ```
    /// let scope = leakcheck::Scope::enter();
    /// scope.verify_none();
    /// ```
    pub fn verify_none(&self) {
        self.verify_none_with(&Options::default());
    }

    /// [`Scope::verify_none`] with options.
    ///
    /// ```
    /// use std::time::Duration;
    /// let scope = leakcheck::Scope::enter();
    /// scope.verify_none_with(&leakcheck::Options::new().grace(Duration::from_millis(50)));
    /// ```
    pub fn verify_none_with(&self, options: &Options) {
        if let Err(report) = self.find(options) {
            crate::fail_or_warn(&report);
        }
    }

    /// Checks this scope and returns the report instead of panicking.
    ///
    /// ```
    /// let scope = leakcheck::Scope::enter();
    /// assert!(scope.find(&leakcheck::Options::new()).is_ok());
    /// ```
    pub fn find(&self, options: &Options) -> Result<(), Report> {
        crate::verify::find_configured(crate::verify::Target::Scope(self.id), options)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        set_current(self.previous);
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
