use std::sync::mpsc;
use std::time::Duration;

use super::*;

/// One more parked thread spawned at this line, named `name`, asleep when this returns:
/// nothing wakes it until the release.
fn park_one(
    name: &str,
    wait: &std::sync::Arc<parking_lot::Mutex<mpsc::Receiver<()>>>,
) -> std::thread::JoinHandle<()> {
    let wait = wait.clone();
    let (started, tid) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = started.send(threads::current_tid());
            let _ = wait.lock().recv();
        })
        .unwrap();
    let tid = tid.recv().unwrap();
    while threads::os_state(tid)
        .is_some_and(|thread| thread.os.state() != crate::report::ThreadState::Sleeping)
    {
        std::thread::yield_now();
    }
    handle
}

#[test]
#[cfg(lc_thread_hook)]
fn a_site_that_grows_every_interval_raises_an_alarm_after_three_and_again_after_six() {
    let (release, wait) = mpsc::channel::<()>();
    let wait = std::sync::Arc::new(parking_lot::Mutex::new(wait));
    let mut handles = Vec::new();
    let mut history = History::new(3);
    let mut last = Snapshot::take();
    let mut raised = Vec::new();
    for _ in 0..7 {
        handles.push(park_one("watched-grower", &wait));
        handles.push(park_one("watched-grower", &wait));
        let now = Snapshot::take();
        let alarms = history.record(&now.growth_since(&last), Duration::from_secs(1));
        raised.push(
            alarms
                .into_iter()
                .filter(|alarm| alarm.site().names().iter().any(|n| n == "watched-grower"))
                .collect::<Vec<_>>(),
        );
        last = now;
    }
    let at: Vec<usize> = raised.iter().map(Vec::len).collect();
    assert_eq!(
        at,
        [0, 0, 1, 0, 0, 1, 0],
        "an alarm after the 3rd and the 6th growth"
    );
    let alarm = &raised[2][0];
    assert_eq!(alarm.counts(), [0, 2, 4, 6]);
    assert_eq!(alarm.site().kind(), crate::snapshot::SiteKind::Threads);
    assert_eq!(alarm.survivors(), 4);
    assert_eq!(alarm.idle(), 4, "the parked threads did not run");
    let text = alarm.to_string();
    // Spawned from leakcheck's own code, which is no frame of a user's: known by name.
    assert!(
        text.starts_with("leakcheck: threads named watched-grower"),
        "{text}"
    );
    assert!(text.contains(" keep growing: 0 -> 2 -> 4 -> 6 over 3 intervals of 1.00s; 4 of the 4 alive an interval ago did not run since"), "{text}");
    assert_eq!(raised[5][0].counts(), [6, 8, 10, 12]);
    drop(release);
    handles
        .into_iter()
        .for_each(|handle| handle.join().unwrap());
}

#[test]
#[cfg(lc_thread_hook)]
fn a_site_that_stops_growing_starts_over() {
    let (release, wait) = mpsc::channel::<()>();
    let wait = std::sync::Arc::new(parking_lot::Mutex::new(wait));
    let mut handles = Vec::new();
    let mut history = History::new(2);
    let mut last = Snapshot::take();
    let mut raised = 0;
    // Grows, pauses, grows: never two intervals in a row.
    for grows in [true, false, true, false, true] {
        if grows {
            handles.push(park_one("watched-pauser", &wait));
        }
        let now = Snapshot::take();
        raised += history
            .record(&now.growth_since(&last), Duration::from_secs(1))
            .iter()
            .filter(|alarm| alarm.site().names().iter().any(|n| n == "watched-pauser"))
            .count();
        last = now;
    }
    assert_eq!(raised, 0);
    drop(release);
    handles
        .into_iter()
        .for_each(|handle| handle.join().unwrap());
}

#[test]
fn the_watcher_runs_on_a_thread_of_its_own_that_snapshots_leave_out_and_stops() {
    let watcher = Watcher::every(Duration::from_millis(10))
        .on_alarm(|_| {})
        .start()
        .unwrap();
    // `start` returns once the watcher's thread is marked as leakcheck's own.
    let snapshot = Snapshot::take();
    assert!(snapshot.threads() >= 1, "this test's own thread, at least");
    assert!(
        snapshot.groups().iter().all(|group| !group
            .site()
            .names()
            .iter()
            .any(|n| n == "leakcheck-watcher")),
        "{snapshot}"
    );
    watcher.stop();
}

#[test]
#[should_panic(expected = "the interval must not be zero")]
fn a_zero_interval_is_refused() {
    let _ = Watcher::every(Duration::ZERO);
}
