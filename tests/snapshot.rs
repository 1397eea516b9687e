//! `Snapshot` and `Watcher` as a service sees them, in this process: its threads grouped at
//! the lines that spawned them, growth between two snapshots, and (under
//! `--cfg tokio_unstable`) its tasks. The example service (`service.rs`) shows the watcher
//! end to end.

use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use leakcheck::{report::ThreadState, service::SiteGroup, service::SiteKind, service::Snapshot};

/// The tests that spawn at `parked_threads`' line take turns: a site's count is theirs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Threads parked until the returned sender is dropped, spawned at one line, asleep (and
/// named) when this returns: from then on nothing wakes them until the release.
fn parked_threads(n: usize, name: &str) -> (mpsc::Sender<()>, Vec<JoinHandle<()>>) {
    let (release, wait) = mpsc::channel::<()>();
    let wait = Arc::new(Mutex::new(wait));
    let started = Arc::new(Barrier::new(n + 1));
    let handles = (0..n)
        .map(|_| {
            let (wait, started) = (wait.clone(), started.clone());
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    started.wait();
                    let _ = wait.lock().unwrap().recv();
                })
                .unwrap()
        })
        .collect::<Vec<_>>();
    started.wait();
    asleep(name, n);
    (release, handles)
}

/// Waits until every thread named `name` (at least `n`) is asleep (state `S` in
/// `/proc`): woken from the barrier, each has gone on to block for good.
fn asleep(name: &str, n: usize) {
    loop {
        let states: Vec<String> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let dir = task.ok()?.path();
                let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
                let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
                (comm.trim_end() == name).then(|| state.to_owned())
            })
            .collect();
        if states.len() >= n && states.iter().all(|state| state == "S") {
            return;
        }
        std::thread::yield_now();
    }
}

const SPAWN_LINE: u32 = 26;

fn group_named<'a>(snapshot: &'a Snapshot, name: &str) -> Option<&'a SiteGroup> {
    snapshot
        .groups()
        .iter()
        .find(|group| group.site().names().iter().any(|n| n == name))
}

#[test]
fn threads_are_grouped_at_their_spawn_line_with_names_ages_and_where_they_wait() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (release, handles) = parked_threads(3, "parked");
    let snapshot = Snapshot::take();
    let group = group_named(&snapshot, "parked").expect("the parked threads");
    assert_eq!(group.site().kind(), SiteKind::Threads);
    assert_eq!(group.count(), 3);
    let site = group.site().spawned_at().expect("a spawn site");
    assert_eq!(site.file(), Some("tests/snapshot.rs"), "{site:?}");
    assert_eq!(site.line(), Some(SPAWN_LINE), "{site:?}");
    assert!(
        site.function()
            .unwrap()
            .starts_with("snapshot::parked_threads"),
        "{site:?}"
    );
    assert!(group.oldest().unwrap() >= group.newest().unwrap());
    assert_eq!(group.never_woken(), None);
    assert_eq!(
        group
            .states()
            .iter()
            .map(|waiting| waiting.count())
            .sum::<usize>(),
        3
    );
    assert!(
        group
            .states()
            .iter()
            .all(|waiting| waiting.state() == Some(ThreadState::Sleeping)
                && waiting.to_string().starts_with("sleeping")),
        "{:?}",
        group.states()
    );
    let text = snapshot.to_string();
    assert!(
        text.contains("      3 threads  spawned at tests/snapshot.rs:26:"),
        "{text}"
    );
    drop(release);
    handles
        .into_iter()
        .for_each(|handle| handle.join().unwrap());
}

#[test]
fn growth_counts_a_site_then_and_now_and_its_idle_survivors() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (release_first, first) = parked_threads(2, "growing");
    let earlier = Snapshot::take();
    let (release_more, more) = parked_threads(3, "growing");
    let later = Snapshot::take();
    let growth = later.growth_since(&earlier);
    let site = growth
        .growing()
        .find(|site| site.site().names().iter().any(|n| n == "growing"))
        .expect("the growing site");
    assert_eq!((site.then(), site.now(), site.change()), (2, 5, 3));
    assert_eq!(site.survivors(), 2);
    assert_eq!(site.idle(), 2, "parked threads did not run in between");
    assert!(
        growth.to_string().contains(&format!(
            "threads spawned at tests/snapshot.rs:{SPAWN_LINE}:"
        )),
        "{growth}"
    );
    drop((release_first, release_more));
    first
        .into_iter()
        .chain(more)
        .for_each(|handle| handle.join().unwrap());
    let after = Snapshot::take().growth_since(&later);
    let gone = after
        .sites()
        .iter()
        .find(|site| site.site().names().iter().any(|n| n == "growing"))
        .expect("the site, gone");
    assert_eq!((gone.then(), gone.now()), (5, 0));
    assert!(after.to_string().contains(": 5 -> 0 (-5)"), "{after}");
}

#[test]
fn the_main_thread_is_there_though_no_hook_saw_it_start() {
    let snapshot = Snapshot::take();
    let unseen: Vec<_> = snapshot
        .groups()
        .iter()
        .filter(|group| group.site().spawned_at().is_none())
        .collect();
    assert!(!unseen.is_empty(), "{snapshot}");
    assert!(
        snapshot.to_string().contains("not seen spawned"),
        "{snapshot}"
    );
}

