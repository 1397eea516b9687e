use std::sync::mpsc;
use std::time::Duration;

#[cfg(feature = "metrics")]
use super::metrics::without_ids;
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

/// The gauges as a recorder sees them: each site's live threads by its label, the biggest
/// sites by their own and the rest as `other`, and a site gone back to zero.
#[test]
#[cfg(all(feature = "metrics", lc_thread_hook))]
fn site_gauges_publish_bounded_label_sets() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    /// Every gauge the recorder holds now, by name and site.
    fn gauges(snapshotter: &Snapshotter) -> HashMap<(String, String), f64> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| {
                let key = key.key();
                let site = key.labels().find(|label| label.key() == "site")?;
                match value {
                    DebugValue::Gauge(value) => Some((
                        (key.name().to_owned(), site.value().to_owned()),
                        value.into_inner(),
                    )),
                    _ => None,
                }
            })
            .collect()
    }
    let live = |gauges: &HashMap<(String, String), f64>, site: &str| {
        gauges
            .get(&("leakcheck_live_threads".to_owned(), site.to_owned()))
            .copied()
    };
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (release, wait) = mpsc::channel::<()>();
    let wait = std::sync::Arc::new(parking_lot::Mutex::new(wait));
    let big: Vec<_> = (0..3).map(|_| park_one("gauged-big", &wait)).collect();
    let small = park_one("gauged-small", &wait);
    ::metrics::with_local_recorder(&recorder, || {
        let mut all = SiteGauges::new(1_000);
        let before = Snapshot::take();
        all.publish(&before, &before.growth_since(&before));
        let published = gauges(&snapshotter);
        assert_eq!(
            live(&published, "names:gauged-big"),
            Some(3.0),
            "{published:?}"
        );
        assert_eq!(
            live(&published, "names:gauged-small"),
            Some(1.0),
            "{published:?}"
        );
        assert!(
            published.contains_key(&("leakcheck_idle".to_owned(), "names:gauged-big".to_owned()))
        );

        let mut one = SiteGauges::new(1);
        one.publish(&before, &before.growth_since(&before));
        let published = gauges(&snapshotter);
        assert!(
            live(&published, "other").is_some_and(|other| other >= 1.0),
            "{published:?}"
        );
        // The recorder keeps every key it was given: those not set now read zero.
        let own_labels = published
            .iter()
            .filter(|((name, site), value)| {
                name == "leakcheck_live_threads" && site != "other" && **value > 0.0
            })
            .count();
        assert_eq!(own_labels, 1, "{published:?}");

        drop(release);
        for handle in big.into_iter().chain([small]) {
            handle.join().unwrap();
        }
        let after = Snapshot::take();
        all.publish(&after, &after.growth_since(&before));
        let published = gauges(&snapshotter);
        assert_eq!(
            live(&published, "names:gauged-big"),
            Some(0.0),
            "{published:?}"
        );
    });
}

/// Over a service's life, the Prometheus exporter (which keeps every series it was ever
/// given) holds a bounded set of `site` values: thread names that carry ids are one label,
/// and sites beyond the lifetime bound join `other`, however many come and go.
#[test]
#[cfg(all(feature = "metrics", lc_thread_hook))]
fn the_prometheus_exporter_holds_a_bounded_set_of_sites_over_a_service_s_life() {
    use metrics_exporter_prometheus::PrometheusBuilder;

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let sites_rendered = || -> std::collections::BTreeSet<String> {
        handle
            .render()
            .lines()
            .filter(|line| line.starts_with("leakcheck_live_threads{"))
            .filter_map(|line| {
                let start = line.find("site=\"")? + "site=\"".len();
                let end = start + line[start..].find('"')?;
                Some(line[start..end].to_owned())
            })
            .collect()
    };
    let sites = 2;
    let mut gauges = SiteGauges::new(sites);
    let before = Snapshot::take();
    // Only the publish goes through the recorder: a thread spawned inside
    // `with_local_recorder` would have the `metrics` crate's line on its spawn path, and
    // every thread of the test one site.
    let publish = |gauges: &mut SiteGauges| {
        let now = Snapshot::take();
        ::metrics::with_local_recorder(&recorder, || {
            gauges.publish(&now, &now.growth_since(&before));
        });
    };
    // Thirty connections, each named by its id.
    let (release, wait) = mpsc::channel::<()>();
    let wait = std::sync::Arc::new(parking_lot::Mutex::new(wait));
    let connections: Vec<_> = (0..30)
        .map(|id| park_one(&format!("bounded-conn-{id}"), &wait))
        .collect();
    publish(&mut gauges);
    let first = sites_rendered();
    assert!(first.contains("names:bounded-conn-*"), "{first:?}");
    drop(release);
    for handle in connections {
        handle.join().unwrap();
    }
    // Then twelve generations of sites that come and go, each bigger than the last.
    for generation in b'a'..=b'l' {
        let (release, wait) = mpsc::channel::<()>();
        let wait = std::sync::Arc::new(parking_lot::Mutex::new(wait));
        let name = format!("bounded-gen-{}", generation as char);
        let members: Vec<_> = (0..usize::from(generation - b'a') + 31)
            .map(|_| park_one(&name, &wait))
            .collect();
        publish(&mut gauges);
        drop(release);
        for handle in members {
            handle.join().unwrap();
        }
    }
    let rendered = sites_rendered();
    assert!(
        // Twice the sites shown at once, over the whole life, and `other`.
        rendered.len() <= 2 * sites + 1,
        "{} values of site for {sites} sites shown at once: {rendered:?}",
        rendered.len()
    );
    assert!(rendered.contains("other"), "{rendered:?}");
    assert!(
        rendered
            .iter()
            .any(|site| site.starts_with("names:bounded-gen-")),
        "the first generations have series of their own: {rendered:?}"
    );
    assert!(
        !rendered
            .iter()
            .any(|site| site.starts_with("names:bounded-conn-") && site != "names:bounded-conn-*"),
        "a connection's id became a label: {rendered:?}"
    );
}

#[test]
#[cfg(feature = "metrics")]
fn ids_in_names_read_as_one_label() {
    assert_eq!(without_ids("conn-1234"), "conn-*");
    assert_eq!(without_ids("tokio-rt-worker"), "tokio-rt-worker");
    assert_eq!(without_ids("w1-of-16"), "w*-of-*");
}
