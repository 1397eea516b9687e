//! The example service's gauges as a real Prometheus sees them: Debian's `prometheus`
//! server (`.ci/run` installs it) scrapes the leaky and the fixed twin every second over
//! loopback while each drives its own load for 14 s; then its HTTP API must show the leaky
//! twin's series for the leaking line climbing past 100, the fixed twin's flat and small,
//! the thread gauges and tokio-metrics' runtime counts beside them, and every query of the
//! example's Grafana dashboard returning the example's series. The data also draws the
//! README's plot (`SUITE_UPDATE_PLOT=1` writes it to `docs/`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leakcheck_suite::{example_dir, example_line_of, example_service, root, temp_dir};

/// How long each twin drives its load: what the numbers are for.
const LOAD_FOR: &str = "14s";

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Ends a child when dropped, whatever happens to the test.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 GET; the status code and the body.
fn get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    // Prometheus answers in chunks.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A PromQL expression, URL-encoded for a query string.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Prometheus's answer to an instant query at `at` (Unix seconds): its result array.
fn query(prometheus: SocketAddr, expr: &str, at: f64) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/query?query={}&time={at}", encoded(expr));
    result(prometheus, &path, expr)
}

/// The `data.result` array of Prometheus's answer to a query of `expr` at `path`.
fn result(prometheus: SocketAddr, path: &str, expr: &str) -> Vec<serde_json::Value> {
    let (status, body) = get(prometheus, path).expect("Prometheus answers");
    assert_eq!(status, 200, "{expr}: {body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    value["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Each series of a range query: its labels and its values, one a second.
fn query_range(
    prometheus: SocketAddr,
    expr: &str,
    start: f64,
    end: f64,
) -> Vec<(serde_json::Value, Vec<(f64, f64)>)> {
    let path = format!(
        "/api/v1/query_range?query={}&start={start}&end={end}&step=1",
        encoded(expr)
    );
    result(prometheus, &path, expr)
        .into_iter()
        .map(|series| {
            let values = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|point| {
                    let time = point[0].as_f64().unwrap();
                    let value: f64 = point[1].as_str().unwrap().parse().unwrap();
                    (time, value)
                })
                .collect();
            (series["metric"].clone(), values)
        })
        .collect()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn prometheus_sees_the_leaking_line_climb_and_the_fixed_twin_stay_flat() {
    let Some(prometheus_bin) = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
    else {
        eprintln!(
            "SKIPPED: no prometheus binary (Debian's `prometheus` package; .ci/run installs it)"
        );
        return;
    };
    let example = example_service();
    let (leaky_port, fixed_port, prometheus_port) = (free_port(), free_port(), free_port());
    let dir = temp_dir("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: leaky\n    static_configs:\n      - targets: ['127.0.0.1:{leaky_port}']\n\
             \x20 - job_name: fixed\n    static_configs:\n      - targets: ['127.0.0.1:{fixed_port}']\n"
        ),
    )
    .unwrap();
    let prometheus_address: SocketAddr = format!("127.0.0.1:{prometheus_port}").parse().unwrap();
    let _prometheus = Running(
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus_address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let started = Instant::now();
    while !matches!(get(prometheus_address, "/-/ready"), Ok((200, _))) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus is not ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Prometheus takes up to 5 s to put a configured target in its scrape loops: the load
    // starts once both are there, so that its whole run is scraped.
    while !matches!(get(prometheus_address, "/api/v1/targets"), Ok((200, body))
        if body.matches("\"scrapeUrl\"").count() >= 2)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no targets in Prometheus"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = now();
    let twin = |port: u16, fixed: bool| {
        let mut command = Command::new(example);
        command
            .args(["--listen", &format!("127.0.0.1:{port}"), "--for", LOAD_FOR])
            .current_dir(example_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if fixed {
            command.arg("--fixed");
        }
        Running(command.spawn().expect("the example runs"))
    };
    let mut leaky = twin(leaky_port, false);
    let mut fixed = twin(fixed_port, true);
    for running in [&mut leaky, &mut fixed] {
        let mut first = String::new();
        BufReader::new(running.0.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("listening on http://127.0.0.1:"),
            "{first}"
        );
    }
    for running in [&mut leaky, &mut fixed] {
        let status = running.0.wait().unwrap();
        assert!(status.success(), "{status}");
    }
    let end = now();
    // The last samples each twin served before it exited are in by the next scrape.
    std::thread::sleep(Duration::from_millis(1500));

    let leak_line = format!(
        "src/main.rs:{}:",
        example_line_of("while updates.changed().await.is_ok()")
    );
    let leaking = query_range(
        prometheus_address,
        &format!("leakcheck_live_tasks{{job=\"leaky\",site=~\"{leak_line}.*\"}}"),
        start,
        end,
    );
    assert_eq!(leaking.len(), 1, "{leaking:?}");
    let climb: Vec<f64> = leaking[0].1.iter().map(|(_, value)| *value).collect();
    assert!(climb.len() >= 8, "too few samples: {climb:?}");
    assert!(climb.windows(2).all(|pair| pair[0] <= pair[1]), "{climb:?}");
    assert!(*climb.last().unwrap() > 100.0, "{climb:?}");
    assert!(climb.first().unwrap() < climb.last().unwrap(), "{climb:?}");

    let flat = query_range(
        prometheus_address,
        "leakcheck_live_tasks{job=\"fixed\"}",
        start,
        end,
    );
    assert!(!flat.is_empty(), "the fixed twin's series are there");
    for (labels, values) in &flat {
        assert!(
            values.iter().all(|(_, value)| *value <= 10.0),
            "{labels}: {values:?}"
        );
    }

    // While the twins ran: once a target is gone, Prometheus marks its series stale.
    let at = end - 1.0;
    let threads = query(
        prometheus_address,
        "leakcheck_live_threads{job=\"leaky\"}",
        at,
    );
    assert!(!threads.is_empty(), "no thread gauges");
    let workers = query(prometheus_address, "tokio_workers_count{job=\"leaky\"}", at);
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0]["value"][1], "2");
    let total = query(
        prometheus_address,
        "tokio_live_tasks_count{job=\"leaky\"}",
        at,
    );
    assert_eq!(total.len(), 1, "{total:?}");

    // Every query of the dashboard returns the example's series.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(example_dir().join("dashboard.json")).unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 5);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // At a time of the run: `deriv` over a minute needs its samples.
            let result = query(prometheus_address, expr, end - 1.0);
            assert!(
                !result.is_empty(),
                "panel {}: `{expr}` returned nothing",
                panel["title"]
            );
        }
    }
    let growing = query(
        prometheus_address,
        panels[0]["targets"][0]["expr"].as_str().unwrap(),
        end - 1.0,
    );
    assert!(
        growing[0]["metric"]["site"]
            .as_str()
            .is_some_and(|site| site.starts_with(&leak_line)),
        "the fastest-growing site is not the leak: {growing:?}"
    );

    let fixed_total = query_range(
        prometheus_address,
        "sum(leakcheck_live_tasks{job=\"fixed\"})",
        start,
        end,
    );
    let plot = plot(&leaking[0].1, &fixed_total[0].1, &leak_line);
    std::fs::write(root().join("target").join("service-tasks.svg"), &plot).unwrap();
    if std::env::var_os("SUITE_UPDATE_PLOT").is_some() {
        std::fs::write(root().join("docs").join("service-tasks.svg"), &plot).unwrap();
    }
}

