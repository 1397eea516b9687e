//! tokio tasks: the runtime an async test runs on, built the way `#[tokio::test]` builds
//! it plus leakcheck's task hooks where tokio has them (`--cfg tokio_unstable`), and where
//! each leaked task is awaiting (the `taskdump` feature).
//!
//! Without `tokio_unstable` tokio has no task hooks: a test's runtime still tells how many
//! of its tasks are alive, which is enough to fail the test, but not which ones.

#[cfg(tokio_unstable)]
mod hooks;

#[cfg(all(
    tokio_unstable,
    not(leakcheck_no_taskdump),
    feature = "taskdump",
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "s390x"
    )
))]
mod dump;
#[cfg(not(all(
    tokio_unstable,
    not(leakcheck_no_taskdump),
    feature = "taskdump",
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "s390x"
    )
)))]
mod dump {
    //! Without task dumps nothing tells where a task is awaiting; the report says why.
    use std::collections::HashMap;

    const UNAVAILABLE: &str = "where a task is awaiting needs leakcheck's `taskdump` feature \
        with --cfg tokio_unstable (Linux x86, x86_64, aarch64, s390x), without \
        --cfg leakcheck_no_taskdump";

    pub(crate) async fn awaiting(
        _handle: &tokio::runtime::Handle,
    ) -> Result<HashMap<tokio::task::Id, Vec<crate::report::Frame>>, &'static str> {
        Err(UNAVAILABLE)
    }
}

pub(crate) use dump::awaiting;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, LocalOptions, LocalRuntime, Runtime, RuntimeMetrics};

/// A task as the threads it spawns remember it: its id and spawn line.
pub(crate) type TaskRef = (tokio::task::Id, &'static std::panic::Location<'static>);

thread_local! {
    /// The task this thread is polling, if a hooked runtime's worker is polling one.
    /// `const` and `Cell`: the thread spawn hook reads it, at any point of a thread's life.
    static POLLED: std::cell::Cell<Option<TaskRef>> = const { std::cell::Cell::new(None) };
}

/// The task the calling thread is polling now, for the thread spawn hook: a thread spawned
/// from inside a task was spawned by that task. Always `None` without task hooks.
#[cfg_attr(not(all(target_os = "linux", not(miri))), allow(dead_code))]
pub(crate) fn polled_task() -> Option<TaskRef> {
    POLLED.try_with(std::cell::Cell::get).ok().flatten()
}

#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn set_polled_task(task: Option<TaskRef>) {
    let _ = POLLED.try_with(|polled| polled.set(task));
}

/// Whether tasks are attributed on this build: tokio's task hooks exist only under
/// `--cfg tokio_unstable`.
pub(crate) const HOOKED: bool = cfg!(tokio_unstable);

