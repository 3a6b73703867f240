//! The optimised `lakegate` binary against the emulator (`scripts/bench`; README
//! "Performance"): its footprint (start → ready on a fresh and on a migrated database, resident
//! memory idle and at its peak), approve → active and the broker's own share of it, the reaper
//! (expiry → sessions denied, expiry → teardown done) for grants expiring paced and in a burst,
//! and the recovery after a replica is killed mid-step, beside the emulator's raw call rate
//! measured in the same run, on lakegate's own mix of calls. The people act through the JSON
//! API; the figures come from lakegate's own records (the audit events, the requests' times,
//! `/metrics`). All AWS calls go through the test proxy, which counts them; the raw rate is
//! measured through it too.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark program"
)]

#[path = "../tests/support/binary.rs"]
mod binary;
#[path = "../tests/support/measure.rs"]
mod measure;

use std::time::{Duration, Instant};

use lakegate_aws::AwsCloudAccess;
use lakegate_domain::iam_policy::{revoke_policy, session_policy, trust_policy};
use lakegate_domain::ports::{CloudAccess, RoleSpec, SessionSpec, WorkgroupSpec};
use lakegate_store::work::WorkItem;
use lakegate_testkit::aws_proxy::{AwsProxy, Fault};
use lakegate_testkit::peers::free_port;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::binary::{Browser, Lakegate, base_env};
use crate::measure::{Histogram, memory, percentile, setting};

