//! Store behaviour against a real PostgreSQL (one fresh database per test).
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use lakegate_domain::audit::AuditAction;
use lakegate_domain::lake_formation::plan_grants;
use lakegate_domain::ports::QueryExecution;
use lakegate_domain::request::Requester;
use lakegate_domain::usage::QueryState;
use lakegate_domain::{EndState, RequestId, RequestStatus, ResourceSpec};
use lakegate_store::audit::{self, Actor, NewAuditEvent};
use lakegate_store::extensions::{self, ExtensionStatus};
use lakegate_store::requests::{self, GrantPlan, NewDecision, NewRequest};
use lakegate_store::work::Lane;
use lakegate_store::{StoreError, usage, work};
use sqlx::PgPool;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-05-01 09:00 UTC);

fn alice() -> Requester {
    Requester {
        subject: "alice".into(),
        email: "alice@example.com".into(),
        name: Some("Alice".into()),
    }
}

fn resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            database: "sales".into(),
            table: "orders".into(),
            columns: None,
        },
        ResourceSpec {
            database: "sales".into(),
            table: "customers".into(),
            columns: Some(vec!["customer_id".into(), "email".into()]),
        },
    ]
}

async fn submit(pool: &PgPool) -> RequestId {
    let id = RequestId::new_random();
    let mut conn = pool.acquire().await.unwrap();
    requests::insert(
        &mut conn,
        NewRequest {
            id,
            requester: &alice(),
            requester_groups: &[],
            catalog_columns: &[],
            approver_groups: &[],
            break_glass: false,
            agent: None,
            resources: &resources(),
            duration: Duration::hours(1),
            reason: "quarterly revenue reconciliation",
            at: T0,
        },
    )
    .await
    .unwrap();
    id
}

