//! The query console over the real wire: against moto, through the test proxy, a statement the
//! guard accepts runs in the grant's workgroup **signed with the grant's own session** (the
//! proxy sees which key signed each call), and its canned results come back as rows and CSV.
//! One test in its own binary: moto's canned results are one queue per account, taken by
//! whichever query starts next.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

#[path = "support/aws.rs"]
mod aws_support;
#[path = "support/proxied.rs"]
mod proxied_support;

use lakegate_app::console::{self, Outcome, Stopped};
use lakegate_app::requests;
use lakegate_app::worker::work_once;
use lakegate_domain::usage::QueryState;
use serde_json::json;
use sqlx::PgPool;

use crate::aws_support::leftovers;
use crate::proxied_support::{Proxied, active_grant, alice, proxied};

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn console_statements_run_as_the_grants_session_and_return_rows(pool: PgPool) {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let Proxied { proxy, svc, db, .. } = proxied(
        &pool,
        "console",
        "require_limit = true\n\
         auto_approve = { requester_groups = [\"analysts\"], max_duration = \"2h\" }",
    )
    .await;
    let alice = alice();
    let id = active_grant(
        &svc,
        &format!("{db}.orders: order_id"),
        "look at a few order ids",
    )
    .await;

    // Refused before anything reaches AWS: a column outside the grant, no LIMIT, and one
    // statement for each way text once read one way to the guard and another to Athena.
    for sql in [
        format!("SELECT email FROM {db}.orders LIMIT 1"),
        "SELECT order_id FROM orders".to_owned(),
        // Athena ends a `--` comment at a lone carriage return.
        "SELECT order_id --\r, email\nFROM orders LIMIT 1".to_owned(),
        // A MySQL hint is a comment to Athena (the generic dialect read its text as SQL).
        "SELECT email /*! AS x FROM (SELECT 1) t UNION SELECT order_id */ FROM orders LIMIT 1"
            .to_owned(),
        // An output alias is no qualifier in ORDER BY: `o.email` is the table's.
        "SELECT o.order_id AS o FROM orders o ORDER BY o.email LIMIT 1".to_owned(),
        // UNNEST's argument reads the table's column, not UNNEST's own of the same name.
        "SELECT t.email FROM orders CROSS JOIN UNNEST(ARRAY[email]) AS t(email) LIMIT 1".to_owned(),
        // The subquery has no `email`: Trino takes the outer table's.
        "SELECT (SELECT email FROM (SELECT 1 AS one) s) FROM orders LIMIT 1".to_owned(),
        // Of the two relations, only the table has `email`.
        "SELECT email FROM orders, (SELECT 1 AS x) t LIMIT 1".to_owned(),
    ] {
        let outcome = console::run(&svc, &alice, id, &sql, Some(&db), None)
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Refused(_)), "{sql}: {outcome:?}");
    }
    assert_eq!(proxy.calls("StartQueryExecution"), 0);
    let (refusals,): (i64,) = sqlx::query_as(
        "select count(*) from audit_event where request_id = $1 and action = 'query.refused'",
    )
    .bind(id.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(refusals, 8);

    // moto answers the next query with these rows, header first as Athena does.
    let queued = reqwest::Client::new()
        .post(format!("{moto}/moto-api/static/athena/query-results"))
        .json(&json!({
            "account_id": "123456789012",
            "region": "us-east-1",
            "results": [{
                "rows": [
                    { "Data": [{ "VarCharValue": "order_id" }] },
                    { "Data": [{ "VarCharValue": "1001" }] },
                    { "Data": [{ "VarCharValue": "1002" }] },
                ],
                "column_info": [{ "Name": "order_id", "Type": "bigint", "Nullable": "UNKNOWN" }],
            }],
        }))
        .send()
        .await
        .unwrap();
    assert!(queued.status().is_success(), "{}", queued.status());

    let q = match console::run(
        &svc,
        &alice,
        id,
        "SELECT order_id -- the ids\r\nFROM orders /* two */ LIMIT 2",
        Some(&db),
        None,
    )
    .await
    .unwrap()
    {
        Outcome::Started(q) => q,
        Outcome::Refused(why) => panic!("refused: {why}"),
    };

    // Signed by a session of the grant's role, never by the broker's own key.
    let broker_key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let starters = proxy.callers("StartQueryExecution");
    assert_eq!(starters.len(), 1);
    assert_ne!(starters[0], broker_key);
    let assumed = proxy.callers("AssumeRole");
    assert!(
        !assumed.is_empty() && assumed.iter().all(|k| *k == broker_key),
        "only the broker assumes the role: {assumed:?}"
    );
    let (session_key,): (String,) = sqlx::query_as(
        "select detail->>'access_key_id' from audit_event
         where request_id = $1 and action = 'credentials.minted'",
    )
    .bind(id.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(starters[0], session_key);

    // In the grant's workgroup, with the chosen database (asked of moto directly: the proxy
    // counts only lakegate's calls).
    let athena = aws_sdk_athena::Client::new(
        &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    );
    let described = athena
        .get_query_execution()
        .query_execution_id(&q)
        .send()
        .await
        .unwrap();
    let described = described.query_execution().unwrap();
    // What ran is the guard's rendering of what it checked: no comments, nothing else.
    assert_eq!(
        described.query(),
        Some("SELECT order_id FROM orders LIMIT 2")
    );
    assert_eq!(
        described.work_group(),
        Some(format!("lakegate-{id}").as_str())
    );
    assert_eq!(
        described
            .query_execution_context()
            .and_then(|c| c.database()),
        Some(db.as_str())
    );

    // Its page: succeeded, the rows without the header; status and results read with the
    // session too.
    let page = console::show(&svc, &alice, id, &q, true).await.unwrap();
    assert_eq!(page.execution.state, QueryState::Succeeded);
    let results = page.results.unwrap();
    assert_eq!(results.columns, ["order_id"]);
    assert_eq!(
        results.rows,
        [vec![Some("1001".to_owned())], vec![Some("1002".to_owned())]]
    );
    let mut csv = console::csv(&svc, &alice, id, &q).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = csv.next_chunk().await.unwrap() {
        text.push_str(&chunk);
    }
    assert_eq!(text, "order_id\r\n1001\r\n1002\r\n");
    // A finished query is not stopped; one still going is, through Athena. moto's state
    // manager holds the next query back (QUEUED, then RUNNING) for a few looks.
    assert_eq!(
        console::stop(&svc, &alice, id, &q).await.unwrap(),
        Stopped::AlreadyFinished(QueryState::Succeeded)
    );
    let http = reqwest::Client::new();
    let transition = |body: serde_json::Value, path: &'static str| {
        http.post(format!("{moto}/moto-api/state-manager/{path}"))
            .json(&body)
            .send()
    };
    transition(
        json!({ "model_name": "athena::execution",
                "transition": { "progression": "manual", "times": 3 } }),
        "set-transition",
    )
    .await
    .unwrap();
    let slow = console::run(
        &svc,
        &alice,
        id,
        "SELECT order_id FROM orders LIMIT 1",
        Some(&db),
        None,
    )
    .await;
    let stopped = match slow {
        Ok(Outcome::Started(slow)) => console::stop(&svc, &alice, id, &slow)
            .await
            .map(|s| (slow, s)),
        other => panic!("{other:?}"),
    };
    transition(
        json!({ "model_name": "athena::execution" }),
        "unset-transition",
    )
    .await
    .unwrap();
    let (slow, stopped) = stopped.unwrap();
    assert_eq!(stopped, Stopped::Stopped);
    let page = console::show(&svc, &alice, id, &slow, false).await.unwrap();
    assert_eq!(page.execution.state, QueryState::Cancelled);
    for op in ["GetQueryExecution", "GetQueryResults", "StopQueryExecution"] {
        let keys = proxy.callers(op);
        assert!(!keys.is_empty(), "{op} was called");
        assert!(
            keys.iter().all(|k| *k == session_key),
            "{op} signed by {keys:?}"
        );
    }

    // Revoked: the console refuses at once, and teardown leaves nothing behind.
    requests::revoke(&svc, &alice, id, Some("done"))
        .await
        .unwrap();
    assert!(
        console::run(&svc, &alice, id, "SELECT 1", None, None)
            .await
            .is_err()
    );
    work_once(&svc, "t").await.unwrap();
    assert!(leftovers(&id.to_string()).await.is_empty());
}