#[test]
#[cfg(tokio_unstable)]
fn tasks_of_a_hooked_runtime_are_grouped_by_spawn_line_and_parent() {
    use leakcheck::TokioBuilderExt;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .with_leakcheck()
        .build()
        .unwrap();
    let parent_line = line!() + 1;
    let parent = runtime.spawn(async move {
        let children: Vec<_> = (0..50)
            .map(|_| tokio::spawn(std::future::pending::<()>()))
            .collect();
        children
    });
    let children = runtime.block_on(parent).unwrap();
    let snapshot = Snapshot::take();
    let group = snapshot
        .groups()
        .iter()
        .find(|group| group.site().parent().and_then(|site| site.line()) == Some(parent_line))
        .expect("the children");
    assert_eq!(group.site().kind(), SiteKind::Tasks);
    assert_eq!(group.count(), 50);
    assert_eq!(
        group.site().spawned_at().unwrap().line(),
        Some(parent_line + 2)
    );
    assert!(
        group
            .site()
            .spawned_at()
            .unwrap()
            .file()
            .unwrap()
            .ends_with("snapshot.rs")
    );
    let json: serde_json::Value = serde_json::from_str(&snapshot.to_json()).unwrap();
    assert!(json["tasks"].as_u64().unwrap() >= 50);
    runtime.block_on(async {
        for child in children {
            child.abort();
            assert!(child.await.unwrap_err().is_cancelled());
        }
    });
    // tokio runs a task's terminate hook just after its JoinHandle has its output, so a
    // look right after the await may still see a few.
    let gone = (0..10_000).any(|_| {
        std::thread::yield_now();
        Snapshot::take()
            .groups()
            .iter()
            .all(|group| group.site().parent().and_then(|site| site.line()) != Some(parent_line))
    });
    assert!(gone, "{}", Snapshot::take());
}

#[test]
fn a_scope_per_request_keeps_no_memory_once_its_work_has_ended() {
    let before = leakcheck::__private::scope_entries();
    for request in 0..1000 {
        let scope = leakcheck::Scope::enter_named(format!("request {request}"));
        std::thread::spawn(|| ()).join().unwrap();
        drop(scope);
    }
    let _ = Snapshot::take(); // forgets the finished scopes
    let after = leakcheck::__private::scope_entries();
    assert!(
        after <= before + 2,
        "{before} scope entries before, {after} after"
    );
}

#[test]
fn the_watcher_raises_an_alarm_for_a_site_that_grows_every_interval() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (alarms, raised) = mpsc::channel();
    let watcher = leakcheck::service::Watcher::every(Duration::from_millis(5))
        .alarm_after(1)
        .on_alarm(move |alarm| {
            let _ = alarms.send(alarm.to_string());
        })
        .start()
        .unwrap();
    // One more parked thread a round until the watcher has seen the site grow (its first
    // look may come after the first few): a bounded number of rounds, no deadline.
    let mut parked = Vec::new();
    let alarm = (0..2000).find_map(|_| {
        parked.push(parked_threads(1, "watched"));
        std::thread::sleep(Duration::from_millis(2));
        raised
            .try_iter()
            .find(|alarm| alarm.contains(&format!("tests/snapshot.rs:{SPAWN_LINE}:")))
    });
    watcher.stop();
    let alarm = alarm.expect("an alarm for the parked threads");
    assert!(
        alarm.starts_with("leakcheck: threads spawned at "),
        "{alarm}"
    );
    assert!(alarm.contains(" keep growing: "), "{alarm}");
    assert!(alarm.contains(" over 1 interval of "), "{alarm}");
    for (release, handles) in parked {
        drop(release);
        handles
            .into_iter()
            .for_each(|handle| handle.join().unwrap());
    }
}

#[leakcheck::test]
fn a_watcher_started_inside_a_test_is_not_that_test_s_leak() {
    // Left running on purpose, for the rest of this process.
    let _watcher = leakcheck::service::Watcher::every(Duration::from_secs(3600))
        .start()
        .unwrap();
}

/// A service's children, by the line that started them: counted, with their command line
/// and where they wait; gone from the next snapshot once waited for.
#[test]
#[cfg(target_os = "linux")]
fn child_processes_are_grouped_at_the_line_that_started_them() {
    let mut children: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("31")
                .spawn() // the children's line
                .unwrap()
        })
        .collect();
    let line = line_of("// the children's line");
    let snapshot = Snapshot::take();
    let group = snapshot
        .groups()
        .iter()
        .find(|group| group.site().kind() == SiteKind::Processes)
        .unwrap_or_else(|| panic!("no group of processes in:\n{snapshot}"));
    assert_eq!(group.count(), 2, "{snapshot}");
    assert_eq!(group.site().names(), ["sleep 31"]);
    let site = group.site().spawned_at().expect("a spawn line");
    assert_eq!(
        site.location().unwrap(),
        format!("tests/snapshot.rs:{line}:18")
    );
    let text = snapshot.to_string();
    assert!(
        text.contains("      2 processes spawned at tests/snapshot.rs:"),
        "{text}"
    );
    assert!(
        snapshot.to_json().contains("\"processes\":2"),
        "{}",
        snapshot.to_json()
    );
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(Snapshot::take().processes(), 0);
}

/// The line of this file that ends with `marker`.
fn line_of(marker: &str) -> usize {
    include_str!("snapshot.rs")
        .lines()
        .position(|line| line.trim_end().ends_with(marker) && !line.contains("line_of("))
        .expect("the marker")
        + 1
}
