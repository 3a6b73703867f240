//! The load test: 200 people on the real binary at once, for a minute (`LAKEGATE_LOAD_SECONDS`,
//! `LAKEGATE_LOAD_PEOPLE` to change either). Requesters ask for a table, approvers approve from
//! the queue as requests arrive, each requester waits for the grant to turn active on its page,
//! takes a credentials token, fetches the credentials URL as an SDK does, revokes, and asks
//! again, until the time is up. Then: no answer was an error, every request has each of its
//! audit events exactly once and the audit trail verifies, nothing is left in AWS, and the
//! process's memory stayed within the footprint target (README "Performance").
//! Its own test binary: nothing else runs against the emulator meanwhile.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;
#[path = "support/measure.rs"]
mod measure;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lakegate_testkit::peers::free_port;
use reqwest::StatusCode;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::aws_support::{names_in_aws, seed_catalog};
use crate::binary::{Browser, Lakegate, base_env, database_url, run_to_end, text_of};
use crate::measure::{memory, percentile, setting};

/// The footprint target under load (README "Performance"): peak resident memory.
const MAX_RSS_MIB: f64 = 150.0;
/// One in this many people approves; the others ask.
const APPROVER_EVERY: usize = 5;
/// How often a person's open request page is looked at while they wait.
const POLL: Duration = Duration::from_millis(1000);
/// Fetches of the credentials URL per grant, as an SDK client does while it works.
const FETCHES: usize = 5;

/// What went wrong for the people, and what they got done.
#[derive(Default)]
struct Tally {
    errors: Vec<String>,
    requests: Vec<String>,
    activations: Vec<Duration>,
    fetches: Vec<Duration>,
}

impl Tally {
    fn error(&mut self, what: String) {
        if self.errors.len() < 20 {
            self.errors.push(what);
        } else if self.errors.len() == 20 {
            self.errors.push("… and more".to_owned());
        }
    }
}

/// Whether a page or form answer is the expected one; records it as an error otherwise.
fn expect(
    tally: &Mutex<Tally>,
    what: &str,
    got: StatusCode,
    wanted: StatusCode,
    body: &str,
) -> bool {
    if got == wanted {
        return true;
    }
    let head: String = body.chars().take(300).collect();
    tally
        .lock()
        .unwrap()
        .error(format!("{what}: {got} (wanted {wanted}): {head}"));
    false
}

