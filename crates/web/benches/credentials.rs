//! The credentials URL under load, beside a bare axum handler returning the same JSON, in one
//! run on one machine (`scripts/bench`; README "Performance"). lakegate's real router and
//! services answer from the live-grants view and the session cache, over real PostgreSQL; the
//! cloud is the in-memory FakeCloud, so no AWS call is measured (the cached path makes none).
//! Prints requests per second and latency percentiles at saturation for both, their ratio, and
//! lakegate's latency at a fixed 1,000 requests per second. Logging and metrics are on, as in
//! `lakegate serve`.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark program"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use lakegate_app::credentials::issue_token;
use lakegate_app::requests::{self, SubmitInput};
use lakegate_app::worker::work_once;
use lakegate_app::{Services, Settings};
use lakegate_domain::Principal;
use lakegate_domain::ports::SystemClock;
use lakegate_store::requests::Decision;
use lakegate_testkit::FakeCloud;
use lakegate_web::{AppState, SignIn, WebConfig};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

/// Connections kept open by the load generator.
const CONNECTIONS: usize = 16;

fn seconds(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn person(sub: &str, groups: &[&str]) -> Principal {
    Principal::new(
        sub,
        format!("{sub}@example.com"),
        None,
        groups.iter().map(|g| (*g).to_owned()),
    )
    .unwrap()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a non-empty list"
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// `CONNECTIONS` clients, each on its own keep-alive connection; `rate`: total requests per
/// second, evenly spread (latency counted from when each was due), or as fast as they go.
async fn load(url: &str, token: &str, how_long: Duration, rate: Option<f64>) -> Run {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONNECTIONS {
        let url = url.to_owned();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .http1_only()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::new();
            let mut errors = 0;
            #[allow(clippy::cast_precision_loss, reason = "small numbers")]
            let interval = rate.map(|r| Duration::from_secs_f64(CONNECTIONS as f64 / r));
            #[allow(clippy::cast_possible_truncation, reason = "small numbers")]
            let mut due = started
                + interval.map_or(Duration::ZERO, |i| i * worker as u32 / CONNECTIONS as u32);
            while started.elapsed() < how_long {
                if interval.is_some() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let sent = if interval.is_some() {
                    due
                } else {
                    Instant::now()
                };
                match client
                    .get(&url)
                    .header("authorization", &token)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
                if let Some(i) = interval {
                    due += i;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    #[allow(clippy::cast_precision_loss, reason = "counts")]
    let per_second = all.len() as f64 / elapsed.as_secs_f64();
    Run {
        per_second,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or_default(),
        errors,
    }
}

/// The same measurement at saturation through `wrk` (1 thread, `CONNECTIONS` connections),
/// when it is installed: a load generator in C, not sharing this process, as in the figures
/// the README quotes. `None` without it.
fn wrk(url: &str, token: &str, how_long: Duration) -> Option<Run> {
    let out = std::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{}s", how_long.as_secs()),
            "--latency",
            "-H",
            &format!("Authorization: {token}"),
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
    };
    let duration = |v: String| -> Option<Duration> {
        let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = n.parse().ok()?;
        Some(Duration::from_secs_f64(match unit {
            "us" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            _ => return None,
        }))
    };
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some(Run {
        per_second: field("Requests/sec:")?.parse().ok()?,
        p50: duration(field("50%")?)?,
        p99: duration(field("99%")?)?,
        max: text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Latency"))
            .and_then(|l| l.split_whitespace().nth(2).map(ToOwned::to_owned))
            .and_then(duration)
            .unwrap_or_default(),
        errors,
    })
}

/// At saturation: through `wrk` when it is installed, else this program's own client.
async fn saturate(
    url: &str,
    token: &str,
    warm: Duration,
    how_long: Duration,
) -> (Run, &'static str) {
    if let Some(r) = wrk(url, token, warm).and_then(|_| wrk(url, token, how_long)) {
        return (r, "wrk");
    }
    load(url, token, warm, None).await;
    (load(url, token, how_long, None).await, "built-in client")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn report(name: &str, r: &Run) {
    println!(
        "{name:<34} {:>10.0} req/s   p50 {:>9}   p99 {:>9}   max {:>9}   errors {}",
        r.per_second,
        ms(r.p50),
        ms(r.p99),
        ms(r.max),
        r.errors
    );
}

#[tokio::main]
async fn main() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/bench sets it)");
    let warm = seconds("LAKEGATE_BENCH_WARMUP", 2);
    // As `lakegate serve` runs: every answer logged as a JSON line at info (here into nothing,
    // the formatting is still done) and counted by the Prometheus recorder.
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .init();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(recorder).unwrap();
    let each = seconds("LAKEGATE_BENCH_SECONDS", 10);

    // A database of its own, migrated.
    let name = format!("lakegate_bench_{}", std::process::id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap();
    sqlx::query(&format!("drop database if exists {name}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect(&format!("{prefix}/{name}"))
        .await
        .unwrap();
    lakegate_store::MIGRATOR.run(&pool).await.unwrap();

    // One active grant and its token, through the verbs.
    let cloud = Arc::new(FakeCloud::with_sample_catalog());
    let svc = Services::new(
        pool.clone(),
        cloud.clone(),
        Arc::new(SystemClock),
        Settings::for_tests(),
    );
    let alice = person("alice", &["analysts"]);
    let (id, _) = requests::submit(
        &svc,
        &alice,
        SubmitInput {
            resources: "sales.orders",
            duration: "8h",
            reason: "the credentials benchmark",
            break_glass: false,
        },
    )
    .await
    .unwrap();
    requests::decide(
        &svc,
        &person("dana", &["data-owners"]),
        id,
        Decision::Approve,
        None,
    )
    .await
    .unwrap();
    work_once(&svc, "bench").await.unwrap();
    let token = issue_token(&svc, &alice, id).await.unwrap().token;

    let shutdown = CancellationToken::new();
    tokio::spawn(lakegate_app::live::run(svc.clone(), shutdown.clone()));
    while !svc.live.is_trusted() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let config = WebConfig {
        public_url: "http://127.0.0.1:8080".into(),
        sign_in: SignIn::Development,
        secure_cookies: false,
        session_idle: time::Duration::hours(1),
        session_max: time::Duration::hours(12),
        groups_refresh: time::Duration::minutes(15),
        slack: None,
    };
    let router = lakegate_web::router(
        AppState::new(svc.clone(), config.clone()),
        lakegate_web::session_store(pool.clone()),
    );
    let lakegate = serve(router).await;
    let url = format!("http://{lakegate}/credentials/{id}");
    // The same, as a replica whose live view is not trusted (its listener down): every fetch
    // reads PostgreSQL. Its session cache is its own; the first fetch fills it.
    let untrusted = Services::new(
        pool.clone(),
        cloud,
        Arc::new(SystemClock),
        Settings::for_tests(),
    );
    let fallback = serve(lakegate_web::router(
        AppState::new(untrusted, config),
        lakegate_web::session_store(pool.clone()),
    ))
    .await;
    let fallback_url = format!("http://{fallback}/credentials/{id}");

    // The same answer from a bare handler: what the machine and the client can do.
    let body = reqwest::Client::new()
        .get(&url)
        .header("authorization", &token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let bare = Router::new().route(
        "/credentials/{id}",
        get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let bare = serve(bare).await;
    let bare_url = format!("http://{bare}/credentials/{id}");

    println!(
        "credentials URL, cached session: {CONNECTIONS} connections, {}s each after {}s of warm-up, {} cores",
        each.as_secs(),
        warm.as_secs(),
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    );
    let (baseline, client) = saturate(&bare_url, &token, warm, each).await;
    let (ours, _) = saturate(&url, &token, warm, each).await;
    let (database, _) = saturate(&fallback_url, &token, warm, each).await;
    println!("load at saturation from: {client}");
    report("bare axum handler, same JSON", &baseline);
    report("lakegate credentials URL", &ours);
    report("  the same, reading PostgreSQL", &database);
    println!(
        "ratio lakegate / bare                {:.2}x   (reading PostgreSQL: {:.2}x)",
        ours.per_second / baseline.per_second,
        database.per_second / baseline.per_second
    );
    let paced = load(&url, &token, each, Some(1000.0)).await;
    report("lakegate at 1,000 req/s", &paced);

    shutdown.cancel();
    drop(pool);
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await
        .unwrap();
}