/// An SVG line chart of the two twins' live tasks over the run: the leaky twin's leaking
/// line, and the fixed twin's total.
fn plot(leaky: &[(f64, f64)], fixed: &[(f64, f64)], leak_line: &str) -> String {
    let (width, height, margin) = (640.0, 300.0, 48.0);
    let start = leaky.first().map_or(0.0, |point| point.0);
    let seconds = leaky.last().map_or(1.0, |point| point.0 - start).max(1.0);
    let top = leaky
        .iter()
        .chain(fixed)
        .map(|point| point.1)
        .fold(1.0_f64, f64::max);
    let scale = |(time, value): (f64, f64)| {
        let x = margin + (time - start) / seconds * (width - 2.0 * margin);
        let y = height - margin - value / top * (height - 2.0 * margin);
        format!("{x:.1},{y:.1}")
    };
    let line = |points: &[(f64, f64)], color: &str| {
        let points: Vec<String> = points.iter().copied().map(scale).collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        )
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{margin}\" y=\"24\" font-size=\"14\">leakcheck_live_tasks, scraped by Prometheus \
         every second ({seconds:.0} s of load)</text>\n\
         <line x1=\"{margin}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#888\"/>\n\
         <line x1=\"{margin}\" y1=\"{margin}\" x2=\"{margin}\" y2=\"{bottom}\" stroke=\"#888\"/>\n\
         <text x=\"4\" y=\"{margin}\">{top:.0}</text>\n\
         <text x=\"4\" y=\"{bottom}\">0</text>\n\
         {}\n{}\n\
         <text x=\"{legend_x}\" y=\"{leaky_y}\" fill=\"#c0392b\">leaky twin, site {leak_line}…</text>\n\
         <text x=\"{legend_x}\" y=\"{fixed_y}\" fill=\"#2471a3\">fixed twin, every site</text>\n\
         </svg>\n",
        line(leaky, "#c0392b"),
        line(fixed, "#2471a3"),
        bottom = height - margin,
        right = width - margin,
        legend_x = margin + 10.0,
        leaky_y = margin + 16.0,
        fixed_y = margin + 32.0,
    )
}
