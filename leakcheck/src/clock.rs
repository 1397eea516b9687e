//! Spawn times, as small as a task's record allows: 10 ms ticks since the process's first
//! spawn or check, in a `u32` (497 days, then it stays at the last tick). A snapshot of a
//! running service tells a task spawned a second ago from one spawned yesterday; nothing
//! finer is needed, and the task table's record has room for four bytes, not eight.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// 10 ms since [`START`].
pub(crate) type Tick = u32;

const TICK: Duration = Duration::from_millis(10);

/// Set by the first use: before `main` by `init`, so that ages count from process start.
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Starts the clock, if nothing has yet.
pub(crate) fn start() {
    LazyLock::force(&START);
}

/// Now, in ticks.
#[inline]
pub(crate) fn now() -> Tick {
    ticks(START.elapsed())
}

/// How long before `uptime` (a reading of [`uptime`]) `tick` was: ages compared with each
/// other must share one reading.
pub(crate) fn age(tick: Tick, uptime: Duration) -> Duration {
    uptime.saturating_sub(TICK * tick)
}

/// Time since the clock started.
pub(crate) fn uptime() -> Duration {
    START.elapsed()
}

fn ticks(elapsed: Duration) -> Tick {
    Tick::try_from(elapsed.as_millis() / TICK.as_millis()).unwrap_or(Tick::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_ten_milliseconds_and_saturate() {
        assert_eq!(ticks(Duration::from_millis(9)), 0);
        assert_eq!(ticks(Duration::from_millis(1_234)), 123);
        assert_eq!(ticks(Duration::from_secs(500 * 24 * 3600)), Tick::MAX);
    }

    #[test]
    fn an_age_is_never_negative() {
        assert!(age(now(), uptime()) < Duration::from_secs(1));
        assert_eq!(age(Tick::MAX, uptime()), Duration::ZERO);
    }
}
