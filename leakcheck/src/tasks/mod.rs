//! tokio tasks: the runtime an async test runs on, built the way `#[tokio::test]` builds
//! it plus leakcheck's task hooks where tokio has them (`--cfg tokio_unstable`), and where
//! each leaked task is awaiting (the `taskdump` feature).
//!
//! Without `tokio_unstable` tokio has no task hooks: a test's runtime still tells how many
//! of its tasks are alive, which is enough to fail the test, but not which ones.

#[cfg(tokio_unstable)]
mod hooks;

// `lc_taskdump` is defined once, in build.rs.
#[cfg(lc_taskdump)]
mod dump;
#[cfg(not(lc_taskdump))]
mod dump {
    //! Without task dumps nothing tells where a task is awaiting; the report says why.
    use super::Awaiting;

    const UNAVAILABLE: &str = "where a task is awaiting needs leakcheck's `taskdump` feature \
        with --cfg tokio_unstable (Linux x86, x86_64, aarch64, s390x), without \
        --cfg leakcheck_no_taskdump";

    pub(crate) async fn awaiting(_handle: &tokio::runtime::Handle) -> Awaiting {
        Err(UNAVAILABLE)
    }
}

pub(crate) use dump::awaiting;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, LocalOptions, LocalRuntime, Runtime, RuntimeMetrics};

use crate::frames::Frame;

/// Where each task of a runtime is awaiting, by task id, or why that is not known.
pub(crate) type Awaiting = Result<HashMap<tokio::task::Id, Vec<Frame>>, &'static str>;

/// Whether tasks are attributed on this build: tokio's task hooks exist only under
/// `--cfg tokio_unstable`.
pub(crate) const HOOKED: bool = cfg!(tokio_unstable);

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

/// The runtime a leak-checked async test runs on: a `Send` [`Runtime`] (current_thread or
/// multi_thread), or a [`LocalRuntime`] (`flavor = "local"`).
pub(crate) enum TestRuntime {
    Threaded(Runtime),
    Local(LocalRuntime),
}

impl TestRuntime {
    /// Builds it as `#[tokio::test]` would (`enable_all`, then `build`), with leakcheck's
    /// hooks where tokio has them.
    pub(crate) fn build(mut builder: Builder, flavor: Flavor) -> std::io::Result<TestRuntime> {
        builder.enable_all();
        install_hooks(&mut builder);
        Ok(match flavor {
            Flavor::Local => TestRuntime::Local(builder.build_local(LocalOptions::default())?),
            Flavor::CurrentThread | Flavor::MultiThread => TestRuntime::Threaded(builder.build()?),
        })
    }

    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            TestRuntime::Threaded(runtime) => runtime.block_on(future),
            TestRuntime::Local(runtime) => runtime.block_on(future),
        }
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            TestRuntime::Threaded(runtime) => runtime.handle(),
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
            TestRuntime::Threaded(runtime) => runtime.shutdown_timeout(bound),
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
pub trait TokioBuilderExt: sealed::Sealed {
    /// Installs leakcheck's task hooks; see the trait.
    fn with_leakcheck(&mut self) -> &mut Self;
}

/// `TokioBuilderExt` is for tokio's `Builder` alone, so that a method can be added to it.
mod sealed {
    pub trait Sealed {}
    impl Sealed for tokio::runtime::Builder {}
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
    if crate::registry::hooks_on() {
        hooks::install(builder);
    }
}

#[cfg(not(tokio_unstable))]
fn install_hooks(_builder: &mut Builder) {}
