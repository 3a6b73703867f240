//! Clients against the real binary: schemathesis (PyPI) reads the OpenAPI document lakegate
//! serves and throws generated requests at every operation; the `lakegate` command line, as
//! two people in two homes, asks, waits, approves, gets credentials the AWS CLI uses, queries
//! and revokes.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/binary.rs"]
mod binary;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lakegate_testkit::aws_proxy::AwsProxy;
use tokio::io::AsyncWriteExt as _;

use lakegate_testkit::peers::free_port;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::aws_support::seed_catalog;
use crate::binary::{Browser, Lakegate, base_env, command, database_url, text_of};

/// moto keeps one queue of canned query results per account: the tests of this binary that
/// queue some and run a query take turns.
static MOTO_RESULTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ALL_SCOPES: [&str; 6] = [
    "requests:read",
    "requests:write",
    "approvals:write",
    "credentials",
    "console",
    "audit:read",
];

/// `lakegate serve` with the development sign-in and a policy over the seeded database `db`:
/// data-owners approve, security are admins.
async fn start(pool: &PgPool, db: &str, name: &str, aws: Option<&str>) -> Lakegate {
    start_with(pool, db, name, aws, "").await
}

/// The same, with `rules` added to the policy.
async fn start_with(
    pool: &PgPool,
    db: &str,
    name: &str,
    aws: Option<&str>,
    rules: &str,
) -> Lakegate {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("lakegate-{name}-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "admin_group = \"security\"\nrequestable = [\"{db}.*\"]\n\n\
             [defaults]\napprover_groups = [\"data-owners\"]\n\n{rules}"
        ),
    )
    .unwrap();
    let mut env = base_env(&database_url(pool), port);
    env.extend(
        [
            ("LAKEGATE_DEV_LOGIN", "true"),
            ("LAKEGATE_MIN_DURATION", "1m"),
            ("LAKEGATE_POLICY", policy.to_str().unwrap()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    if let Some(endpoint) = aws {
        env.push(("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned()));
    }
    Lakegate::start(&env).await
}

/// Signs `email` in on the development form and makes a personal token with `scopes` on the
/// settings page, as a person would.
async fn token_for(base: &str, email: &str, groups: &str, scopes: &[&str]) -> String {
    Browser::with_api_token(base, email, groups, "tests", scopes)
        .await
        .0
}

/// Sends `req`: the status and the body as JSON (or, if it is not JSON, as a string).
async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn api(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{base}{path}");
    let mut req = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    answer(req).await
}

/// schemathesis, from the OpenAPI document alone, finds no 5xx and no answer that breaks the
/// document (status codes, content types, bodies) on any operation, positive or negative input.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document(pool: PgPool) {
    let db = seed_catalog("schemathesis").await;
    let server = start(&pool, &db, "schemathesis", None).await;
    let base = &server.base;
    let alice = token_for(base, "alice@example.com", "analysts", &ALL_SCOPES).await;
    let bob = token_for(base, "bob@example.com", "data-owners,security", &ALL_SCOPES).await;
    // Something to list and show: a pending request of Alice's for Bob to decide.
    let (status, made) = api(
        base,
        &alice,
        "POST",
        "/api/v1/requests",
        Some(json!({
            "resources": [{ "database": db, "table": "orders", "columns": ["order_id"] }],
            "duration": "1h",
            "reason": "schemathesis",
        })),
    )
    .await;
    assert_eq!(status, 201, "{made}");

    let report = std::env::temp_dir().join(format!("lakegate-schemathesis-{}", std::process::id()));
    // Its report and its cache (`.schemathesis/`, in the working directory) go to a scratch
    // directory, not the source tree.
    std::fs::create_dir_all(&report).unwrap();
    let run = tokio::process::Command::new("schemathesis")
        .current_dir(&report)
        .args([
            "run",
            &format!("{base}/api/v1/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {bob}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--seed",
            "20261203",
            // One worker and no example database: the same cases every run.
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--report-dir",
            report.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("schemathesis ended within 10 minutes")
        .expect("schemathesis runs (from .venv, as scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\nlakegate's output:\n{}",
        server.output()
    );
    // It did test every operation, and resolved every part of the document.
    assert!(text.contains("Tested: 15"), "{text}");
    assert!(!text.contains("unresolvable reference"), "{text}");
    assert!(
        !server.output().contains("\"level\":\"ERROR\""),
        "{}",
        server.output()
    );
}

/// One person's machine for the command line: a home of their own, and lakegate's URL.
struct Shell {
    home: PathBuf,
    env: Vec<(String, String)>,
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Shell {
    fn new(base: &str, name: &str) -> Self {
        let home = std::env::temp_dir().join(format!("lakegate-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        let env = [
            ("HOME", home.display().to_string()),
            (
                "XDG_CONFIG_HOME",
                home.join(".config").display().to_string(),
            ),
            ("LAKEGATE_URL", base.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec();
        Self { home, env }
    }

    fn cmd(&self, args: &[&str]) -> tokio::process::Command {
        command(&self.env, args)
    }

    async fn run_with_input(&self, args: &[&str], input: &str) -> Ran {
        let mut cmd = self.cmd(args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("lakegate {args:?} ended within 2 minutes"))
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Ran {
        self.run_with_input(args, "").await
    }

    /// Runs and expects exit 0; the standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert_eq!(r.code, 0, "lakegate {args:?}:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{out}"))
    }

    fn config(&self) -> PathBuf {
        self.home.join(".config/lakegate")
    }
}

/// The AWS CLI with only the variables given for credentials (none from the test's own).
async fn aws(env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let mut cmd = tokio::process::Command::new("aws");
    cmd.args([
        "--endpoint-url",
        &endpoint,
        "--region",
        "us-east-1",
        "--output",
        "json",
    ])
    .args(args);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .await
        .expect("the AWS CLI runs (`aws`, from .venv as scripts/test installs it)")
}

fn arn_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "aws failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Arn"].as_str().unwrap().to_owned()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The command line end to end against the real binary: Alice logs in with a token made in
/// the browser, asks with `--wait`, Bob approves from his own shell, Alice's wait ends, `env`
/// and `credentials` feed the AWS CLI the grant's role, `query` prints rows or the guard's
/// refusal, `revoke` ends it; `--json` everywhere, and the documented exit codes.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_command_line_asks_waits_approves_gets_credentials_queries_and_revokes(pool: PgPool) {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let db = seed_catalog("cli").await;
    let server = start(&pool, &db, "cli", Some(proxy.url())).await;
    let base = &server.base;
    let alice = Shell::new(base, "alice");
    let bob = Shell::new(base, "bob");

    // Before logging in: exit 3, saying what to do.
    let r = alice.run(&["status"]).await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("lakegate login"), "{}", r.stderr);

    // `login` stores a token made on the settings page, readable by its owner only.
    let a_token = token_for(
        base,
        "alice@example.com",
        "analysts",
        &["requests:read", "requests:write", "credentials", "console"],
    )
    .await;
    let b_token = token_for(
        base,
        "bob@example.com",
        "data-owners",
        &["requests:read", "approvals:write"],
    )
    .await;
    let r = alice.run_with_input(&["login"], "not-a-token\n").await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = alice
        .run_with_input(&["login"], &format!("{a_token}\n"))
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("alice@example.com"), "{}", r.stdout);
    assert_eq!(mode_of(&alice.config().join("token")), 0o600);
    let r = bob
        .run_with_input(&["login", "--json"], &format!("{b_token}\n"))
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let me: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(me["email"], "bob@example.com");
    // A token file others can read is refused.
    let file = alice.config().join("token");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = alice.run(&["status"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Bad input is exit 2 (the command line) or 4 (lakegate refused), and asks for nothing.
    let r = alice
        .run(&[
            "request",
            "orders",
            "--for",
            "1h",
            "--reason",
            "reconcile April",
        ])
        .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = alice
        .run(&[
            "request",
            &format!("{db}.no_such_table"),
            "--for",
            "1h",
            "--reason",
            "reconcile April",
        ])
        .await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("not found or not requestable"),
        "{}",
        r.stderr
    );

    // Alice asks and waits; the progress line says what for.
    let spec = format!("{db}.orders:order_id,email");
    let mut waiting = alice
        .cmd(&[
            "request",
            &spec,
            "--for",
            "1h",
            "--reason",
            "reconcile April",
            "--wait",
        ])
        .spawn()
        .unwrap();
    // Bob sees it in his queue, and approves it from his shell.
    let mut id = String::new();
    for _ in 0..100 {
        let queue = bob.json(&["status"]).await;
        if let Some(r) = queue["to_approve"].as_array().and_then(|a| a.first()) {
            id = r["id"].as_str().unwrap().to_owned();
            assert_eq!(
                r["resources"][0]["columns"],
                json!(["email", "order_id"]),
                "sorted"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if id.is_empty() {
        waiting.start_kill().unwrap();
        let out = waiting.wait_with_output().await.unwrap();
        panic!(
            "Bob never saw the request; Alice's lakegate printed:\n{}\n{}\nBob's queue: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            bob.json(&["status"]).await
        );
    }
    // Alice may not approve it (no scope, and it is hers): refused, exit 4.
    let r = alice.run(&["approve", &id]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("InsufficientScope"), "{}", r.stderr);
    let approved = bob.ok(&["approve", &id, "--comment", "ok for April"]).await;
    assert!(approved.contains("approved"), "{approved}");
    let out = tokio::time::timeout(Duration::from_secs(60), waiting.wait_with_output())
        .await
        .expect("--wait ended once the grant was active")
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{stderr}\n{}",
        server.output()
    );
    assert!(stdout.contains("is active until"), "{stdout}");
    assert!(
        stderr.contains("waiting for approval: 1 more approval from data-owners"),
        "{stderr}"
    );

    // `status` in text and JSON.
    let text = alice.ok(&["status", &id]).await;
    assert!(text.contains("Status    active"), "{text}");
    assert!(text.contains("approve by bob@example.com"), "{text}");
    let detail = alice.json(&["status", &id]).await;
    assert_eq!(detail["status"], "active");

    // `env` prints the two exports the AWS CLI reads, and keeps the token for `credentials`.
    let exports = alice.ok(&["env", &id]).await;
    let value = |name: &str| {
        exports
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("no {name} in {exports}"))
            .trim_matches('\'')
            .to_owned()
    };
    let url = value("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let token = value("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    assert_eq!(url, format!("{base}/credentials/{id}"));
    let arn = arn_of(
        &aws(
            &[
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.clone()),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.clone()),
            ],
            &["sts", "get-caller-identity"],
        )
        .await,
    );
    assert!(arn.contains("assumed-role/lakegate-"), "{arn}");
    let saved = alice.config().join(format!("{id}.token"));
    assert_eq!(mode_of(&saved), 0o600);
    // A credential_process profile with `lakegate credentials <id>`, run by the AWS CLI.
    let config = alice.home.join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile lakegate]\nregion = us-east-1\ncredential_process = {} credentials {id}\n",
            env!("CARGO_BIN_EXE_lakegate")
        ),
    )
    .unwrap();
    let mut profile_env: Vec<(&str, String)> = alice
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    profile_env.push(("AWS_CONFIG_FILE", config.display().to_string()));
    let via_process = arn_of(
        &aws(
            &profile_env,
            &["--profile", "lakegate", "sts", "get-caller-identity"],
        )
        .await,
    );
    assert_eq!(via_process, arn);

    // `query`: the guard's refusal is exit 4 with its reason; a SELECT prints rows.
    let r = alice
        .run(&["query", &id, "DROP TABLE orders", "--database", &db])
        .await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("QueryRefused"), "{}", r.stderr);
    {
        let _turn = MOTO_RESULTS.lock().await;
        queue_rows(&moto, "order_id", &["1001", "1002"]).await;
        let table = alice
            .ok(&[
                "query",
                &id,
                "SELECT order_id FROM orders LIMIT 2",
                "--database",
                &db,
            ])
            .await;
        assert_eq!(table, "order_id\n1001\n1002\n", "{table}");
        queue_rows(&moto, "order_id", &["1001", "a,b"]).await;
        let csv = alice
            .ok(&[
                "query",
                &id,
                "SELECT order_id FROM orders LIMIT 2",
                "--database",
                &db,
                "--csv",
            ])
            .await;
        assert_eq!(csv, "order_id\r\n1001\r\n\"a,b\"\r\n", "{csv}");
    }

    // `revoke`: the credentials stop at once.
    let revoked = alice.json(&["revoke", &id, "--comment", "done"]).await;
    assert_eq!(revoked["status"], "revoking");
    let r = alice.run(&["credentials", &id]).await;
    assert_ne!(r.code, 0, "credentials after a revoke: {}", r.stdout);
    let after = alice.json(&["status", &id]).await;
    assert!(
        ["revoking", "revoked"].contains(&after["status"].as_str().unwrap()),
        "{after}"
    );
    // A request that is not pending cannot be approved again: exit 4.
    let r = bob.run(&["approve", &id]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);

    // A denied request ends `--wait` with exit 5, naming who denied it.
    let waiting = alice
        .cmd(&[
            "request",
            &format!("{db}.orders"),
            "--for",
            "30m",
            "--reason",
            "a second look at April",
            "--wait",
        ])
        .spawn()
        .unwrap();
    let mut second = String::new();
    for _ in 0..100 {
        let queue = bob.json(&["status"]).await;
        if let Some(r) = queue["to_approve"].as_array().and_then(|a| a.first()) {
            second = r["id"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bob.ok(&["deny", &second, "--comment", "not twice"]).await;
    let out = tokio::time::timeout(Duration::from_secs(30), waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("denied by bob@example.com: not twice"),
        "{stderr}"
    );
}

/// moto answers the next Athena query with one column of `values`.
async fn queue_rows(moto: &str, column: &str, values: &[&str]) {
    let mut rows = vec![json!({ "Data": [{ "VarCharValue": column }] })];
    rows.extend(
        values
            .iter()
            .map(|v| json!({ "Data": [{ "VarCharValue": v }] })),
    );
    let res = reqwest::Client::new()
        .post(format!("{moto}/moto-api/static/athena/query-results"))
        .json(&json!({
            "account_id": "123456789012",
            "region": "us-east-1",
            "results": [{
                "rows": rows,
                "column_info": [{ "Name": column, "Type": "varchar", "Nullable": "UNKNOWN" }],
            }],
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
}

/// One JSON-RPC call to `/mcp` by hand: the HTTP status and the body (JSON, or the text).
async fn mcp_raw(
    base: &str,
    token: Option<&str>,
    body: &str,
    origin: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    answer(req).await
}

/// An AI agent, through the official MCP TypeScript SDK's client over the wire, lists the
/// tools and the tables, asks for access for Alice (not auto-approved, although Alice's own
/// request would be: the rule does not say `agents = true`), Bob approves through the API and
/// sees who asked, the agent runs a guarded query and reads rows; a refused statement is a tool
/// error with the guard's reason, bad arguments a JSON-RPC error, and the audit names the agent.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn an_agent_asks_through_mcp_a_person_approves_and_the_agent_queries(pool: PgPool) {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let db = seed_catalog("mcp").await;
    let rules = format!(
        "[[rule]]\nname = \"orders\"\nmatch = [\"{db}.orders\"]\nsensitive_columns = [\"email\"]\n\
         auto_approve = {{ requester_groups = [\"analysts\"], max_duration = \"2h\" }}\n"
    );
    let server = start_with(&pool, &db, "mcp", Some(proxy.url()), &rules).await;
    let base = &server.base;
    let (agent, _) = Browser::with_api_token(
        base,
        "alice@example.com",
        "analysts",
        "notebook-agent",
        &["requests:read", "requests:write", "console"],
    )
    .await;
    let (approver, bob) = Browser::with_api_token(
        base,
        "bob@example.com",
        "data-owners",
        "bob-cli",
        &["requests:read", "approvals:write"],
    )
    .await;

    let _turn = MOTO_RESULTS.lock().await;
    queue_rows(&moto, "order_id", &["7", "8"]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/mcp/agent.mjs");
    let run = tokio::process::Command::new("node")
        .arg(script)
        .env("LAKEGATE_URL", base)
        .env("AGENT_TOKEN", &agent)
        .env("APPROVER_TOKEN", &approver)
        .env("TABLE_DB", &db)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the MCP client ended within 2 minutes")
        .expect("node runs tests/mcp/agent.mjs (scripts/test installs its node_modules)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the MCP client failed:\n{stdout}\n{}\nlakegate's output:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output()
    );
    let facts: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(facts["server"]["name"], "lakegate");
    assert_eq!(
        facts["tools"],
        json!([
            "list_tables",
            "query_result",
            "request_access",
            "request_status",
            "run_query"
        ])
    );
    assert_eq!(facts["tables"], json!([format!("{db}.orders")]), "{facts}");
    let columns = facts["order_columns"].to_string();
    assert!(columns.contains("email:string:sensitive"), "{columns}");
    assert!(columns.contains("\"order_id:"), "{columns}");
    assert!(!columns.contains("order_id:bigint:sensitive"), "{columns}");
    // The rule auto-approves analysts, but not an agent acting for one.
    assert_eq!(facts["requested"]["status"], "pending", "{facts}");
    assert_eq!(facts["status"], "active", "{facts}");
    assert_eq!(facts["agent"], "notebook-agent");
    assert_eq!(facts["on_behalf_of"], "alice@example.com");
    let refused = facts["refused"].as_str().unwrap();
    assert!(
        refused.starts_with("QueryRefused: the SQL guard refused"),
        "{refused}"
    );
    assert_eq!(facts["ran"]["state"], "SUCCEEDED", "{facts}");
    assert_eq!(facts["ran"]["rows"], json!([["7"], ["8"]]));
    assert_eq!(facts["result_rows"], json!([["7"], ["8"]]));
    for e in facts["protocol_errors"].as_array().unwrap() {
        assert_eq!(e["code"], -32602, "{e}");
    }
    let unknown = facts["protocol_errors"][2]["message"].as_str().unwrap();
    assert!(unknown.contains("unknown tool `no_such_tool`"), "{unknown}");

    // Bob, the approver, sees who asked; the audit names the agent's token.
    let url = facts["requested"]["url"].as_str().unwrap();
    let page = bob.get(url).await;
    assert_eq!(
        text_of(&page.body, "#requester"),
        "agent notebook-agent on behalf of alice@example.com"
    );
    let agent_in_audit: Option<String> = sqlx::query_scalar(
        "select detail->>'agent' from audit_event where action = 'request.submitted'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(agent_in_audit.as_deref(), Some("notebook-agent"));

    // By hand: no token, a foreign origin, a batch, a missing scope, a bad method.
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let (status, body) = mcp_raw(base, None, call, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = mcp_raw(base, Some(&agent), call, Some("https://evil.example")).await;
    assert_eq!(status, 403);
    let (status, body) = mcp_raw(base, Some(&agent), &format!("[{call}]"), None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!(-32600)),
        "{body}"
    );
    let (status, body) = mcp_raw(base, Some(&agent), "{not json", None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!(-32700)),
        "{body}"
    );
    let (status, body) = mcp_raw(
        base,
        Some(&agent),
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (200, json!(-32601)),
        "{body}"
    );
    let query = json!({
        "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": { "name": "run_query", "arguments": { "request_id": facts["requested"]["url"].as_str().unwrap().rsplit('/').next().unwrap(), "sql": "SELECT 1" } },
    });
    let (status, body) = mcp_raw(base, Some(&approver), &query.to_string(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("InsufficientScope"), "{text}");
    let (status, _) = mcp_raw(
        base,
        Some(&agent),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        None,
    )
    .await;
    assert_eq!(status, 202);
    let get = reqwest::Client::new()
        .get(format!("{base}/mcp"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    // A body over 1 MiB: 413 with the API's JSON error, and nothing run.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"run_query","arguments":{{"request_id":"x","sql":"{}"}}}}}}"#,
        "x".repeat(1_100_000)
    );
    let (status, body) = mcp_raw(base, Some(&agent), &huge, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("TooLarge")),
        "{body}"
    );
}
