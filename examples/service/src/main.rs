//! A small HTTP service (axum) with the bug that hurts services most: every request starts a
//! task that never ends. leakcheck's `Watcher` names the line that spawns them within a few
//! intervals, and `/debug/leakcheck` serves the snapshot a person reads.
//!
//! ```text
//! cd examples/service
//! cargo run             # the leaky service, driven by its own bounded load over loopback
//! cargo run -- --fixed  # the fixed twin: the same load, flat counts, no alarm
//! ```
//!
//! Its `.cargo/config.toml` builds it with `--cfg tokio_unstable`, as tokio-console users
//! already do: that is what gives tasks to snapshots.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use leakcheck::{Snapshot, TokioBuilderExt, Watcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// How often the watcher looks, and how many looks the load lasts.
const INTERVAL: Duration = Duration::from_millis(250);
const INTERVALS: u32 = 8;
/// One request every this long, for the whole run: every interval sees some.
const REQUEST_EVERY: Duration = Duration::from_millis(10);

#[derive(Clone)]
struct App {
    /// Configuration updates, which each request's follower task listens to.
    updates: watch::Receiver<u64>,
    fixed: bool,
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

fn main() {
    let fixed = std::env::args().any(|arg| arg == "--fixed");
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
        .start()
        .expect("a thread for the watcher");
    runtime.block_on(serve_and_drive(fixed));
    watcher.stop();
}

async fn serve_and_drive(fixed: bool) {
    let (_config, updates) = watch::channel(0u64);
    let app = Router::new()
        .route("/work", get(work))
        .route("/debug/leakcheck", get(debug_leakcheck))
        .with_state(App { updates, fixed });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port on loopback");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the server runs") });

    let started = tokio::time::Instant::now();
    let mut requests = 0;
    for interval in 1..=INTERVALS {
        let end = started + INTERVAL * interval;
        while tokio::time::Instant::now() < end {
            assert_eq!(fetch(address, "/work").await, "done\n");
            requests += 1;
            tokio::time::sleep(REQUEST_EVERY).await;
        }
        let live = Snapshot::take().tasks().unwrap_or_default();
        println!("after {requests} requests: {live} live tasks");
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
