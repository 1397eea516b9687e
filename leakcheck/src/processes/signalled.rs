//! The children this process sent a signal to, lately (`Child::kill`, tokio's
//! `kill_on_drop`), directly or through their process group (`kill(-pgid, ..)`, `killpg`):
//! one that exited and has not been waited for yet is on its way to being reaped, not a
//! zombie to report. A fixed ring of pids (a group as `-pgid`), written by the `kill` and
//! `killpg` hooks with one atomic store: no lock, no allocation.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

const RING: usize = 256;

static PIDS: [AtomicI32; RING] = [const { AtomicI32::new(0) }; RING];
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `pid` was sent a signal (a process group: `-pgid`).
pub(crate) fn note(pid: i32) {
    let at = NEXT.fetch_add(1, Ordering::Relaxed) % RING;
    PIDS[at].store(pid, Ordering::Relaxed);
}

/// Whether `pid` was sent a signal among the last few hundred signals sent.
pub(crate) fn was(pid: i32) -> bool {
    PIDS.iter().any(|slot| slot.load(Ordering::Relaxed) == pid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_signalled_pid_is_remembered() {
        super::note(-77);
        assert!(super::was(-77));
        assert!(!super::was(-78));
    }
}
