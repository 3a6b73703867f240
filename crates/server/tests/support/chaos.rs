//! The chaos suite's harness (included by `chaos.rs` with `#[path]`): replicas of the real
//! binary that can be killed and started again, people acting through whichever replica is up,
//! a checker that watches what the credentials URL hands out, and the invariants checked after
//! recovery (docs/testing.md "The chaos suite").

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lakegate_testkit::peers::free_port;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::aws_support::names_in_aws;
use crate::binary::{Browser, Lakegate, base_env};

/// How long the grants of the chaos suite last: the shortest lakegate allows, so that many
/// expire during a run.
pub(crate) const GRANT: Duration = Duration::from_secs(60);
/// The kills go on at least this long, so that grants expire while replicas die.
pub(crate) const KILLING: Duration = Duration::from_secs(90);
/// A grant's credentials must stop being handed out within this of its end.
pub(crate) const END_SLACK: time::Duration = time::Duration::seconds(5);
/// People asking at once.
pub(crate) const REQUESTERS: usize = 4;

/// A small generator of random choices (xorshift64*), seeded from `LAKEGATE_CHAOS_SEED` or the
/// clock; the seed is printed, so a failing run's choices can be made again.
pub(crate) struct Dice(u64);

impl Dice {
    pub(crate) fn seeded() -> Self {
        let seed = std::env::var("LAKEGATE_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                u64::try_from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                        % u128::from(u64::MAX),
                )
                .unwrap()
            });
        eprintln!("chaos seed {seed} (LAKEGATE_CHAOS_SEED={seed} makes the same choices)");
        Self(seed | 1)
    }

    pub(crate) fn derive(&mut self) -> Self {
        Self(self.next() | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = u64::try_from((high - low).as_millis()).unwrap().max(1);
        low + Duration::from_millis(self.below(span))
    }
}

/// Replicas of `lakegate serve` on fixed ports, any of which may be killed and started again.
pub(crate) struct Cluster {
    db_url: String,
    aws: String,
    ports: Vec<u16>,
    replicas: Vec<Option<Lakegate>>,
    /// The base URLs of the replicas that are up, for the people and the checker.
    up: Arc<Mutex<Vec<String>>>,
    /// What the killed replicas printed, for a failure's message.
    dead_output: String,
}

impl Cluster {
    pub(crate) async fn start(db_url: &str, aws: &str, n: usize) -> Self {
        let mut c = Self {
            db_url: db_url.to_owned(),
            aws: aws.to_owned(),
            ports: (0..n).map(|_| free_port()).collect(),
            replicas: (0..n).map(|_| None).collect(),
            up: Arc::new(Mutex::new(Vec::new())),
            dead_output: String::new(),
        };
        for i in 0..n {
            c.restart(i).await;
        }
        c
    }

