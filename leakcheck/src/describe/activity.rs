//! What a leak did while the check watched it: stuck, woken, busy on a CPU, or polled
//! (`FirstSeen`, the counters at the first look, against the last).

use super::*;

/// Each leak as the check's earlier looks first saw it: its wake-ups are counted from there.
pub(super) struct FirstSeen {
    /// Every look's counters of each thread, in order.
    threads: HashMap<i32, Vec<threads::Counters>>,
    tasks: HashMap<tokio::task::Id, u32>,
    /// How long the looks watched.
    watched: Duration,
    grace: Duration,
}

impl FirstSeen {
    pub(super) fn of(earlier: &[Suspect], watched: Duration, grace: Duration) -> FirstSeen {
        let mut first_seen = FirstSeen {
            threads: HashMap::new(),
            tasks: HashMap::new(),
            watched,
            grace,
        };
        for suspect in earlier {
            match suspect {
                Suspect::Thread {
                    tid: Some(tid),
                    counters: Some(counters),
                    ..
                } => {
                    first_seen.threads.entry(*tid).or_default().push(*counters);
                }
                Suspect::Task(origin) => {
                    first_seen.tasks.entry(origin.id).or_insert(origin.polls);
                }
                _ => {}
            }
        }
        first_seen
    }

    fn activity(&self, kind: ActivityKind) -> Activity {
        Activity {
            kind,
            watched: self.watched,
            grace: self.grace,
        }
    }

    /// A thread's wake-ups and CPU time since then; a timer is a sleep or a timed wait.
    pub(super) fn thread(
        &self,
        tid: Option<i32>,
        now: Option<threads::Counters>,
        leak: &Leak,
    ) -> Option<Activity> {
        let (tid, now) = (tid?, now?);
        let looks = self.threads.get(&tid)?;
        // From the first look that found it in the call it is in now; if none did (it is
        // running, or entered it since), from the first look, less the one switch into it.
        let (then, entered) = match looks.iter().find(|then| then.call == now.call) {
            Some(then) => (then, 0),
            None => (looks.first()?, 1),
        };
        // Signals wake a blocked thread too (SIGCHLD lands on any thread of a process with a
        // handler for it): a read that restarted after each, having read nothing, is the read
        // it was, waiting for data that never came.
        let restarted_only = entered == 0
            && then
                .bytes_read
                .is_some_and(|bytes| now.bytes_read == Some(bytes));
        let woken = if restarted_only {
            0
        } else {
            now.wakeups
                .saturating_sub(then.wakeups)
                .saturating_sub(entered)
        };
        let cpu = now.cpu.saturating_sub(then.cpu);
        let timer = leak.os.as_ref().is_some_and(|os| os.is_timed());
        let did = match (woken, timer) {
            (0, true) => ActivityKind::WaitingOnATimer,
            (0, false) if cpu >= BUSY => ActivityKind::Busy { cpu },
            (0, false) => ActivityKind::Stuck,
            (times, _) => ActivityKind::Woken {
                times,
                cpu: Some(cpu),
            },
        };
        Some(self.activity(did))
    }

    /// A task's polls since then; a timer is a tokio timer in its await trace.
    pub(super) fn task(&self, origin: &LiveTask, leak: &Leak) -> Option<Activity> {
        let then = self.tasks.get(&origin.id)?;
        let timer = leak.awaiting.iter().any(|frame| {
            frame
                .function()
                .is_some_and(|function| function.contains("tokio::time::"))
        });
        // A task not yet polled then is started, not woken, by its first poll.
        let woken = origin.polls.saturating_sub((*then).max(1));
        let did = match (woken, timer) {
            (0, true) => ActivityKind::WaitingOnATimer,
            (0, false) => ActivityKind::Stuck,
            (times, _) => ActivityKind::Woken {
                times: u64::from(times),
                cpu: None,
            },
        };
        Some(self.activity(did))
    }
}

/// CPU time that makes a thread never woken busy rather than stuck: more than the ticks a
/// thread that only started up uses.
pub(super) const BUSY: Duration = Duration::from_millis(20);
