//! Where each task of a runtime is awaiting now, from tokio's task dump. Only at report
//! time: a dump stops the runtime's tasks while it traces them, and resolving its
//! backtraces reads debug info.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Handle;

use super::Awaiting;
use crate::frames::{self, Frame};

/// A worker blocked in synchronous code never answers a dump: give up after this.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// For each task of the runtime, the frames of its last poll that say where it waits: the
/// tokio future at the bottom, then the user's frames that awaited it, innermost first.
pub(crate) async fn awaiting(handle: &Handle) -> Awaiting {
    // tokio#8391: a dump can panic on a current_thread runtime; the test must not.
    let dump = CatchUnwind(Box::pin(tokio::time::timeout(DUMP_TIMEOUT, handle.dump())));
    let dump = match dump.await {
        Ok(Ok(dump)) => dump,
        Ok(Err(_elapsed)) => return Err("the task dump timed out (a worker is blocked)"),
        Err(()) => return Err("the task dump failed (tokio panicked while taking it)"),
    };
    let mut awaiting = HashMap::new();
    for task in dump.tasks().iter() {
        let mut frames = Vec::new();
        for backtrace in task.trace().resolve_backtraces() {
            let resolved: Vec<Frame> = backtrace
                .frames()
                .flat_map(|frame| frame.symbols())
                .map(|symbol| {
                    frames::from_symbol(
                        symbol.name_demangled(),
                        symbol.filename(),
                        symbol.lineno(),
                        symbol.colno(),
                    )
                })
                .collect();
            if let Some(leaf) = resolved.iter().find(|frame| is_leaf_future(frame)) {
                frames.push(leaf.clone());
            }
            frames.extend(frames::user_frames(&resolved));
        }
        awaiting.insert(task.id(), frames);
    }
    Ok(awaiting)
}

/// The tokio future the task is parked in (`tokio::sync::oneshot::Receiver<T>::poll`):
/// the first tokio frame that is not the dump's own tracing machinery.
fn is_leaf_future(frame: &Frame) -> bool {
    frame.function().is_some_and(|function| {
        let function = function.trim_start_matches('<');
        function.starts_with("tokio::")
            && !function.starts_with("tokio::runtime::task::trace")
            && !function.starts_with("tokio::runtime::context")
            && !function.starts_with("tokio::task::coop")
    })
}

/// Turns a panic while polling `F` into `Err(())`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_panic) => Poll::Ready(Err(())),
        }
    }
}