fn plan(id: RequestId) -> GrantPlan {
    let role_arn = format!("arn:aws:iam::123456789012:role/lakegate/lakegate-{id}");
    GrantPlan {
        role_name: format!("lakegate-{id}"),
        lf_grants: plan_grants("123456789012", &role_arn, &resources(), &[]),
        role_arn,
        workgroup: format!("lakegate-{id}"),
        results_uri: format!("s3://results/{id}/"),
        first_step: "create_role",
        scan_cutoff_bytes: 10_000_000_000,
        scan_budget_bytes: Some(1_000_000_000_000),
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn request_round_trips_with_resources_in_order(pool: PgPool) {
    let id = submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let r = requests::get(&mut conn, id).await.unwrap();
    assert_eq!(r.status, RequestStatus::Pending);
    assert_eq!(r.resources, resources());
    assert_eq!(r.requester, alice());
    assert_eq!(r.duration, Duration::hours(1));
    assert_eq!(r.created_at, T0);
    assert!(!r.has_credentials_token);
    let missing = requests::get(&mut conn, RequestId::new_random()).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn concurrent_approvals_produce_exactly_one(pool: PgPool) {
    let id = submit(&pool).await;
    let p = plan(id);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let won = requests::approve(&mut tx, id, T0, &p, false).await.unwrap();
            tx.commit().await.unwrap();
            won
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let mut conn = pool.acquire().await.unwrap();
    // A later deny or cancel finds it no longer pending.
    assert!(!requests::deny(&mut conn, id, T0).await.unwrap());
    assert!(!requests::cancel(&mut conn, id, T0).await.unwrap());
    assert_eq!(
        requests::get(&mut conn, id).await.unwrap().status,
        RequestStatus::Approved
    );
}

fn decision<'a>(
    id: RequestId,
    extension: Option<i64>,
    actor: &'a Actor,
    decision: requests::Decision,
    comment: Option<&'a str>,
) -> NewDecision<'a> {
    NewDecision {
        request: id,
        extension,
        actor,
        groups: &[],
        decision,
        comment,
        at: T0,
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn one_decision_per_person(pool: PgPool) {
    let id = submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let bob = Actor::person("bob", "bob@example.com");
    requests::record_decision(
        &mut conn,
        NewDecision {
            groups: &["data-owners".to_owned()],
            ..decision(id, None, &bob, requests::Decision::Approve, Some("ok"))
        },
    )
    .await
    .unwrap();
    let again = requests::record_decision(
        &mut conn,
        decision(id, None, &bob, requests::Decision::Deny, None),
    )
    .await;
    match again {
        Err(StoreError::Conflict { constraint }) => {
            assert_eq!(constraint, "request_decision_once_per_actor")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let decisions = requests::list_decisions(&mut conn, id, None).await.unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].comment.as_deref(), Some("ok"));
    assert_eq!(decisions[0].groups, ["data-owners"]);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn policy_facts_round_trip(pool: PgPool) {
    let id = RequestId::new_random();
    let mut conn = pool.acquire().await.unwrap();
    requests::insert(
        &mut conn,
        NewRequest {
            id,
            requester: &alice(),
            requester_groups: &["analysts".to_owned(), "oncall".to_owned()],
            catalog_columns: &[
                vec!["order_id".to_owned(), "amount".to_owned()],
                vec![
                    "customer_id".to_owned(),
                    "email".to_owned(),
                    "phone".to_owned(),
                ],
            ],
            approver_groups: &["sales-owners".to_owned()],
            break_glass: true,
            agent: Some("notebook-agent"),
            resources: &resources(),
            duration: Duration::hours(1),
            reason: "incident 42: orders are missing",
            at: T0,
        },
    )
    .await
    .unwrap();
    let r = requests::get(&mut conn, id).await.unwrap();
    assert_eq!(r.requester_groups, ["analysts", "oncall"]);
    assert_eq!(r.catalog_columns[1], ["customer_id", "email", "phone"]);
    assert!(r.break_glass && r.needs_review());
    assert_eq!(
        r.agent.as_deref(),
        Some("notebook-agent"),
        "the agent's token is kept"
    );
    assert_eq!(r.scan_cutoff_bytes, None);

    assert!(
        requests::approve(&mut conn, id, T0, &plan(id), false)
            .await
            .unwrap()
    );
    let r = requests::get(&mut conn, id).await.unwrap();
    assert_eq!(r.scan_cutoff_bytes, Some(10_000_000_000));
    assert_eq!(r.scan_budget_bytes, Some(1_000_000_000_000));
    assert!(!r.auto_approved);

    let carol = Actor::person("carol", "carol@example.com");
    assert!(
        requests::review(&mut conn, id, &carol, Some("fine"), T0)
            .await
            .unwrap()
    );
    assert!(
        !requests::review(&mut conn, id, &carol, None, T0)
            .await
            .unwrap(),
        "once"
    );
    let r = requests::get(&mut conn, id).await.unwrap();
    assert!(!r.needs_review());
    assert_eq!(r.review.unwrap().by_email, "carol@example.com");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn extensions_move_the_expiry_of_active_grants_only(pool: PgPool) {
    let id = submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let owners = ["data-owners".to_owned()];
    requests::set_approver_groups(&mut conn, id, &owners)
        .await
        .unwrap();
    let first = extensions::insert(&mut conn, id, Duration::hours(1), "need another hour", T0)
        .await
        .unwrap()
        .expect("first extension");
    let second = extensions::insert(&mut conn, id, Duration::hours(2), "and two more hours", T0)
        .await
        .unwrap();
    assert_eq!(second, None, "one pending extension at a time");

    // The same person decides the request and its extension, each once.
    let bob = Actor::person("bob", "bob@example.com");
    requests::record_decision(
        &mut conn,
        decision(id, None, &bob, requests::Decision::Approve, None),
    )
    .await
    .unwrap();
    requests::record_decision(
        &mut conn,
        decision(id, Some(first), &bob, requests::Decision::Approve, None),
    )
    .await
    .unwrap();
    assert_eq!(
        requests::list_decisions(&mut conn, id, None)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        requests::list_decisions(&mut conn, id, Some(first))
            .await
            .unwrap()
            .len(),
        1
    );

    // Not active yet: nothing moves and the extension stays pending.
    let ext = extensions::list(&mut conn, id).await.unwrap().remove(0);
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(
        extensions::approve(&mut tx, id, ext.id, ext.extra, false, T0)
            .await
            .unwrap(),
        None
    );
    tx.rollback().await.unwrap();

    assert!(
        requests::approve(&mut conn, id, T0, &plan(id), false)
            .await
            .unwrap()
    );
    let expires = T0 + Duration::hours(1);
    assert!(
        requests::activate(&mut conn, id, T0, expires)
            .await
            .unwrap()
    );
    let mut tx = pool.begin().await.unwrap();
    let moved = extensions::approve(&mut tx, id, ext.id, ext.extra, false, T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(moved, Some(expires + Duration::hours(1)));
    let r = requests::get(&mut conn, id).await.unwrap();
    assert_eq!(r.expires_at, Some(expires + Duration::hours(1)));
    assert_eq!(r.granted_total(), Duration::hours(2));
    assert_eq!(
        extensions::list(&mut conn, id).await.unwrap()[0].status,
        ExtensionStatus::Approved
    );
    // Approving again changes nothing.
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(
        extensions::approve(&mut tx, id, ext.id, ext.extra, false, T0)
            .await
            .unwrap(),
        None
    );
    tx.rollback().await.unwrap();

    let next = extensions::insert(
        &mut conn,
        id,
        Duration::minutes(30),
        "half an hour more",
        T0,
    )
    .await
    .unwrap()
    .expect("a new one once the first is decided");
    assert_eq!(
        extensions::list_pending_for_approver(&mut conn, &owners, "bob", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    for (groups, approver) in [(&["others".to_owned()][..], "bob"), (&owners[..], "alice")] {
        assert!(
            extensions::list_pending_for_approver(&mut conn, groups, approver, 10)
                .await
                .unwrap()
                .is_empty(),
            "not queued for {approver} in {groups:?}"
        );
    }
    assert!(extensions::deny(&mut conn, next, T0).await.unwrap());
    assert!(!extensions::deny(&mut conn, next, T0).await.unwrap());
    assert!(
        extensions::list_pending_for_approver(&mut conn, &owners, "bob", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn two_claimers_never_get_the_same_request(pool: PgPool) {
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = submit(&pool).await;
        let mut conn = pool.acquire().await.unwrap();
        assert!(
            requests::approve(&mut conn, id, T0, &plan(id), false)
                .await
                .unwrap()
        );
        ids.push(id);
    }
    // Two replicas claim in parallel, each in its own transaction, several rounds.
    let mut handles = Vec::new();
    for owner in ["replica-a", "replica-b"] {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..10 {
                let mut tx = pool.begin().await.unwrap();
                let got = work::claim_due(&mut tx, Lane::Rest, T0, owner, Duration::minutes(5), 3)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                mine.extend(got.into_iter().map(|(id, _)| id));
            }
            mine
        }));
    }
    let a = handles.remove(0).await.unwrap();
    let b = handles.remove(0).await.unwrap();
    let mut all: Vec<RequestId> = a.iter().chain(&b).copied().collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a request was claimed twice");
    ids.sort();
    assert_eq!(all, ids, "every due request is claimed");
    // Leased: nobody gets them again until the lease runs out...
    let mut conn = pool.acquire().await.unwrap();
    let again = work::claim_due(
        &mut conn,
        Lane::Rest,
        T0 + Duration::minutes(4),
        "c",
        Duration::minutes(5),
        50,
    )
    .await
    .unwrap();
    assert!(again.is_empty());
    // ...then they are claimable again (a worker died).
    let later = work::claim_due(
        &mut conn,
        Lane::Rest,
        T0 + Duration::minutes(6),
        "c",
        Duration::minutes(5),
        50,
    )
    .await
    .unwrap();
    assert_eq!(later.len(), 20);
}

/// No slower work is claimed while a grant's sessions wait to be denied: under a burst of
/// expiries every deny comes first. A deny already in hand holds nothing up.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_rest_lane_waits_while_any_deny_is_unclaimed(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let provisioning = submit(&pool).await;
    assert!(
        requests::approve(&mut conn, provisioning, T0, &plan(provisioning), false)
            .await
            .unwrap()
    );
    let expired = submit(&pool).await;
    assert!(
        requests::approve(&mut conn, expired, T0, &plan(expired), false)
            .await
            .unwrap()
    );
    assert!(
        requests::activate(&mut conn, expired, T0, T0 + Duration::minutes(1))
            .await
            .unwrap()
    );
    let later = T0 + Duration::minutes(2);
    let lease = Duration::minutes(5);
    let blocked = work::claim_due(&mut conn, Lane::Rest, later, "w", lease, 10)
        .await
        .unwrap();
    assert!(blocked.is_empty(), "{blocked:?}");
    let deny = work::claim_due(&mut conn, Lane::Deny, later, "w", lease, 10)
        .await
        .unwrap();
    assert_eq!(deny, vec![(expired, RequestStatus::Active)]);
    let rest = work::claim_due(&mut conn, Lane::Rest, later, "w", lease, 10)
        .await
        .unwrap();
    assert_eq!(rest, vec![(provisioning, RequestStatus::Approved)]);
    assert_eq!(
        work::next_due_at(&mut conn, Lane::Deny, later)
            .await
            .unwrap(),
        Some(later + lease),
        "the deny in hand is due again only if its lease runs out"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn active_grants_are_due_at_expiry_and_not_before(pool: PgPool) {
    let id = submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        requests::approve(&mut conn, id, T0, &plan(id), false)
            .await
            .unwrap()
    );
    let expires = T0 + Duration::hours(1);
    assert!(
        requests::activate(&mut conn, id, T0, expires)
            .await
            .unwrap()
    );
    assert_eq!(
        work::next_due_at(&mut conn, Lane::Deny, T0).await.unwrap(),
        Some(expires)
    );
    let early = work::claim_due(
        &mut conn,
        Lane::Deny,
        expires - Duration::seconds(1),
        "w",
        Duration::minutes(5),
        10,
    )
    .await
    .unwrap();
    assert!(early.is_empty());
    let due = work::claim_due(
        &mut conn,
        Lane::Deny,
        expires,
        "w",
        Duration::minutes(5),
        10,
    )
    .await
    .unwrap();
    assert_eq!(due, vec![(id, RequestStatus::Active)]);

    // Claimed at expiry; an extension approved before the worker ends the grant keeps it.
    let ext = extensions::insert(&mut conn, id, Duration::hours(1), "one more hour", T0)
        .await
        .unwrap()
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let moved = extensions::approve(&mut tx, id, ext, Duration::hours(1), false, expires)
        .await
        .unwrap();
    // At the very moment of expiry the grant is already due: the extension comes too late,
    // and the caller rolls back.
    assert_eq!(moved, None);
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let moved = extensions::approve(
        &mut tx,
        id,
        ext,
        Duration::hours(1),
        false,
        expires - Duration::seconds(1),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(moved, Some(expires + Duration::hours(1)));
    assert!(
        !requests::begin_expiry(&mut conn, id, "time ran out", "deny_sessions", expires)
            .await
            .unwrap(),
        "extended: not due"
    );
    assert!(
        requests::begin_expiry(
            &mut conn,
            id,
            "time ran out",
            "deny_sessions",
            expires + Duration::hours(1)
        )
        .await
        .unwrap()
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn revoking_stops_new_tokens_and_finishes_once(pool: PgPool) {
    let id = submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        requests::approve(&mut conn, id, T0, &plan(id), false)
            .await
            .unwrap()
    );
    assert!(
        requests::activate(&mut conn, id, T0, T0 + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        requests::set_credentials_token(&mut conn, id, &[1; 32], T0)
            .await
            .unwrap()
    );
    let view = requests::credentials_view(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.token_hash.as_deref(), Some(&[1u8; 32][..]));
    // Wrong expected state: nothing changes.
    assert!(
        !requests::begin_revoke(
            &mut conn,
            id,
            RequestStatus::Approved,
            EndState::Revoked,
            "x",
            "deny_sessions",
            T0
        )
        .await
        .unwrap()
    );
    assert!(
        requests::begin_revoke(
            &mut conn,
            id,
            RequestStatus::Active,
            EndState::Revoked,
            "done early",
            "deny_sessions",
            T0
        )
        .await
        .unwrap()
    );
    let view = requests::credentials_view(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, RequestStatus::Revoking);
    assert!(
        view.token_hash.is_some(),
        "the hash stays: its holder is told the grant ended, not that the token is wrong"
    );
    assert!(
        !requests::set_credentials_token(&mut conn, id, &[2; 32], T0)
            .await
            .unwrap()
    );
    assert_eq!(
        requests::finish(&mut conn, id, T0).await.unwrap(),
        Some(EndState::Revoked)
    );
    assert_eq!(requests::finish(&mut conn, id, T0).await.unwrap(), None);
    let r = requests::get(&mut conn, id).await.unwrap();
    assert_eq!(r.status, RequestStatus::Revoked);
    assert_eq!(r.end_reason.as_deref(), Some("done early"));
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn work_item_carries_the_stored_grant_plan(pool: PgPool) {
    let id = submit(&pool).await;
    let p = plan(id);
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        work::load(&mut conn, id).await.unwrap().is_none(),
        "no plan while pending"
    );
    assert!(
        requests::approve(&mut conn, id, T0, &p, false)
            .await
            .unwrap()
    );
    let item = work::load(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(item.lf_grants, p.lf_grants);
    assert_eq!(item.step.as_deref(), Some("create_role"));
    assert_eq!(item.resources, resources());
    // Steps are recorded only by the worker holding the lease.
    let claimed = work::claim_due(&mut conn, Lane::Rest, T0, "w1", Duration::minutes(5), 5)
        .await
        .unwrap();
    assert_eq!(claimed, vec![(id, RequestStatus::Approved)]);
    let later = T0 + Duration::minutes(1);
    assert!(
        work::set_step(
            &mut conn,
            id,
            RequestStatus::Approved,
            "create_workgroup",
            "w1",
            later
        )
        .await
        .unwrap()
    );
    assert!(
        !work::set_step(&mut conn, id, RequestStatus::Approved, "x", "w2", later)
            .await
            .unwrap()
    );
    assert!(
        !work::set_step(&mut conn, id, RequestStatus::Active, "x", "w1", later)
            .await
            .unwrap()
    );
    assert_eq!(
        work::record_failure(&mut conn, id, RequestStatus::Approved, "w2", "boom", T0)
            .await
            .unwrap(),
        None,
        "not w2's lease"
    );
    let n = work::record_failure(
        &mut conn,
        id,
        RequestStatus::Approved,
        "w1",
        "boom",
        T0 + Duration::seconds(30),
    )
    .await
    .unwrap();
    assert_eq!(n, Some(1));
    assert_eq!(
        work::next_due_at(&mut conn, Lane::Rest, T0).await.unwrap(),
        Some(T0 + Duration::seconds(30))
    );
    let none = work::claim_due(&mut conn, Lane::Rest, T0, "w", Duration::minutes(1), 5)
        .await
        .unwrap();
    assert!(none.is_empty(), "not before the retry time");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn audit_is_append_only(pool: PgPool) {
    let id = submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let actor = Actor::person("alice", "alice@example.com");
    audit::append(
        &mut conn,
        NewAuditEvent {
            at: T0,
            request: Some(id),
            actor: Some(&actor),
            action: AuditAction::RequestSubmitted,
            detail: serde_json::json!({"tables": 2}),
        },
    )
    .await
    .unwrap();
    let events = audit::list_for_request(&mut conn, id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_ref(), Some(&actor));
    assert_eq!(events[0].detail["tables"], 2);
    for sql in [
        "update audit_event set action = 'x'",
        "delete from audit_event",
        // `cascade`: past the foreign keys of the tables that refer to it (the outbox's).
        "truncate audit_event cascade",
    ] {
        let err = sqlx::query(sql).execute(&mut *conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        audit::list_for_request(&mut conn, id).await.unwrap().len(),
        1
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn constraints_refuse_inconsistent_rows(pool: PgPool) {
    submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    // An active row without an expiry, or approved without a grant plan, cannot exist.
    for sql in [
        "update access_request set status = 'active'",
        "update access_request set status = 'approved'",
        "update access_request set status = 'bogus'",
    ] {
        let err = sqlx::query(sql).execute(&mut *conn).await.unwrap_err();
        assert!(
            matches!(StoreError::from(err), StoreError::Conflict { .. }),
            "{sql} was accepted"
        );
    }
}

async fn append_some(pool: &PgPool, n: usize) -> RequestId {
    let id = submit(pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let actor = Actor::person("alice", "alice@example.com");
    for i in 0..n {
        audit::append(
            &mut conn,
            NewAuditEvent {
                at: T0 + Duration::seconds(i64::try_from(i).unwrap()),
                request: Some(id),
                actor: Some(&actor),
                action: AuditAction::RequestSubmitted,
                detail: serde_json::json!({"n": i}),
            },
        )
        .await
        .unwrap();
    }
    id
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn audit_chain_verifies_when_untouched(pool: PgPool) {
    append_some(&pool, 5).await;
    let mut conn = pool.acquire().await.unwrap();
    let report = audit::verify_chain(&mut conn).await.unwrap();
    assert_eq!(report.events, 5);
    assert_eq!(report.first_broken, None);
    assert_eq!(report.head.unwrap().len(), 32);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn concurrent_appends_keep_one_chain(pool: PgPool) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move { append_some(&pool, 5).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let report = audit::verify_chain(&mut conn).await.unwrap();
    assert_eq!(report.events, 40);
    assert_eq!(report.first_broken, None);
}

/// Tampering needs the append-only trigger out of the way, as a database owner could do.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("alter table audit_event disable trigger audit_event_no_update")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    sqlx::query("alter table audit_event enable trigger audit_event_no_update")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn tampering_with_any_row_is_detected_at_that_row(pool: PgPool) {
    append_some(&pool, 6).await;
    let ids: Vec<i64> = sqlx::query_scalar("select event_id from audit_event order by event_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    // (tampering, the row reported, the reason)
    let cases = [
        (
            format!(
                "update audit_event set detail = '{{\"n\": 99}}' where event_id = {}",
                ids[2]
            ),
            ids[2],
            "contents",
        ),
        (
            format!(
                "update audit_event set actor_email = 'mallory@example.com' where event_id = {}",
                ids[0]
            ),
            ids[0],
            "contents",
        ),
        (
            format!(
                "update audit_event set occurred_at = occurred_at + interval '1 second' where event_id = {}",
                ids[4]
            ),
            ids[4],
            "contents",
        ),
        (
            format!("delete from audit_event where event_id = {}", ids[3]),
            ids[4],
            "does not follow",
        ),
    ];
    for (sql, broken_at, reason) in cases {
        // A fresh copy of the chain for each case: rebuild by reverting through a savepoint.
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("alter table audit_event disable trigger audit_event_no_update")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
        let report = audit::verify_chain(&mut tx).await.unwrap();
        let broken = report
            .first_broken
            .unwrap_or_else(|| panic!("not detected: {sql}"));
        assert_eq!(broken.event_id, broken_at, "{sql}");
        assert!(broken.reason.contains(reason), "{sql}: {}", broken.reason);
        tx.rollback().await.unwrap();
    }
    // Rewriting a row's hash to match its new contents still breaks the next row's link.
    tamper(
        &pool,
        &format!(
            "update audit_event e set detail = '{{\"n\": 7}}', hash = audit_event_digest(e.prev_hash, e) where event_id = {}",
            ids[1]
        ),
    )
    .await;
    let mut conn = pool.acquire().await.unwrap();
    let report = audit::verify_chain(&mut conn).await.unwrap();
    let broken = report.first_broken.unwrap();
    assert!(
        broken.event_id == ids[1] || broken.event_id == ids[2],
        "{broken:?}"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn sessions_are_kept_until_they_expire(pool: PgPool) {
    use lakegate_store::sessions;
    let mut conn = pool.acquire().await.unwrap();
    let key = [7u8; 32];
    let data = serde_json::json!({"user": {"email": "alice@example.com"}});
    assert!(
        sessions::insert_new(&mut conn, &key, &data, T0 + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        !sessions::insert_new(&mut conn, &key, &data, T0)
            .await
            .unwrap(),
        "a taken key is reported, not overwritten"
    );
    let (loaded, expires) = sessions::load(&mut conn, &key, T0).await.unwrap().unwrap();
    assert_eq!(loaded, data);
    assert_eq!(expires, T0 + Duration::hours(1));
    assert_eq!(
        sessions::load(&mut conn, &key, T0 + Duration::hours(1))
            .await
            .unwrap(),
        None
    );

    sessions::save(
        &mut conn,
        &key,
        &serde_json::json!({}),
        T0 + Duration::hours(2),
    )
    .await
    .unwrap();
    assert_eq!(
        sessions::delete_expired(&mut conn, T0 + Duration::minutes(90))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        sessions::delete_expired(&mut conn, T0 + Duration::hours(2))
            .await
            .unwrap(),
        1
    );
    sessions::delete(&mut conn, &key).await.unwrap();
    // Saving a session that was deleted (signed out) does not bring it back.
    sessions::save(&mut conn, &key, &data, T0 + Duration::hours(3))
        .await
        .unwrap();
    assert!(
        sessions::load(&mut conn, &key, T0).await.unwrap().is_none(),
        "a deleted session stays deleted"
    );
    // Keys are hashes: nothing else fits.
    let err = sessions::insert_new(&mut conn, b"raw-session-id", &data, T0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, lakegate_store::StoreError::Conflict { .. }),
        "{err:?}"
    );
}

fn execution(id: &str, minute: u8, state: QueryState) -> QueryExecution {
    QueryExecution {
        id: id.into(),
        sql: format!("SELECT 1 -- {id}"),
        database: None,
        state,
        state_change_reason: None,
        bytes_scanned: 0,
        engine_ms: 0,
        submitted_at: Some(T0 + Duration::minutes(i64::from(minute))),
        completed_at: None,
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn console_queries_are_recorded_once_and_listed_newest_first(pool: PgPool) {
    let id = submit(&pool).await;
    let at = datetime!(2026-05-01 10:00 UTC);
    let mut conn = pool.acquire().await.unwrap();

    // Started in the console: new the first time, not when the same query is sent again.
    let q1 = execution("q1", 1, QueryState::Queued);
    assert!(
        usage::record_console_start(&mut conn, id, &q1, at)
            .await
            .unwrap()
    );
    assert!(
        !usage::record_console_start(&mut conn, id, &q1, at)
            .await
            .unwrap()
    );
    // Seen by the monitor first, then claimed by the console: the console's from then on.
    let q2 = execution("q2", 2, QueryState::Running);
    usage::insert(&mut conn, id, &q2, kept(&q2.sql), 0, 0, at)
        .await
        .unwrap();
    assert!(
        !usage::find(&mut conn, id, "q2")
            .await
            .unwrap()
            .unwrap()
            .from_console
    );
    assert!(
        usage::record_console_start(&mut conn, id, &q2, at)
            .await
            .unwrap()
    );
    let stored = usage::find(&mut conn, id, "q2").await.unwrap().unwrap();
    assert!(stored.from_console);
    assert_eq!(
        stored.execution.state,
        QueryState::Running,
        "the monitor's state stays"
    );
    // The monitor updates a console query without taking it back.
    let done = QueryExecution {
        state: QueryState::Succeeded,
        bytes_scanned: 5,
        ..q1.clone()
    };
    usage::update(&mut conn, id, &done, 10_000_000, 50, at)
        .await
        .unwrap();
    let stored = usage::find(&mut conn, id, "q1").await.unwrap().unwrap();
    assert!(stored.from_console);
    assert_eq!(stored.execution.state, QueryState::Succeeded);

    let q3 = execution("q3", 3, QueryState::Succeeded);
    usage::insert(&mut conn, id, &q3, kept(&q3.sql), 0, 0, at)
        .await
        .unwrap();
    let ids = |qs: Vec<usage::StoredQuery>| -> Vec<String> {
        qs.into_iter().map(|q| q.execution.id).collect()
    };
    assert_eq!(
        ids(usage::list(&mut conn, id).await.unwrap()),
        ["q1", "q2", "q3"]
    );
    assert_eq!(
        ids(usage::recent(&mut conn, id, 2).await.unwrap()),
        ["q3", "q2"]
    );
    assert!(usage::find(&mut conn, id, "q9").await.unwrap().is_none());
}

/// The whole of `sql` as kept SQL (the monitor cuts long SQL first; these tests' is short).
fn kept(sql: &str) -> usage::KeptSql<'_> {
    usage::KeptSql {
        text: sql,
        bytes: i64::try_from(sql.len()).unwrap(),
        sha256: "0000000000000000000000000000000000000000000000000000000000000000",
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_monitor_sees_what_it_knows_without_sql_and_holds_a_grant_alone(pool: PgPool) {
    let id = submit(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let at = OffsetDateTime::now_utc();
    let mut q = execution("q1", 1, QueryState::Running);
    q.submitted_at = Some(at);
    let sha = "ab".repeat(32);
    let sql = usage::KeptSql {
        text: "SELECT 1",
        bytes: 262_144,
        sha256: &sha,
    };
    assert_eq!(
        usage::insert(&mut conn, id, &q, sql, 0, 0, at)
            .await
            .unwrap(),
        usage::Seen::New
    );
    let (bytes, hash): (i32, String) =
        sqlx::query_as("select sql_bytes, sql_sha256 from athena_query where request_id = $1")
            .bind(id.0)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!((bytes, hash.as_str()), (262_144, sha.as_str()));
    // Unchanged: nothing written; moved: written, and its SQL stays as it was.
    assert_eq!(
        usage::update(&mut conn, id, &q, 0, 0, at).await.unwrap(),
        usage::Seen::Unchanged
    );
    let done = QueryExecution {
        state: QueryState::Failed,
        sql: "SELECT 'not this'".into(),
        ..q.clone()
    };
    assert_eq!(
        usage::update(&mut conn, id, &done, 0, 0, at).await.unwrap(),
        usage::Seen::Updated
    );
    let stored = usage::find(&mut conn, id, "q1").await.unwrap().unwrap();
    assert_eq!(stored.execution.sql, "SELECT 1");
    let known = usage::known(&mut conn, id).await.unwrap();
    assert_eq!(known["q1"].0, QueryState::Failed);
    assert_eq!(
        usage::submitted_in_last(&mut conn, id, Duration::minutes(1))
            .await
            .unwrap(),
        1
    );

    // One replica at a time: the hold lasts as long as the holder's transaction.
    let mut first = pool.begin().await.unwrap();
    let mut second = pool.begin().await.unwrap();
    assert!(usage::try_hold_for_monitor(&mut first, id).await.unwrap());
    assert!(!usage::try_hold_for_monitor(&mut second, id).await.unwrap());
    first.commit().await.unwrap();
    assert!(usage::try_hold_for_monitor(&mut second, id).await.unwrap());
}
