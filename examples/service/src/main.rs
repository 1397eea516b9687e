//! A small HTTP service (axum) with the bug that hurts services most: every request starts a
//! task that never ends. leakcheck's `Watcher` names the line that spawns them within a few
//! intervals, publishes each spawn site's live tasks, threads and child processes as
//! Prometheus gauges on `/metrics` (beside tokio-metrics' runtime totals, through the same
//! `metrics` recorder), and `/debug/leakcheck` serves the snapshot a person reads.
//!
//! ```text
//! cd examples/service
//! cargo run                             # the leaky service, driven by its own load for 2s
//! cargo run -- --fixed                  # the fixed twin: the same load, flat counts, no alarm
//! cargo run -- --listen 127.0.0.1:9464 --for 10m   # long enough to scrape and watch
//! ```
//!
//! `--listen ADDR` is where it serves (`/work`, `/metrics`, `/debug/leakcheck`; a loopback
//! port the system picks by default, printed first); `--for DURATION` how long it drives
//! its own load over loopback (100 requests a second) before it exits. Its
//! `.cargo/config.toml` builds it with `--cfg tokio_unstable`, as tokio-console users
//! already do: that is what gives tasks to snapshots. `dashboard.json` is a Grafana
//! dashboard of its metrics.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use leakcheck::TokioBuilderExt;
use leakcheck::service::{Snapshot, Watcher};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// How often the watcher looks (and publishes its gauges).
const INTERVAL: Duration = Duration::from_millis(250);
/// One request every this long, for the whole run: every interval sees some.
const REQUEST_EVERY: Duration = Duration::from_millis(10);
/// How long the load lasts without `--for`: eight intervals.
const DEFAULT_FOR: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct App {
    /// Configuration updates, which each request's follower task listens to.
    updates: watch::Receiver<u64>,
    fixed: bool,
    metrics: PrometheusHandle,
}

/// `GET /work`: does the work, and starts a task that follows configuration updates.
async fn work(State(app): State<App>) -> &'static str {
    let mut updates = app.updates.clone();
    if app.fixed {
        // The follower lives as long as the request's work needs it, then ends.
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(20), updates.changed()).await;
        });
    } else {
        // The bug: it follows updates for as long as the sender lives, which is for ever.
        tokio::spawn(async move { while updates.changed().await.is_ok() {} });
    }
    "done\n"
}

/// `GET /debug/leakcheck` (`?json` for the JSON): what the process has alive, by spawn site.
async fn debug_leakcheck(Query(query): Query<HashMap<String, String>>) -> String {
    let snapshot = Snapshot::take();
    if query.contains_key("json") {
        snapshot.to_json()
    } else {
        snapshot.to_string()
    }
}

/// `GET /metrics`: every gauge of the process's recorder, as Prometheus reads them.
async fn metrics(State(app): State<App>) -> String {
    app.metrics.render()
}

/// The command line.
struct Args {
    fixed: bool,
    listen: SocketAddr,
    run_for: Duration,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut args = Args {
            fixed: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            run_for: DEFAULT_FOR,
        };
        let mut given = std::env::args().skip(1);
        while let Some(arg) = given.next() {
            let mut value =
                |name: &str| given.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--fixed" => args.fixed = true,
                "--listen" => {
                    let address = value("--listen")?;
                    args.listen = address.parse().map_err(|error| {
                        format!("--listen {address:?}: {error}: expected an address such as 127.0.0.1:9464")
                    })?;
                }
                "--for" => {
                    let duration = value("--for")?;
                    args.run_for = leakcheck_schema::duration::parse(&duration).map_err(|error| {
                        format!("--for {duration:?}: {error}: expected a duration such as 14s or 10m")
                    })?;
                }
                other => {
                    return Err(format!(
                        "unknown argument {other:?}: expected --fixed, --listen ADDR or --for DURATION"
                    ));
                }
            }
        }
        Ok(args)
    }
}

fn main() {
    let args = Args::parse().unwrap_or_else(|error| {
        eprintln!("leakcheck-service-example: {error}");
        std::process::exit(2)
    });
    // One recorder for everything the process publishes: leakcheck's gauges and tokio's.
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .expect("the Prometheus recorder");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .with_leakcheck()
        .build()
        .expect("a runtime");
    // In a real service: your logger's warn! instead of println!.
    let watcher = Watcher::every(INTERVAL)
        .alarm_after(3)
        .on_alarm(|alarm| println!("{alarm}"))
        .publish_metrics(20)
        .start()
        .expect("a thread for the watcher");
    runtime.block_on(serve_and_drive(args, metrics));
    watcher.stop();
}

async fn serve_and_drive(args: Args, metrics: PrometheusHandle) {
    // tokio's own runtime-wide counts, through the same recorder (tokio_live_tasks_count...).
    tokio::spawn(
        tokio_metrics::RuntimeMetricsReporterBuilder::default()
            .with_interval(Duration::from_secs(1))
            .describe_and_run(),
    );
    let (_config, updates) = watch::channel(0u64);
    let app = Router::new()
        .route("/work", get(work))
        .route("/metrics", get(self::metrics))
        .route("/debug/leakcheck", get(debug_leakcheck))
        .with_state(App {
            updates,
            fixed: args.fixed,
            metrics,
        });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .unwrap_or_else(|error| panic!("cannot listen on {}: {error}", args.listen));
    let address = listener.local_addr().expect("its address");
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the server runs") });

    let started = tokio::time::Instant::now();
    let mut requests = 0;
    let mut interval = 1;
    while started.elapsed() < args.run_for {
        let end = started + INTERVAL * interval;
        while tokio::time::Instant::now() < end {
            assert_eq!(fetch(address, "/work").await, "done\n");
            requests += 1;
            tokio::time::sleep(REQUEST_EVERY).await;
        }
        let live = Snapshot::take().tasks().unwrap_or_default();
        println!("after {requests} requests: {live} live tasks");
        interval += 1;
    }
    print!("{}", fetch(address, "/debug/leakcheck").await);
}

/// One HTTP/1.1 GET over loopback; the response's body.
async fn fetch(address: SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("the server accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("the response is read");
    let (_head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    body.to_owned()
}