/// Set when the burst's last grant has ended: the sampler stops.
static SAMPLING_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn spread(label: &str, xs: &[f64]) {
    let at = |p| percentile(xs, p).unwrap_or(f64::NAN);
    println!(
        "  {label:<34} p50 {:>7.3} s   p99 {:>7.3} s   max {:>7.3} s   ({} grants)",
        at(0.5),
        at(0.99),
        at(1.0),
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
    let scopes = ["requests:read", "requests:write", "approvals:write"];
    Browser::with_api_token(base, email, groups, "bench", &scopes)
        .await
        .0
}

struct People {
    http: reqwest::Client,
    base: String,
    requester: String,
    approver: String,
}

impl People {
    /// The same people, on another replica.
    fn on(&self, base: &str) -> Self {
        Self {
            http: self.http.clone(),
            base: base.to_owned(),
            requester: self.requester.clone(),
            approver: self.approver.clone(),
        }
    }

    async fn revoke(&self, id: &str) {
        let res = self
            .http
            .post(format!("{}/api/v1/requests/{id}/revoke", self.base))
            .bearer_auth(&self.requester)
            .json(&serde_json::json!({ "comment": "the reaper benchmark" }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }

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
    spread("approve → active", &approve_to_active);
    spread("expiry → sessions denied", &denied);
    spread("expiry → teardown done", &done);
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

/// The emulator's raw rate on lakegate's own mix of calls, through the proxy: `CHAINS` grants
/// at a time, each made and removed with the calls lakegate's worker makes (through the same
/// AWS adapter, but with no database, no worker and one call at a time), for `how_long`; calls
/// per second. The grants are modelled on `items` (their Lake Formation entries, their
/// results location), under names of their own that the orphan sweep leaves alone.
async fn raw_mix_rate(proxy: &AwsProxy, items: &[WorkItem], how_long: Duration) -> f64 {
    /// As many calls in flight as lakegate's worker can have: 8 grants, 2 calls each.
    const CHAINS: usize = 16;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .load()
        .await;
    let cloud = std::sync::Arc::new(AwsCloudAccess::from_conf(&conf, None).await.unwrap());
    let items = std::sync::Arc::new(items.to_vec());
    let before = proxy.total_calls();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chain in 0..CHAINS {
        let (cloud, items) = (std::sync::Arc::clone(&cloud), std::sync::Arc::clone(&items));
        tasks.push(tokio::spawn(async move {
            let mut n = chain;
            while started.elapsed() < how_long {
                lifecycle(&cloud, &items[n % items.len()], &format!("bench-raw-{n}")).await;
                n += CHAINS;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    f64::from(proxy.total_calls() - before) / started.elapsed().as_secs_f64()
}

/// A grant like `item` named `name`, provisioned and torn down call after call.
async fn lifecycle(cloud: &AwsCloudAccess, item: &WorkItem, name: &str) {
    let id = cloud.identity();
    let role_arn = format!("arn:aws:iam::{}:role/lakegate-bench/{name}", id.account_id);
    let results = item.results_uri.replace(&item.id.to_string(), name);
    let grants: Vec<_> = item
        .lf_grants
        .iter()
        .cloned()
        .map(|mut g| {
            g.principal_arn.clone_from(&role_arn);
            g
        })
        .collect();
    let tags = vec![("lakegate:bench".to_owned(), name.to_owned())];
    let role = RoleSpec {
        name: name.to_owned(),
        path: "/lakegate-bench/".to_owned(),
        trust_policy: trust_policy(&id.broker_principal_arn),
        permissions_boundary_arn: format!(
            "arn:aws:iam::{}:policy/lakegate-boundary",
            id.account_id
        ),
        max_session_seconds: 3600,
        tags: tags.clone(),
    };
    cloud.create_role(&role).await.unwrap();
    let workgroup = WorkgroupSpec {
        name: name.to_owned(),
        output_location: results.clone(),
        bytes_scanned_cutoff: 10_000_000_000,
        tags,
    };
    cloud.create_workgroup(&workgroup).await.unwrap();
    // The access policy is of the same size class as lakegate's; its content costs nothing.
    cloud
        .put_role_policy(name, "lakegate-access", &revoke_policy())
        .await
        .unwrap();
    cloud.grant_lake_formation(&grants).await.unwrap();
    let session = SessionSpec {
        role_arn: role_arn.clone(),
        session_name: format!("check-{name}"),
        duration_seconds: 900,
        session_policy: session_policy(
            time::OffsetDateTime::now_utc() + time::Duration::minutes(15),
        ),
        source_identity: "bench".to_owned(),
        tags: Vec::new(),
    };
    cloud.assume_role(&session).await.unwrap();
    cloud.deny_all_sessions(name).await.unwrap();
    cloud.stop_running_queries(name).await.unwrap();
    cloud
        .new_query_ids(name, &std::collections::HashSet::new())
        .await
        .unwrap();
    cloud.revoke_lake_formation(&grants).await.unwrap();
    cloud.delete_workgroup(name).await.unwrap();
    cloud.delete_results(&results).await.unwrap();
    cloud.delete_role(name).await.unwrap();
}

/// The requests' work items, as the worker reads them.
async fn work_items(pool: &PgPool, ids: &[String]) -> Vec<WorkItem> {
    let mut conn = pool.acquire().await.unwrap();
    let mut items = Vec::new();
    for id in ids.iter().take(64) {
        let id = lakegate_domain::RequestId(id.parse().unwrap());
        items.extend(lakegate_store::work::load(&mut conn, id).await.unwrap());
    }
    items
}

/// The broker's own share of approve → active, from `/metrics`.
async fn overhead(base: &str) {
    let page = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let h = Histogram::parse(&page, "lakegate_provision_overhead_seconds");
    println!(
        "  provisioning not waiting for AWS     mean {:>7.4} s   p99 ≤ {:.3} s  ({} passes over every step)",
        h.mean(),
        h.at_most(0.99),
        h.count
    );
}

async fn status_of(pool: &PgPool, id: &str) -> String {
    sqlx::query_scalar("select status from access_request where request_id = $1::uuid")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until the proxy has seen one more call of `operation` than `before`.
async fn in_flight(proxy: &AwsProxy, operation: &str, before: u32) {
    let started = Instant::now();
    while proxy.calls(operation) <= before {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {operation} call"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// From now until the request is `wanted`.
async fn until_status(pool: &PgPool, id: &str, wanted: &str) -> Duration {
    let started = Instant::now();
    while status_of(pool, id).await != wanted {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} not {wanted} within a minute"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// A replica is killed (SIGKILL) while one of its AWS calls is held in flight, `trials` times
/// in provisioning and in teardown; the other replica, already running, resumes the work.
/// Prints kill → the request's next state. Returns the replica left running.
async fn recovery(
    pool: &PgPool,
    proxy: &AwsProxy,
    env: impl Fn() -> Vec<(String, String)>,
    people: &People,
    table: &str,
    mut current: Lakegate,
    trials: usize,
) -> Lakegate {
    let (mut provisioning, mut teardown) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        // Held: the work is this replica's, in flight.
        let before = proxy.calls("CreateWorkGroup");
        proxy.fail("CreateWorkGroup", 1, Fault::Delay(Duration::from_secs(120)));
        let id = people.on(&current.base).grant(table, "1h").await;
        in_flight(proxy, "CreateWorkGroup", before).await;
        let next = Lakegate::start(&env()).await;
        current.kill().await;
        provisioning.push(until_status(pool, &id, "active").await.as_secs_f64());
        current = next;

        let before = proxy.calls("DeleteRole");
        proxy.fail("DeleteRole", 1, Fault::Delay(Duration::from_secs(120)));
        people.on(&current.base).revoke(&id).await;
        in_flight(proxy, "DeleteRole", before).await;
        let next = Lakegate::start(&env()).await;
        current.kill().await;
        teardown.push(until_status(pool, &id, "revoked").await.as_secs_f64());
        current = next;
    }
    spread("killed provisioning → active", &provisioning);
    spread("killed teardown → revoked", &teardown);
    current
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
    let idle = memory(server.pid()).now;
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
    overhead(&server.base).await;

    // Burst: approved back to back, eight at a time.
    println!("burst: {burst} one-minute grants approved back to back");
    // AWS calls, counted each second with the time of the count.
    let proxy = std::sync::Arc::new(proxy);
    let sampler = {
        let proxy = std::sync::Arc::clone(&proxy);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut last = proxy.total_calls();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = proxy.total_calls();
                samples.push((time::OffsetDateTime::now_utc(), now - last));
                last = now;
                if SAMPLING_DONE.load(std::sync::atomic::Ordering::Relaxed) {
                    return samples;
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
    let samples = sampler.await.unwrap();
    report(&pool, &ids).await;
    let mix = raw_mix_rate(
        &proxy,
        &work_items(&pool, &ids).await,
        Duration::from_secs(10),
    )
    .await;
    println!(
        "  the emulator's raw rate on lakegate's mix of calls, 16 at a time: {mix:.0}/s ({:.2}× its IAM-only rate)",
        mix / raw
    );
    let busy: Vec<u32> = samples.iter().map(|(_, n)| *n).filter(|n| *n > 0).collect();
    let rate = f64::from(busy.iter().sum::<u32>()) / busy.len().max(1) as f64;
    println!(
        "  lakegate's AWS calls, seconds with any (provisioning, teardown): {rate:.0}/s → {:.2}× the raw rate",
        rate / mix
    );
    let (first, last): (time::OffsetDateTime, time::OffsetDateTime) = sqlx::query_as(
        "select min(expires_at), max(ended_at) from access_request where request_id = any($1)",
    )
    .bind(
        ids.iter()
            .map(|i| i.parse().unwrap())
            .collect::<Vec<uuid::Uuid>>(),
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let window = (last - first).as_seconds_f64();
    let teardown: u32 = samples
        .iter()
        .filter(|(at, _)| *at > first && *at <= last + time::Duration::seconds(1))
        .map(|(_, n)| *n)
        .sum();
    let rate = f64::from(teardown) / window;
    println!(
        "  lakegate's AWS calls from the first expiry to the last teardown done ({window:.1} s): {rate:.0}/s → {:.2}× the raw rate",
        rate / mix
    );
    let peak = memory(server.pid()).peak;
    println!("  resident memory, peak over the whole run    {peak:>7.1} MiB");

    let trials = usize::try_from(setting("LAKEGATE_BENCH_RECOVERY_TRIALS", 5)).unwrap();
    println!(
        "recovery: a replica killed (SIGKILL) mid-call, another already running, {trials} times"
    );
    let people = std::sync::Arc::try_unwrap(people).ok().unwrap();
    let env_of_a_replica = || env_for(&db_url, free_port(), proxy.url());
    let last = recovery(
        &pool,
        &proxy,
        env_of_a_replica,
        &people,
        &table,
        server,
        trials,
    )
    .await;
    last.terminate();
}
