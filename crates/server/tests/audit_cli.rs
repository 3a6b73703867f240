//! `lakegate audit verify` and `export`, run as the real binary against a real database.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::process::{Command, Output};

use lakegate_domain::audit::AuditAction;
use lakegate_domain::request::Requester;
use lakegate_domain::{RequestId, ResourceSpec};
use lakegate_store::audit::{self, Actor, NewAuditEvent};
use lakegate_store::requests::{self, NewRequest};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let db = pool.connect_options().get_database().unwrap().to_owned();
    format!("{}/{db}", base.rsplit_once('/').unwrap().0)
}

async fn lakegate(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_lakegate"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn seed(pool: &PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let id = RequestId::new_random();
    let requester = Requester {
        subject: "alice".into(),
        email: "alice@example.com".into(),
        name: None,
    };
    let now = OffsetDateTime::now_utc();
    requests::insert(
        &mut conn,
        NewRequest {
            id,
            requester: &requester,
            requester_groups: &[],
            catalog_columns: &[],
            approver_groups: &[],
            break_glass: false,
            agent: None,
            resources: &[ResourceSpec {
                database: "sales".into(),
                table: "orders".into(),
                columns: None,
            }],
            duration: Duration::hours(1),
            reason: "an audit, with \"quotes\", commas",
            at: now,
        },
    )
    .await
    .unwrap();
    let actor = Actor::person("alice", "alice@example.com");
    for action in [
        AuditAction::RequestSubmitted,
        AuditAction::RequestCancelled,
        AuditAction::SignedIn,
    ] {
        audit::append(
            &mut conn,
            NewAuditEvent {
                at: now,
                request: Some(id),
                actor: Some(&actor),
                action,
                detail: serde_json::json!({"reason": "an audit, with \"quotes\", commas\nand lines"}),
            },
        )
        .await
        .unwrap();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn verify_passes_then_names_the_tampered_row(pool: PgPool) {
    seed(&pool).await;
    let url = database_url(&pool);
    let ok = lakegate(vec![
        "audit".into(),
        "verify".into(),
        "--database-url".into(),
        url.clone(),
    ])
    .await;
    assert!(
        ok.status.success(),
        "{}{}",
        stdout(&ok),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout(&ok).starts_with("audit trail intact: 3 events, head "));

    let second: i64 =
        sqlx::query_scalar("select event_id from audit_event order by event_id offset 1 limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("alter table audit_event disable trigger audit_event_no_update")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("update audit_event set action = 'request.approved' where event_id = $1")
        .bind(second)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("alter table audit_event enable trigger audit_event_no_update")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let broken = lakegate(vec![
        "audit".into(),
        "verify".into(),
        "--database-url".into(),
        url,
    ])
    .await;
    assert!(!broken.status.success());
    assert!(
        stdout(&broken).contains(&format!(
            "audit trail BROKEN at event {second}: its contents do not match"
        )),
        "{}",
        stdout(&broken)
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn export_writes_json_lines_and_csv(pool: PgPool) {
    seed(&pool).await;
    let url = database_url(&pool);
    let jsonl = lakegate(vec![
        "audit".into(),
        "export".into(),
        "--database-url".into(),
        url.clone(),
    ])
    .await;
    assert!(jsonl.status.success());
    let lines: Vec<serde_json::Value> = stdout(&jsonl)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["action"], "request.submitted");
    assert_eq!(lines[0]["hash"].as_str().unwrap().len(), 64);
    assert!(lines[2]["occurred_at"].as_str().unwrap().ends_with('Z'));

    let csv = lakegate(vec![
        "audit".into(),
        "export".into(),
        "--format".into(),
        "csv".into(),
        "--database-url".into(),
        url,
    ])
    .await;
    let text = stdout(&csv);
    assert!(text.starts_with(
        "event_id,occurred_at,request_id,actor_subject,actor_email,action,detail,hash\n"
    ));
    // The detail has commas, quotes and a newline: quoted and doubled, one record per event.
    assert!(
        text.contains(r#""{""reason"":""an audit, with \""quotes\"", commas\nand lines""}""#),
        "{text}"
    );
    assert_eq!(text.matches("request.").count(), 2);
}