/// What the report says when tasks cannot be told apart, and how to fix that.
pub(crate) const HOW_TO_HOOK: &str = "\
tokio tells leakcheck which tasks and where they were spawned only with `--cfg tokio_unstable`;
  add to .cargo/config.toml:
      [build]
      rustflags = [\"--cfg\", \"tokio_unstable\"]
  (or run RUSTFLAGS=\"--cfg tokio_unstable\" cargo test)";

/// The runtime flavors `#[tokio::test]` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `flavor = "current_thread"`, the default.
    CurrentThread,
    /// `flavor = "multi_thread"`.
    MultiThread,
    /// `flavor = "local"`: a `LocalRuntime`.
    Local,
}

/// The runtime a leak-checked async test runs on.
pub(crate) enum TestRuntime {
    Shared(Runtime),
    Local(LocalRuntime),
}

impl TestRuntime {
    /// Builds it as `#[tokio::test]` would (`enable_all`, then `build`), with leakcheck's
    /// hooks where tokio has them.
    ///
    /// # Panics
    ///
    /// If `LEAKCHECK_TASK_BACKTRACE` is set to something that is not a yes or no, on every
    /// build (without `tokio_unstable` it has no effect, but a typo still deserves a word).
    pub(crate) fn build(mut builder: Builder, flavor: Flavor) -> std::io::Result<TestRuntime> {
        if let Err(message) = crate::config::task_backtraces() {
            panic!("{message}");
        }
        builder.enable_all();
        install_hooks(&mut builder);
        Ok(match flavor {
            Flavor::Local => TestRuntime::Local(builder.build_local(LocalOptions::default())?),
            Flavor::CurrentThread | Flavor::MultiThread => TestRuntime::Shared(builder.build()?),
        })
    }

    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            TestRuntime::Shared(runtime) => runtime.block_on(future),
            TestRuntime::Local(runtime) => runtime.block_on(future),
        }
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            TestRuntime::Shared(runtime) => runtime.handle(),
            TestRuntime::Local(runtime) => runtime.handle(),
        }
    }

    pub(crate) fn metrics(&self) -> RuntimeMetrics {
        self.handle().metrics()
    }

    /// Shuts down, waiting at most `bound` for `spawn_blocking` work: a plain drop would
    /// wait forever for a closure that never returns.
    pub(crate) fn shutdown_timeout(self, bound: Duration) {
        match self {
            TestRuntime::Shared(runtime) => runtime.shutdown_timeout(bound),
            TestRuntime::Local(runtime) => runtime.shutdown_timeout(bound),
        }
    }
}

/// Gives a runtime you build yourself leakcheck's task hooks, so that tasks spawned on it
/// are attributed to the test (the [`Scope`](crate::Scope)) that spawned them, wherever
/// they run: a runtime shared by many tests, a server started in a fixture.
///
/// The runtime's own threads (workers, the blocking pool) belong to no test, even when the
/// runtime is built lazily inside one: while a worker polls a task, it works for the test
/// that spawned the task, so what the task spawns is that test's.
///
/// tokio keeps one callback per hook, so call this before any `on_task_spawn`,
/// `on_task_terminate`, `on_before_task_poll`, `on_after_task_poll` or `on_thread_start`
/// of your own: a later one replaces leakcheck's.
///
/// Task hooks exist only under `--cfg tokio_unstable`. Without it, tasks on this runtime
/// are not checked (the first check says so once); its threads are still released.
///
/// ```
/// use leakcheck::TokioBuilderExt;
///
/// let runtime = tokio::runtime::Builder::new_multi_thread()
///     .worker_threads(2)
///     .enable_all()
///     .with_leakcheck()
///     .build()
///     .unwrap();
/// let scope = leakcheck::Scope::enter_named("uses the shared runtime");
/// runtime.block_on(async { tokio::spawn(async { 1 + 1 }).await.unwrap() });
/// scope.verify_none(); // the task was awaited: nothing leaked
/// ```
pub trait TokioBuilderExt {
    /// Installs leakcheck's task hooks; see the trait.
    fn with_leakcheck(&mut self) -> &mut Self;
}

impl TokioBuilderExt for Builder {
    fn with_leakcheck(&mut self) -> &mut Self {
        install_hooks(self);
        self.on_thread_start(crate::threads::release_current_thread);
        if !HOOKED {
            UNHOOKED_RUNTIME.store(true, Ordering::Relaxed);
        }
        self
    }
}

/// Set when a user's runtime asked for hooks that this build of tokio lacks.
static UNHOOKED_RUNTIME: AtomicBool = AtomicBool::new(false);

/// Why tasks of user-built runtimes are not checked, once one has been built.
pub(crate) fn unhooked_runtime_warning() -> Option<&'static str> {
    UNHOOKED_RUNTIME.load(Ordering::Relaxed).then_some(
        "tasks on runtimes built with `with_leakcheck()` are not checked: tokio's task \
         hooks need --cfg tokio_unstable",
    )
}

#[cfg(tokio_unstable)]
fn install_hooks(builder: &mut Builder) {
    if !crate::config::hooks_off() {
        hooks::install(builder);
    }
}

#[cfg(not(tokio_unstable))]
fn install_hooks(_builder: &mut Builder) {}