/// Polls the request page until its status is `wanted`; `false` (recorded) after `within`.
async fn wait_status(
    b: &Browser,
    tally: &Mutex<Tally>,
    path: &str,
    wanted: &str,
    within: Duration,
) -> bool {
    let started = Instant::now();
    loop {
        let page = b.get(path).await;
        if !expect(
            tally,
            "the request page",
            page.status,
            StatusCode::OK,
            &page.body,
        ) {
            return false;
        }
        let status = text_of(&page.body, "#status");
        if status == wanted {
            return true;
        }
        if started.elapsed() > within {
            tally.lock().unwrap().error(format!(
                "{path} still {status}, not {wanted}, after {within:?}"
            ));
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One requester's minute: ask, wait for the grant, use it, revoke, again.
async fn requester(
    base: String,
    email: String,
    table: String,
    until: Instant,
    queue: mpsc::UnboundedSender<String>,
    tally: Arc<Mutex<Tally>>,
) {
    let me = Browser::signed_in_dev(&base, &email, "analysts").await;
    let http = reqwest::Client::new();
    let mut round = 0;
    while Instant::now() < until {
        round += 1;
        let res = me
            .submit(
                "/requests/new",
                "/requests",
                &[
                    ("resources", table.as_str()),
                    ("duration", "1h"),
                    ("reason", &format!("load test, round {round}")),
                ],
            )
            .await;
        if !expect(
            &tally,
            "submit",
            res.status,
            StatusCode::SEE_OTHER,
            &res.body,
        ) {
            return;
        }
        let path = res.location.unwrap();
        let id = path.rsplit('/').next().unwrap().to_owned();
        tally.lock().unwrap().requests.push(id.clone());
        let asked = Instant::now();
        queue.send(path.clone()).unwrap();
        if !wait_status(&me, &tally, &path, "active", Duration::from_secs(120)).await {
            return;
        }
        tally.lock().unwrap().activations.push(asked.elapsed());

        let res = me.submit(&path, &format!("{path}/credentials"), &[]).await;
        if !expect(
            &tally,
            "credentials token",
            res.status,
            StatusCode::OK,
            &res.body,
        ) {
            return;
        }
        let token = text_of(&res.body, "#credentials-token");
        let url = format!("{base}/credentials/{id}");
        for _ in 0..FETCHES {
            let started = Instant::now();
            let res = http
                .get(&url)
                .header("authorization", &token)
                .send()
                .await
                .unwrap();
            let took = started.elapsed();
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            if !expect(
                &tally,
                "the credentials URL",
                status,
                StatusCode::OK,
                &body.to_string(),
            ) {
                return;
            }
            if body["AccessKeyId"].as_str().is_none_or(str::is_empty) {
                tally.lock().unwrap().error(format!(
                    "the credentials URL answered without a key: {body}"
                ));
                return;
            }
            tally.lock().unwrap().fetches.push(took);
        }

        let res = me.submit(&path, &format!("{path}/revoke"), &[]).await;
        if !expect(
            &tally,
            "revoke",
            res.status,
            StatusCode::SEE_OTHER,
            &res.body,
        ) {
            return;
        }
        // Refused at once, whatever the teardown still has to do.
        let res = http
            .get(&url)
            .header("authorization", &token)
            .send()
            .await
            .unwrap();
        if res.status() != StatusCode::FORBIDDEN {
            tally.lock().unwrap().error(format!(
                "the credentials URL answered {} right after the revoke",
                res.status()
            ));
            return;
        }
        if !wait_status(&me, &tally, &path, "revoked", Duration::from_secs(120)).await {
            return;
        }
    }
}

/// One approver: approves whatever reaches the queue until every requester is done.
async fn approver(
    base: String,
    email: String,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>,
    tally: Arc<Mutex<Tally>>,
) {
    let me = Browser::signed_in_dev(&base, &email, "data-owners").await;
    loop {
        let next = queue.lock().await.recv().await;
        let Some(path) = next else { return };
        let res = me.submit(&path, &format!("{path}/approve"), &[]).await;
        expect(
            &tally,
            "approve",
            res.status,
            StatusCode::SEE_OTHER,
            &res.body,
        );
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn two_hundred_people_for_a_minute_without_an_error(pool: PgPool) {
    let seconds = setting("LAKEGATE_LOAD_SECONDS", 60);
    let people = usize::try_from(setting("LAKEGATE_LOAD_PEOPLE", 200)).unwrap();
    let db = seed_catalog("load").await;
    let table = format!("{db}.orders");
    let db_url = database_url(&pool);
    let port = free_port();
    let mut env = base_env(&db_url, port);
    env.push(("LAKEGATE_DEV_LOGIN".to_owned(), "true".to_owned()));
    // The development log level of a busy server: the access log stays on.
    let server = Lakegate::start(&env).await;
    let idle = memory(server.pid()).now;

    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = Instant::now() + Duration::from_secs(seconds);
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = Vec::new();
    for i in 0..people {
        let base = server.base.clone();
        let tally = Arc::clone(&tally);
        if i % APPROVER_EVERY == 0 {
            let email = format!("approver{i}@example.com");
            tasks.push(tokio::spawn(approver(base, email, Arc::clone(&rx), tally)));
        } else {
            let email = format!("person{i}@example.com");
            let task = requester(base, email, table.clone(), until, tx.clone(), tally);
            tasks.push(tokio::spawn(task));
        }
    }
    drop(tx);
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    let peak = memory(server.pid()).peak;

    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    let rounds = tally.requests.len();
    eprintln!(
        "{people} people, {seconds} s: {rounds} grants asked, approved, used and revoked in {:.1} s; \
         ask → active p50 {:.2?} p99 {:.2?}; credentials URL p50 {:.2?} p99 {:.2?} ({} fetches); \
         memory: idle {idle:.0} MiB, peak {peak:.0} MiB",
        took.as_secs_f64(),
        percentile(&tally.activations, 0.5).unwrap_or_default(),
        percentile(&tally.activations, 0.99).unwrap_or_default(),
        percentile(&tally.fetches, 0.5).unwrap_or_default(),
        percentile(&tally.fetches, 0.99).unwrap_or_default(),
        tally.fetches.len(),
    );
    assert!(
        tally.errors.is_empty(),
        "errors under load:\n{}\nthe server's log (end):\n{}",
        tally.errors.join("\n"),
        server
            .output()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let requesters = people - people.div_ceil(APPROVER_EVERY);
    assert!(
        rounds >= requesters,
        "every requester finished a round: {rounds}"
    );

    // Every request: each of its events exactly once (a token made once, at least one STS
    // session minted for it), nothing else.
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "select request_id::text, action, count(*) from audit_event
         where request_id is not null group by 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut per_request: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (id, action, n) in rows {
        per_request.entry(id).or_default().insert(action, n);
    }
    assert_eq!(per_request.len(), rounds, "requests with audit events");
    for id in &tally.requests {
        let mut got = per_request.remove(id).unwrap_or_default();
        let minted = got.remove("credentials.minted").unwrap_or(0);
        assert!(minted >= 1, "{id}: no credentials.minted event");
        let expected: BTreeMap<String, i64> = [
            "request.submitted",
            "request.approved",
            "grant.activated",
            "credentials.token_issued",
            "grant.revoke_started",
            "grant.ended",
        ]
        .into_iter()
        .map(|a| (a.to_owned(), 1))
        .collect();
        assert_eq!(got, expected, "{id}'s audit events");
    }
    let (status, out) = run_to_end(&env, &["audit", "verify"]).await;
    assert!(status.success(), "{out}");
    assert!(out.starts_with("audit trail intact"), "{out}");

    // Nothing of any grant is left in AWS.
    let left = names_in_aws().await;
    let ours: Vec<&String> = tally
        .requests
        .iter()
        .filter(|id| left.contains(&format!("lakegate-{id}")))
        .collect();
    assert!(ours.is_empty(), "left in AWS: {ours:?}");

    assert!(
        peak <= MAX_RSS_MIB,
        "peak resident memory {peak:.0} MiB under load, over {MAX_RSS_MIB} MiB"
    );
}
