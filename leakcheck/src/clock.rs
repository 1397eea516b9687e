//! Spawn times, as small as a task's record allows: 10 ms ticks since the process started,
//! in a `u32` (497 days, then it stays at the last tick). A snapshot of a running service
//! tells a task spawned a second ago from one spawned yesterday; nothing finer is needed,
//! and the task table's record has room for four bytes, not eight.
//!
//! Read at every task spawn, so on Linux it is the kernel's coarse monotonic clock (its
//! resolution is the scheduler tick, a few ms, and reading it costs a few instructions
//! in the vDSO where `Instant::now` costs ~90); elsewhere `Instant`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// 10 ms since the process started.
pub(crate) type Tick = u32;

const TICK_MS: u64 = 10;

/// The monotonic clock's reading, in ticks, when the process started (`init` reads it
/// before `main`; the first use, if that did not run). `u64::MAX`: not read yet.
static START: AtomicU64 = AtomicU64::new(u64::MAX);

/// Starts the clock, if nothing has yet.
pub(crate) fn start() {
    start_ticks();
}

#[inline]
fn start_ticks() -> u64 {
    match START.load(Ordering::Relaxed) {
        u64::MAX => read_start(),
        start => start,
    }
}

#[cold]
#[inline(never)]
fn read_start() -> u64 {
    let now = monotonic_ticks();
    match START.compare_exchange(u64::MAX, now, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => now,
        Err(earlier) => earlier,
    }
}

/// Now, in ticks. Read by the spawn hooks, which exist where `lc_thread_hook` or
/// `tokio_unstable` holds.
#[cfg(any(lc_thread_hook, tokio_unstable))]
#[inline]
pub(crate) fn now() -> Tick {
    Tick::try_from(monotonic_ticks().saturating_sub(start_ticks())).unwrap_or(Tick::MAX)
}

/// Time since the process started.
pub(crate) fn uptime() -> Duration {
    Duration::from_millis(monotonic_ticks().saturating_sub(start_ticks()) * TICK_MS)
}

/// How long before `uptime` (a reading of [`uptime`]) `tick` was: ages compared with each
/// other must share one reading.
pub(crate) fn age(tick: Tick, uptime: Duration) -> Duration {
    uptime.saturating_sub(Duration::from_millis(u64::from(tick) * TICK_MS))
}

#[cfg(lc_coarse_clock)]
fn monotonic_ticks() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; the coarse monotonic clock exists
    // on every Linux since 2.6.32 (were it missing, `now` stays zero: ages read zero).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds * (1000 / TICK_MS) + nanos / (TICK_MS * 1_000_000)
}

#[cfg(not(lc_coarse_clock))]
fn monotonic_ticks() -> u64 {
    static BASE: std::sync::LazyLock<std::time::Instant> =
        std::sync::LazyLock::new(std::time::Instant::now);
    let elapsed = BASE.elapsed();
    elapsed.as_secs() * (1000 / TICK_MS) + u64::from(elapsed.subsec_millis()) / TICK_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(lc_thread_hook, tokio_unstable))]
    fn ticks_never_go_back_and_agree_with_the_uptime() {
        let mut last = now();
        for _ in 0..1000 {
            let tick = now();
            assert!(tick >= last, "{last} -> {tick}");
            last = tick;
        }
        assert!(uptime() >= Duration::from_millis(u64::from(last) * TICK_MS));
    }

    #[test]
    fn an_age_is_never_negative() {
        assert!(age(0, uptime()) <= uptime());
        assert_eq!(age(Tick::MAX, uptime()), Duration::ZERO);
        assert_eq!(age(100, Duration::from_secs(3)), Duration::from_secs(2));
    }
}