    pub(crate) fn env(&self, port: u16) -> Vec<(String, String)> {
        let mut env = base_env(&self.db_url, port);
        env.extend(
            [
                ("LAKEGATE_DEV_LOGIN", "true"),
                ("LAKEGATE_MIN_DURATION", "1m"),
                ("AWS_ENDPOINT_URL", self.aws.as_str()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        env
    }

    pub(crate) fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    pub(crate) async fn kill(&mut self, i: usize) {
        let base = self.base(i);
        self.up.lock().unwrap().retain(|b| *b != base);
        if let Some(mut r) = self.replicas[i].take() {
            r.kill().await;
            self.dead_output.push_str(&r.output());
        }
    }

    /// Starts replica `i` again on its port (its people's sessions live in PostgreSQL).
    pub(crate) async fn restart(&mut self, i: usize) {
        let r = Lakegate::start(&self.env(self.ports[i])).await;
        self.replicas[i] = Some(r);
        self.up.lock().unwrap().push(self.base(i));
    }

    pub(crate) fn output(&self) -> String {
        let mut all = self.dead_output.clone();
        for r in self.replicas.iter().flatten() {
            all.push_str(&r.output());
        }
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

/// The people's view of the API: each call goes to a replica that is up, and to the next one
/// when the connection breaks or the answer is a 5xx (a replica dying, the database gone),
/// for up to 90 s.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    up: Arc<Mutex<Vec<String>>>,
}

impl Api {
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let started = Instant::now();
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            let base = {
                let up = self.up.lock().unwrap();
                (!up.is_empty()).then(|| up[attempt % up.len()].clone())
            };
            if let Some(base) = base {
                let mut req = self
                    .http
                    .request(method.clone(), format!("{base}{path}"))
                    .header("authorization", format!("Bearer {token}"))
                    .timeout(Duration::from_secs(20));
                if let Some(b) = &body {
                    req = req.json(b);
                }
                if let Ok(res) = req.send().await {
                    let status = res.status().as_u16();
                    if status < 500 {
                        let json = res.json().await.unwrap_or_default();
                        return (status, json);
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{method} {path}: no replica answered for 90 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// An API token for a person signed in on `base` with `groups`.
pub(crate) async fn api_token(base: &str, email: &str, groups: &str) -> String {
    let scopes = [
        "requests:read",
        "requests:write",
        "approvals:write",
        "credentials",
    ];
    Browser::with_api_token(base, email, groups, "chaos", &scopes)
        .await
        .0
}

/// A grant's credentials token, for the checker.
#[derive(Clone)]
pub(crate) struct Watched {
    id: String,
    token: String,
}

/// What the checker saw: credentials handed out, with when.
#[derive(Default)]
pub(crate) struct Seen {
    handed_out: Vec<(String, time::OffsetDateTime)>,
}

/// People asking, approving, using and revoking, until `stop`.
pub(crate) struct Traffic {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<usize>>,
    checker: tokio::task::JoinHandle<Seen>,
    checker_stop: Arc<std::sync::atomic::AtomicBool>,
}

pub(crate) async fn status_in(pool: &PgPool, id: &str) -> Option<String> {
    sqlx::query_scalar("select status from access_request where request_id = $1::uuid")
        .bind(id)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
}

/// What the people share: the API, the database to watch, the table they ask for, the
/// approver's token, the grants the checker watches, and when to stop.
pub(crate) struct Crowd {
    api: Api,
    pool: PgPool,
    table: String,
    approver: String,
    watch: Arc<Mutex<Vec<Watched>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// One requester: asks (the approver approves at once), waits for the grant, takes a
/// credentials token, then revokes after a while or lets the grant expire. Rounds done.
pub(crate) async fn person(crowd: Arc<Crowd>, me: String, mut dice: Dice) -> usize {
    use reqwest::Method;
    let Crowd {
        api,
        pool,
        table,
        approver,
        watch,
        stop,
    } = &*crowd;
    let mut rounds = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let body = serde_json::json!({
            "resources": [{ "database": table, "table": "orders" }],
            "duration": format!("{}s", GRANT.as_secs()),
            "reason": format!("the chaos suite, round {}", rounds + 1),
        });
        let (status, made) = api
            .call(Method::POST, "/api/v1/requests", &me, Some(body))
            .await;
        assert_eq!(status, 201, "submit: {made}");
        let id = made["id"].as_str().unwrap().to_owned();
        let (status, answer) = api
            .call(
                Method::POST,
                &format!("/api/v1/requests/{id}/approve"),
                approver,
                None,
            )
            .await;
        // 409: a retried approval that the first try had made.
        assert!(status == 200 || status == 409, "approve: {status} {answer}");
        rounds += 1;
        // Active in the end, whatever is killed or cut off meanwhile.
        let started = Instant::now();
        loop {
            match status_in(pool, &id).await.as_deref() {
                Some("active") => break,
                Some("approved") | None => {}
                Some(other) => panic!("{id} became {other} instead of active"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "{id} not active after 240 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, creds) = api
            .call(
                Method::POST,
                &format!("/api/v1/requests/{id}/credentials"),
                &me,
                None,
            )
            .await;
        if status == 409 {
            continue; // expired meanwhile (an outage lasted longer than the grant)
        }
        assert_eq!(status, 200, "credentials: {creds}");
        watch.lock().unwrap().push(Watched {
            id: id.clone(),
            token: creds["token"].as_str().unwrap().to_owned(),
        });
        if dice.below(2) == 0 {
            tokio::time::sleep(dice.between(Duration::ZERO, Duration::from_secs(5))).await;
            let (status, answer) = api
                .call(
                    Method::POST,
                    &format!("/api/v1/requests/{id}/revoke"),
                    &me,
                    None,
                )
                .await;
            assert!(status == 200 || status == 409, "revoke: {status} {answer}");
        } else {
            tokio::time::sleep(dice.between(Duration::ZERO, GRANT)).await;
        }
    }
    rounds
}

/// Fetches every watched grant's credentials URL, over and over, from a replica that is up;
/// notes each answer that handed credentials out.
pub(crate) async fn checker(
    up: Arc<Mutex<Vec<String>>>,
    watch: Arc<Mutex<Vec<Watched>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Seen {
    let http = reqwest::Client::new();
    let mut seen = Seen::default();
    let mut turn = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let grants = watch.lock().unwrap().clone();
        for g in grants {
            turn += 1;
            let base = {
                let up = up.lock().unwrap();
                (!up.is_empty()).then(|| up[turn % up.len()].clone())
            };
            let Some(base) = base else { continue };
            let answer = http
                .get(format!("{base}/credentials/{}", g.id))
                .header("authorization", &g.token)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if let Ok(res) = answer
                && res.status() == StatusCode::OK
            {
                seen.handed_out
                    .push((g.id.clone(), time::OffsetDateTime::now_utc()));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

impl Traffic {
    pub(crate) async fn start(
        cluster: &Cluster,
        pool: &PgPool,
        table: &str,
        dice: &mut Dice,
    ) -> Self {
        let base = cluster.base(0);
        let approver = api_token(&base, "approver@example.com", "data-owners").await;
        let api = Api {
            http: reqwest::Client::new(),
            up: Arc::clone(&cluster.up),
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watch = Arc::new(Mutex::new(Vec::new()));
        let crowd = Arc::new(Crowd {
            api,
            pool: pool.clone(),
            table: table.to_owned(),
            approver,
            watch: Arc::clone(&watch),
            stop: Arc::clone(&stop),
        });
        let mut tasks = Vec::new();
        for i in 0..REQUESTERS {
            let me = api_token(&base, &format!("person{i}@example.com"), "analysts").await;
            tasks.push(tokio::spawn(person(Arc::clone(&crowd), me, dice.derive())));
        }
        let checker_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checker = tokio::spawn(checker(
            Arc::clone(&cluster.up),
            watch,
            Arc::clone(&checker_stop),
        ));
        Self {
            stop,
            tasks,
            checker,
            checker_stop,
        }
    }

    /// Stops asking, waits for every request to end (at most `within`), then stops the checker.
    pub(crate) async fn finish(
        self,
        pool: &PgPool,
        cluster: &Cluster,
        within: Duration,
    ) -> (usize, Seen) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut rounds = 0;
        for t in self.tasks {
            rounds += t.await.unwrap();
        }
        let started = Instant::now();
        loop {
            let open: i64 = sqlx::query_scalar(
                "select count(*) from access_request where status in ('approved', 'active', 'revoking')",
            )
            .fetch_one(pool)
            .await
            .unwrap_or(1);
            if open == 0 {
                break;
            }
            assert!(
                started.elapsed() < within,
                "{open} requests still open {within:?} after the chaos; the replicas' logs:\n{}",
                cluster.output()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!(
            "every request ended {:.1} s after the people stopped",
            started.elapsed().as_secs_f64()
        );
        self.checker_stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        (rounds, self.checker.await.unwrap())
    }
}

/// The invariants after a run: no credentials handed out past a grant's end + 5 s, nothing of
/// any request left in AWS, each request's audit events exactly once, the audit trail intact.
pub(crate) async fn check_invariants(pool: &PgPool, cluster: &Cluster, seen: &Seen) {
    let ends: Vec<(
        String,
        Option<time::OffsetDateTime>,
        Option<time::OffsetDateTime>,
    )> = sqlx::query_as(
        "select request_id::text, expires_at, revoke_started_at from access_request",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let ends: std::collections::HashMap<String, Option<time::OffsetDateTime>> = ends
        .into_iter()
        .map(|(id, expires, revoked)| {
            let end = match (expires, revoked) {
                (Some(e), Some(r)) => Some(e.min(r)),
                (e, r) => e.or(r),
            };
            (id, end)
        })
        .collect();
    for (id, at) in &seen.handed_out {
        let end = ends[id].unwrap_or_else(|| panic!("{id} handed out credentials and never began"));
        assert!(
            *at <= end + END_SLACK,
            "{id}'s credentials were handed out at {at}, {} after its end at {end}",
            *at - end
        );
    }
    eprintln!(
        "{} answers handed credentials out, none later than the grant's end + 5 s",
        seen.handed_out.len()
    );

    let left = names_in_aws().await;
    let behind: Vec<&String> = ends
        .keys()
        .filter(|id| left.contains(&format!("lakegate-{id}")))
        .collect();
    assert!(behind.is_empty(), "left in AWS: {behind:?}");

    // Exactly once each, for every request that was approved; the failures and sessions
    // minted may repeat.
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "select r.request_id::text, r.status, a.action, count(*) from access_request r
         join audit_event a on a.request_id = r.request_id group by 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut per: std::collections::BTreeMap<
        String,
        (String, std::collections::BTreeMap<String, i64>),
    > = std::collections::BTreeMap::new();
    for (id, status, action, n) in rows {
        let e = per
            .entry(id)
            .or_insert_with(|| (status, Default::default()));
        e.1.insert(action, n);
    }
    for (id, (status, actions)) in &per {
        if status == "pending" {
            continue;
        }
        for once in [
            "request.submitted",
            "request.approved",
            "grant.revoke_started",
            "grant.ended",
        ] {
            assert_eq!(
                actions.get(once).copied(),
                Some(1),
                "{id} ({status}): {once} in {actions:?}"
            );
        }
        let activated = actions.get("grant.activated").copied().unwrap_or(0);
        assert!(activated <= 1, "{id}: activated {activated} times");
        for (action, n) in actions {
            let may_repeat = matches!(
                action.as_str(),
                "credentials.minted"
                    | "credentials.token_issued"
                    | "provisioning.step_failed"
                    | "revoke.step_failed"
            );
            assert!(may_repeat || *n == 1, "{id}: {action} {n} times");
        }
    }
    let env = cluster.env(free_port());
    let (status, out) = crate::binary::run_to_end(&env, &["audit", "verify"]).await;
    assert!(status.success(), "{out}");
    assert!(out.starts_with("audit trail intact"), "{out}");
}

/// The time from each expired grant's end to its sessions' deny, from the audit: p50, max.
pub(crate) async fn deny_lags(pool: &PgPool) -> (f64, f64, usize) {
    let mut lags: Vec<f64> = sqlx::query_scalar(
        "select (detail->>'deny_lag_seconds')::float8 from audit_event
         where action = 'grant.ended' and detail->>'end_state' = 'expired'
           and detail ? 'deny_lag_seconds' and detail->>'deny_lag_seconds' is not null",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    lags.sort_by(f64::total_cmp);
    if lags.is_empty() {
        return (0.0, 0.0, 0);
    }
    (lags[lags.len() / 2], lags[lags.len() - 1], lags.len())
}

/// A database of its own on the PostgreSQL that `scripts/test` started for this test to crash.
pub(crate) async fn restartable_database() -> (String, String) {
    let dir = std::env::var("LAKEGATE_TEST_PG_RESTARTABLE")
        .expect("LAKEGATE_TEST_PG_RESTARTABLE is set: run the tests with scripts/test");
    let admin_url = std::env::var("LAKEGATE_TEST_PG_RESTARTABLE_URL").unwrap();
    let name = format!("chaos_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = admin_url.rsplit_once('/').unwrap();
    (dir, format!("{prefix}/{name}"))
}

/// Crashes the PostgreSQL in `dir` and starts it again (scripts/lib.sh `lg_restart_postgres`).
pub(crate) async fn restart_postgres(dir: &str) -> Duration {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/lib.sh");
    let started = Instant::now();
    let out = tokio::process::Command::new("bash")
        .args(["-c", r#". "$0" && lg_restart_postgres "$1""#, lib, dir])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}
