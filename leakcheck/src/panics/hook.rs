//! The panic hook leakcheck puts around whatever hook is in place: it notes the panic's
//! message and location for the raise that follows on the same thread, then runs the hook
//! it wraps, which keeps printing as before. A test that replaces the hook (`set_hook` to
//! silence expected panics) does not blind the check: a panic still shows as lost, with the
//! message read off the panic itself (`payload`) but not where it panicked, said once; and
//! the next check or test wraps the hook in place then.
//! libtest itself takes every hook away once its tests have run: a plain test's thread that
//! panics after that (seen by `verify_test_main!`'s exit check) is reported without where
//! it panicked.

use std::cell::RefCell;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::config;
use crate::interpose::SayOnce;

/// A panic as the hook saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) message: Option<String>,
    pub(crate) location: Option<String>,
}

thread_local! {
    /// The last panic the hook saw on this thread, and whether a raise took it yet.
    static SEEN: RefCell<Option<(Seen, bool)>> = const { RefCell::new(None) };
}

/// The data pointer of leakcheck's hook where it is in place: a hook taken back from std is
/// ours if it points there.
static OURS: AtomicUsize = AtomicUsize::new(0);
/// Whether a panic showed that another hook took the place of leakcheck's.
static REPLACED: AtomicBool = AtomicBool::new(false);

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Puts leakcheck's hook around the one in place, unless it is in place already (as last
/// known: a replacement shows at the next panic). Not from a panicking thread, where std
/// refuses to change the hook.
pub(crate) fn wrap() {
    if std::thread::panicking() {
        return;
    }
    if OURS.load(Ordering::Acquire) != 0 && !REPLACED.swap(false, Ordering::AcqRel) {
        return;
    }
    let current = std::panic::take_hook();
    if address(&current) == OURS.load(Ordering::Acquire) {
        std::panic::set_hook(current);
        return;
    }
    let ours: Hook = Box::new(move |info| {
        note(info);
        current(info);
    });
    OURS.store(address(&ours), Ordering::Release);
    std::panic::set_hook(ours);
}

fn address(hook: &Hook) -> usize {
    (&raw const **hook).cast::<()>() as usize
}

fn note(info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .or_else(|| Some(super::payload::NOT_A_STRING.to_owned()));
    let location = info
        .location()
        .map(|at| format!("{}:{}:{}", at.file(), at.line(), at.column()));
    let _ = SEEN.try_with(|seen| {
        *seen.borrow_mut() = Some((Seen { message, location }, false));
    });
    // From here until the raise decides where it is caught (the hook it wraps may take
    // long: a slow message or backtrace), a check waits for this thread's panic. Only where
    // the raise hook runs, which clears it.
    if crate::registry::hooks_on() {
        if let Some(me) = crate::threads::current_origin() {
            me.set_panicking(true);
        }
    }
}

/// The message std's `thread::scope` panics with in the scope's owner when a scoped thread
/// panicked and nobody joined it: the scope hands its threads' panics back that way.
const A_SCOPED_THREAD_PANICKED: &str = "a scoped thread panicked";

/// Whether the panic being raised on this thread is the one std's `thread::scope` raises
/// in the scope's owner. (Its location is the caller's: `scope` tracks its caller.) The
/// exception's own message (`raised`) first, which is this raise's; where it cannot be
/// read, the hook's record of the panic, read, not taken.
pub(crate) fn hands_back_scoped_panics(raised: impl FnOnce() -> Option<String>) -> bool {
    if let Some(message) = raised() {
        return message == A_SCOPED_THREAD_PANICKED;
    }
    SEEN.try_with(|seen| {
        seen.borrow().as_ref().is_some_and(|(panic, taken)| {
            !*taken && panic.message.as_deref() == Some(A_SCOPED_THREAD_PANICKED)
        })
    })
    .unwrap_or(false)
}

/// What the hook saw of the panic being raised on this thread. A `fresh` panic (`panic!`,
/// not `resume_unwind`) that the hook did not see ran another hook: said once, and the hook
/// is wrapped again at the next chance. A resumed panic is the last one this thread's hook
/// saw, if any.
pub(crate) fn take_seen(fresh: bool) -> Option<Seen> {
    let seen = SEEN
        .try_with(|seen| {
            let mut seen = seen.borrow_mut();
            match seen.as_mut() {
                Some((panic, taken)) if fresh && !*taken => {
                    *taken = true;
                    Some(panic.clone())
                }
                Some((panic, _)) if !fresh => Some(panic.clone()),
                _ => None,
            }
        })
        .ok()
        .flatten();
    if fresh && seen.is_none() && OURS.load(Ordering::Acquire) != 0 && !config::preloaded() {
        REPLACED.store(true, Ordering::Release);
        say_once_the_hook_was_replaced();
    }
    seen
}

fn say_once_the_hook_was_replaced() {
    // With `write(2)`: stderr may be locked by the panic.
    static SAID: SayOnce = SayOnce::new();
    SAID.say(
        b"leakcheck: a panic ran another panic hook than leakcheck's \
        (std::panic::set_hook, or none: libtest removes every hook once its tests have run): \
        a lost panic is still found, with its message but not where it panicked; leakcheck's \
        hook goes around the new one at the next test or check\n",
    );
}
