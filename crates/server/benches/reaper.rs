//! The optimised `lakegate` binary against the emulator (`scripts/bench`; README
//! "Performance"): its footprint (start → ready on a fresh and on a migrated database, resident
//! memory idle and at its peak), approve → active, and the reaper (expiry → sessions denied,
//! expiry → teardown done) for grants expiring paced and in a burst, beside the emulator's raw
//! call rate measured in the same run. The people act through the JSON API; the figures come
//! from lakegate's own records (the audit events, the requests' times). All AWS calls go
//! through the test proxy, which counts them; the raw rate is measured through it too.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark program"
)]

#[path = "../tests/support/binary.rs"]
mod binary;

use std::time::{Duration, Instant};

use lakegate_testkit::aws_proxy::AwsProxy;
use lakegate_testkit::peers::free_port;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::binary::{Browser, Lakegate, base_env, text_of};

/// Set when the burst's last grant has ended: the sampler stops.
static SAMPLING_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn setting(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process's resident memory now and at its peak, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap()
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index into a non-empty list"
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn spread(label: &str, mut xs: Vec<f64>) {
    xs.sort_by(f64::total_cmp);
    println!(
        "  {label:<34} p50 {:>7.3} s   p99 {:>7.3} s   max {:>7.3} s   ({} grants)",
        percentile(&xs, 0.5),
        percentile(&xs, 0.99),
        xs.last().copied().unwrap_or(f64::NAN),
        xs.len()
    );
}

/// A fresh database on the server of `DATABASE_URL`.
async fn fresh_database(base: &str, name: &str) -> String {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(base)
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
    format!("{prefix}/{name}")
}

fn env_for(db_url: &str, port: u16, aws: &str) -> Vec<(String, String)> {
    let mut env = base_env(db_url, port);
    env.extend(
        [
            ("LAKEGATE_DEV_LOGIN", "true"),
            ("LAKEGATE_MIN_DURATION", "1m"),
            ("LAKEGATE_MAX_PENDING_PER_PERSON", "off"),
            ("AWS_ENDPOINT_URL", aws),
            // The access log of thousands of calls is not what is measured.
            ("RUST_LOG", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

/// Starts the binary; how long until `/readyz` answered.
async fn start(env: &[(String, String)]) -> (Lakegate, Duration) {
    let started = Instant::now();
    let server = Lakegate::start(env).await;
    (server, started.elapsed())
}

/// An API token for a person signed in with `groups`.
async fn api_token(base: &str, email: &str, groups: &str) -> String {
    let b = Browser::signed_in_dev(base, email, groups).await;
    let mut fields = vec![("name", "bench")];
    fields.extend(["requests:read", "requests:write", "approvals:write"].map(|s| ("scopes", s)));
    let made = b
        .submit("/settings/tokens", "/settings/tokens", &fields)
        .await;
    assert!(made.status.is_success(), "{}", made.body);
    text_of(&made.body, "#api-token")
}

struct People {
    http: reqwest::Client,
    base: String,
    requester: String,
    approver: String,
}

impl People {
    /// Asks for `table` for `duration` and approves it: the request id.
    async fn grant(&self, table: &str, duration: &str) -> String {
        let (database, table) = table.split_once('.').unwrap();
        let made: serde_json::Value = self
            .http
            .post(format!("{}/api/v1/requests", self.base))
            .bearer_auth(&self.requester)
            .json(&serde_json::json!({
                "resources": [{ "database": database, "table": table }],
                "duration": duration,
                "reason": "the reaper benchmark",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = made["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{made}"))
            .to_owned();
        let res = self
            .http
            .post(format!("{}/api/v1/requests/{id}/approve", self.base))
            .bearer_auth(&self.approver)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        id
    }
}

/// Waits until no request of the run is open (approved, active, revoking).
async fn until_all_ended(pool: &PgPool, within: Duration) {
    let started = Instant::now();
    loop {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from access_request where status in ('approved', 'active', 'revoking')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if open == 0 {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{open} grants still open after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The figures of the grants in `ids`, from lakegate's records.
async fn report(pool: &PgPool, ids: &[String]) {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.parse().unwrap()).collect();
    let approve_to_active: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from act.occurred_at - app.occurred_at)::float8
         from audit_event app join audit_event act
           on act.request_id = app.request_id and act.action = 'grant.activated'
         where app.action = 'request.approved' and app.request_id = any($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .unwrap();
    let denied: Vec<f64> = sqlx::query_scalar(
        "select (detail->>'deny_lag_seconds')::float8 from audit_event
         where action = 'grant.ended' and request_id = any($1)
           and detail->>'end_state' = 'expired' and detail->>'deny_lag_seconds' is not null",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .unwrap();
    let done: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from ended_at - expires_at)::float8 from access_request
         where request_id = any($1) and status = 'expired'",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .unwrap();
    let (first, last): (Option<time::OffsetDateTime>, Option<time::OffsetDateTime>) =
        sqlx::query_as(
            "select min(expires_at), max(expires_at) from access_request where request_id = any($1)",
        )
        .bind(&ids)
        .fetch_one(pool)
        .await
        .unwrap();
    if let (Some(first), Some(last)) = (first, last) {
        println!(
            "  expiries spread over {:.1} s",
            (last - first).as_seconds_f64()
        );
    }
    spread("approve → active", approve_to_active);
    spread("expiry → sessions denied", denied);
    spread("expiry → teardown done", done);
}

/// The emulator's raw rate through the proxy: IAM role created and deleted, `CONCURRENCY` at
/// a time, for `how_long`; calls per second.
async fn raw_rate(proxy: &AwsProxy, how_long: Duration) -> f64 {
    const CONCURRENCY: usize = 8;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .load()
        .await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let iam = iam.clone();
        tasks.push(tokio::spawn(async move {
            let mut calls = 0u64;
            let mut n = 0;
            while started.elapsed() < how_long {
                n += 1;
                let name = format!("bench-raw-{worker}-{n}");
                iam.create_role()
                    .role_name(&name)
                    .assume_role_policy_document("{}")
                    .send()
                    .await
                    .unwrap();
                iam.delete_role().role_name(&name).send().await.unwrap();
                calls += 2;
            }
            calls
        }));
    }
    let mut calls = 0;
    for t in tasks {
        calls += t.await.unwrap();
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let base_url = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/bench sets it)");
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (scripts/bench sets it)");
    let table = std::env::var("LAKEGATE_BENCH_TABLE").unwrap_or_else(|_| "sales.orders".into());
    let paced = usize::try_from(setting("LAKEGATE_BENCH_PACED_GRANTS", 300)).unwrap();
    let burst = usize::try_from(setting("LAKEGATE_BENCH_BURST_GRANTS", 1000)).unwrap();
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let db_url = fresh_database(
        &base_url,
        &format!("lakegate_bench_reaper_{}", std::process::id()),
    )
    .await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db_url)
        .await
        .unwrap();
    let port = free_port();
    let env = env_for(&db_url, port, proxy.url());

    println!("footprint (release build)");
    let (server, fresh) = start(&env).await;
    println!(
        "  start → ready, fresh database (migrations)  {:>7.3} s",
        fresh.as_secs_f64()
    );
    server.terminate();
    let mut server = server;
    server.wait(Duration::from_secs(30)).await;
    let (server, migrated) = start(&env).await;
    println!(
        "  start → ready, migrated database            {:>7.3} s",
        migrated.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle, _) = memory_mib(server.pid());
    println!("  resident memory, idle                       {idle:>7.1} MiB");

    let raw = raw_rate(&proxy, Duration::from_secs(5)).await;
    println!("emulator (moto through the test proxy): {raw:.0} IAM calls/s, 8 at a time");

    let people = People {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        requester: api_token(&server.base, "bench@example.com", "analysts").await,
        approver: api_token(&server.base, "owner@example.com", "data-owners").await,
    };

    // Paced: five approvals a second, one-minute grants, so they expire across a minute or so.
    println!("paced: {paced} one-minute grants approved at 5 per second");
    let mut ids = Vec::new();
    let started = Instant::now();
    for i in 0..paced {
        let due = started + Duration::from_millis(200 * u64::try_from(i).unwrap());
        tokio::time::sleep_until(due.into()).await;
        ids.push(people.grant(&table, "1m").await);
    }
    until_all_ended(&pool, Duration::from_secs(600)).await;
    report(&pool, &ids).await;

    // Burst: approved back to back, eight at a time.
    println!("burst: {burst} one-minute grants approved back to back");
    // AWS calls per second while there is work: sampled each second, idle seconds left out.
    let proxy = std::sync::Arc::new(proxy);
    let sampler = {
        let proxy = std::sync::Arc::clone(&proxy);
        tokio::spawn(async move {
            let (mut calls, mut busy) = (0u32, 0u32);
            let mut last = proxy.total_calls();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = proxy.total_calls();
                if now > last {
                    calls += now - last;
                    busy += 1;
                }
                last = now;
                if SAMPLING_DONE.load(std::sync::atomic::Ordering::Relaxed) {
                    return (calls, busy.max(1));
                }
            }
        })
    };
    let mut tasks = Vec::new();
    let people = std::sync::Arc::new(people);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..8 {
        let people = std::sync::Arc::clone(&people);
        let next = std::sync::Arc::clone(&next);
        let table = table.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < burst {
                mine.push(people.grant(&table, "1m").await);
            }
            mine
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    until_all_ended(&pool, Duration::from_secs(1800)).await;
    SAMPLING_DONE.store(true, std::sync::atomic::Ordering::Relaxed);
    let (calls, busy) = sampler.await.unwrap();
    report(&pool, &ids).await;
    let rate = f64::from(calls) / f64::from(busy);
    println!(
        "  AWS calls while busy (provisioning, teardown) {calls} in {busy} s: {rate:.0}/s ({:.2}× the raw rate)",
        rate / raw
    );
    let (_, peak) = memory_mib(server.pid());
    println!("  resident memory, peak over the whole run    {peak:>7.1} MiB");
}
