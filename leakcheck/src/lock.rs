//! [`Lock`]: the mutex of leakcheck's bounded globals (the registry, the task shards, its
//! own-thread set, scope names). A leaf: it imports nothing of the crate.
//!
//! It is std's, which on Linux is a futex on a word of its own: nothing is shared with other
//! locks. `parking_lot` parks contended threads in one global table, whose bucket locks a
//! forked child could inherit held by a thread that does not exist there; with std's, a
//! child given fresh state (`registry::fork`) has nothing of its parent's threads left to
//! wait for. Poisoning is ignored: nothing holds one of these across a panic, and a hook must
//! never fail on it.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) struct Lock<T>(Mutex<T>);

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Lock<T> {
        Lock(Mutex::new(value))
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Lock<T> {
        Lock::new(T::default())
    }
}
