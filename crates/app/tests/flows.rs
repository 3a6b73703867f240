//! The verbs end to end against a real PostgreSQL and a recording FakeCloud, with a clock that
//! only moves when told to.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::Arc;

use lakegate_app::credentials::{self, token_from_header};
use lakegate_app::requests::{self, SubmitInput};
use lakegate_app::worker::work_once;
use lakegate_app::{AppError, Services, Settings};
use lakegate_domain::audit::AuditAction;
use lakegate_domain::ports::{Clock as _, CloudError};
use lakegate_domain::{EndState, Principal, RequestId, RequestStatus};
use lakegate_store::requests::Decision;
use lakegate_store::{audit, requests as store_requests};
use lakegate_testkit::{FakeCloud, FixedClock};
use sqlx::PgPool;
use time::Duration;
use time::macros::datetime;

struct Harness {
    svc: Services,
    cloud: Arc<FakeCloud>,
    clock: Arc<FixedClock>,
}

fn harness(pool: PgPool) -> Harness {
    let clock = Arc::new(FixedClock::at(datetime!(2026-05-01 09:00 UTC)));
    let cloud = Arc::new(FakeCloud::with_sample_catalog().with_clock(clock.clone()));
    let settings = Settings::for_tests().with_results("s3://results/lakegate/");
    Harness {
        svc: Services::new(pool, cloud.clone(), clock.clone(), settings),
        cloud,
        clock,
    }
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

fn alice() -> Principal {
    person("alice", &["analysts"])
}

fn bob() -> Principal {
    person("bob", &["data-owners"])
}

const GOOD: SubmitInput<'static> = SubmitInput {
    resources: "sales.orders\nsales.customers: customer_id, email",
    duration: "1h",
    reason: "reconcile the April revenue report",
    break_glass: false,
};

impl Harness {
    async fn submit(&self) -> RequestId {
        requests::submit(&self.svc, &alice(), GOOD).await.unwrap().0
    }

    async fn status(&self, id: RequestId) -> RequestStatus {
        let mut conn = self.svc.db.acquire().await.unwrap();
        store_requests::get(&mut conn, id).await.unwrap().status
    }

    async fn active(&self) -> RequestId {
        let id = self.submit().await;
        requests::decide(&self.svc, &bob(), id, Decision::Approve, None)
            .await
            .unwrap();
        let report = work_once(&self.svc, "test").await.unwrap();
        assert_eq!(report.activated, [id]);
        id
    }

    async fn audit_count(&self, id: RequestId, action: AuditAction) -> i64 {
        let mut conn = self.svc.db.acquire().await.unwrap();
        audit::count_for_request(&mut conn, id, action)
            .await
            .unwrap()
    }

    async fn request_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from access_request")
            .fetch_one(&self.svc.db)
            .await
            .unwrap()
    }

    fn leftovers(&self, id: RequestId) -> Vec<String> {
        let name = format!("lakegate-{id}");
        self.cloud.leftovers(&name, &name)
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn bad_input_is_refused_with_a_clear_message_and_writes_nothing(pool: PgPool) {
    let h = harness(pool);
    let cases: &[(&str, &str, &str, &str)] = &[
        ("sales.orders", "1h", "short", "at least 10 characters"),
        ("", "1h", "a valid reason here", "at least one table"),
        (
            "nope.orders",
            "1h",
            "a valid reason here",
            "`nope.orders` is not found or not requestable",
        ),
        (
            "sales.nope",
            "1h",
            "a valid reason here",
            "`sales.nope` is not found or not requestable",
        ),
        (
            "sales.customers: email, ssn",
            "1h",
            "a valid reason here",
            "sales.customers has no column `ssn`",
        ),
        (
            "sales.orders",
            "forever",
            "a valid reason here",
            "is not a duration",
        ),
        (
            "sales.orders",
            "5m",
            "a valid reason here",
            "between 15m and 8h",
        ),
        (
            "sales.orders",
            "9h",
            "a valid reason here",
            "between 15m and 8h",
        ),
        (
            "sales.orders x",
            "1h",
            "a valid reason here",
            "not a valid table name",
        ),
    ];
    for (resources, duration, reason, expected) in cases {
        let err = requests::submit(
            &h.svc,
            &alice(),
            SubmitInput {
                resources,
                duration,
                reason,
                break_glass: false,
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, AppError::Invalid(_)),
            "{resources:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(expected),
            "{resources:?}: got {err}"
        );
    }
    assert_eq!(h.request_count().await, 0);
    let audit_rows: i64 = sqlx::query_scalar("select count(*) from audit_event")
        .fetch_one(&h.svc.db)
        .await
        .unwrap();
    assert_eq!(audit_rows, 0);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn catalog_outage_is_reported_as_unavailable(pool: PgPool) {
    let h = harness(pool);
    h.cloud.fail_next(
        "describe_table",
        CloudError::Transient("glue is throttling".into()),
    );
    let err = requests::submit(&h.svc, &alice(), GOOD).await.unwrap_err();
    assert!(matches!(err, AppError::Unavailable(_)), "{err:?}");
    assert_eq!(h.request_count().await, 0);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn approver_cannot_approve_own_request_and_others_cannot_decide(pool: PgPool) {
    let h = harness(pool);
    let boss = person("boss", &["data-owners"]);
    let (own, _) = requests::submit(&h.svc, &boss, GOOD).await.unwrap();
    let err = requests::decide(&h.svc, &boss, own, Decision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "you cannot approve or deny your own request"
    );

    let id = h.submit().await;
    let carol = person("carol", &["analysts"]);
    let err = requests::decide(&h.svc, &carol, id, Decision::Approve, None)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Forbidden(_)), "{err:?}");
    assert_eq!(h.status(id).await, RequestStatus::Pending);
    assert_eq!(h.status(own).await, RequestStatus::Pending);
    assert_eq!(h.audit_count(id, AuditAction::RequestApproved).await, 0);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn approval_provisions_exactly_the_request(pool: PgPool) {
    let h = harness(pool);
    let id = h.submit().await;
    requests::decide(&h.svc, &bob(), id, Decision::Approve, Some("ok for April"))
        .await
        .unwrap();
    assert_eq!(h.status(id).await, RequestStatus::Approved);
    // A second decision finds it decided.
    let err = requests::decide(
        &h.svc,
        &person("dora", &["data-owners"]),
        id,
        Decision::Deny,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "cannot deny a request that is approved");

    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.activated, [id]);
    assert_eq!(h.status(id).await, RequestStatus::Active);

    let s = h.cloud.state();
    let role = &s.roles[&format!("lakegate-{id}")];
    assert_eq!(role.path, "/lakegate/");
    assert_eq!(
        role.permissions_boundary_arn,
        "arn:aws:iam::123456789012:policy/lakegate-boundary"
    );
    assert!(s.role_policies[&role.name].contains_key("lakegate-access"));
    let wg = &s.workgroups[&format!("lakegate-{id}")];
    assert_eq!(wg.bytes_scanned_cutoff, 10_000_000_000);
    assert_eq!(wg.output_location, format!("s3://results/lakegate/{id}/"));
    let ids: Vec<&str> = s.grants.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, ["db-default", "db-sales", "table-0", "table-1"]);
    assert_eq!(
        s.calls[..7],
        [
            "describe_table",
            "describe_table",
            // At approval, the all-columns table again: its grant is the explicit list.
            "describe_table",
            // Side by side: the role and the workgroup, then the role's policy and the grants.
            "create_role",
            "create_workgroup",
            "put_role_policy",
            "grant_lake_formation"
        ]
    );
    assert_eq!(
        s.calls[7], "assume_role",
        "propagation gate before activation"
    );

    let detail = requests::view(&h.svc, &alice(), id).await.unwrap();
    assert_eq!(
        detail.request.expires_at,
        Some(h.clock_now() + Duration::hours(1))
    );
    let actions: Vec<AuditAction> = detail.timeline.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::RequestSubmitted,
            AuditAction::RequestApproved,
            AuditAction::GrantActivated
        ]
    );
    assert_eq!(detail.decisions[0].comment.as_deref(), Some("ok for April"));
}

impl Harness {
    fn clock_now(&self) -> time::OffsetDateTime {
        use lakegate_domain::ports::Clock;
        self.clock.now()
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn credentials_are_minted_cached_and_bounded_by_the_grant(pool: PgPool) {
    let h = harness(pool);
    let id = h.active().await;
    // Only the requester gets a token.
    assert!(credentials::issue_token(&h.svc, &bob(), id).await.is_err());
    let issued = credentials::issue_token(&h.svc, &alice(), id)
        .await
        .unwrap();
    assert!(!format!("{issued:?}").contains(&issued.token));

    let c1 = credentials::mint(
        &h.svc,
        id,
        token_from_header(&format!("Bearer {}", issued.token)),
    )
    .await
    .unwrap();
    let expires = h.clock_now() + Duration::hours(1);
    assert!(c1.expiration <= expires);
    // From cache.
    let c2 = credentials::mint(&h.svc, id, &issued.token).await.unwrap();
    assert_eq!(c1, c2);
    let sessions = h.cloud.state().sessions;
    assert_eq!(sessions.len(), 2, "the propagation gate and one mint");
    let s = &sessions[1];
    assert_eq!(s.duration_seconds, 3600);
    assert!(s.session_policy.contains("aws:CurrentTime"));
    assert_eq!(s.source_identity, "alice@example.com");

    // 45 minutes later the cached session still covers the rest of the grant: reused.
    h.clock.advance(Duration::minutes(45));
    let c3 = credentials::mint(&h.svc, id, &issued.token).await.unwrap();
    assert_eq!(c3, c1);
    assert_eq!(c3.expiration, expires);

    // Wrong or missing token.
    assert!(matches!(
        credentials::mint(&h.svc, id, "lgt_wrong").await,
        Err(AppError::Unauthorized(_))
    ));
    assert!(matches!(
        credentials::mint(&h.svc, id, "").await,
        Err(AppError::Unauthorized(_))
    ));
    assert!(matches!(
        credentials::mint(&h.svc, RequestId::new_random(), &issued.token).await,
        Err(AppError::NotFound)
    ));

    // A new token replaces the old one.
    let again = credentials::issue_token(&h.svc, &alice(), id)
        .await
        .unwrap();
    assert!(matches!(
        credentials::mint(&h.svc, id, &issued.token).await,
        Err(AppError::Unauthorized(_))
    ));
    assert!(credentials::mint(&h.svc, id, &again.token).await.is_ok());
    assert_eq!(
        h.audit_count(id, AuditAction::CredentialsTokenIssued).await,
        2
    );
    // ... and the sessions handed out under the old one are denied from the new token on.
    let role = format!("lakegate-{id}");
    let policy = h.cloud.state().role_policies[&role]
        [lakegate_domain::naming::SUPERSEDED_POLICY_NAME]
        .clone();
    assert!(
        policy.contains(r#""aws:TokenIssueTime":"2026-05-01T09:45:00Z""#),
        "{policy}"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn long_grants_are_reminted_before_the_session_runs_out(pool: PgPool) {
    let h = harness(pool);
    let (id, _) = requests::submit(
        &h.svc,
        &alice(),
        SubmitInput {
            duration: "3h",
            ..GOOD
        },
    )
    .await
    .unwrap();
    requests::decide(&h.svc, &bob(), id, Decision::Approve, None)
        .await
        .unwrap();
    work_once(&h.svc, "test").await.unwrap();
    let token = credentials::issue_token(&h.svc, &alice(), id)
        .await
        .unwrap()
        .token;
    let grant_ends = h.clock_now() + Duration::hours(3);

    let first = credentials::mint(&h.svc, id, &token).await.unwrap();
    assert_eq!(
        first.expiration,
        h.clock_now() + Duration::hours(1),
        "sessions last at most 1 h"
    );
    h.clock.advance(Duration::minutes(39));
    assert_eq!(
        credentials::mint(&h.svc, id, &token).await.unwrap(),
        first,
        "21 min left: cached"
    );
    h.clock.advance(Duration::minutes(2));
    let second = credentials::mint(&h.svc, id, &token).await.unwrap();
    assert_ne!(
        second.access_key_id, first.access_key_id,
        "19 min left: re-minted"
    );
    assert_eq!(second.expiration, h.clock_now() + Duration::hours(1));

    // Near the end of the grant a session is clamped to STS's 15-minute minimum, but reported
    // (and, through the session policy, enforced) as ending with the grant.
    h.clock.set(grant_ends - Duration::minutes(5));
    let last = credentials::mint(&h.svc, id, &token).await.unwrap();
    assert_eq!(last.expiration, grant_ends);
    assert_eq!(
        h.cloud.state().sessions.last().unwrap().duration_seconds,
        900
    );
    assert_eq!(h.audit_count(id, AuditAction::CredentialsMinted).await, 3);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn expired_grant_is_revoked_once_and_nothing_is_left(pool: PgPool) {
    let h = harness(pool);
    let id = h.active().await;
    let token = credentials::issue_token(&h.svc, &alice(), id)
        .await
        .unwrap()
        .token;
    h.cloud.start_query(&format!("lakegate-{id}"), "q-1");

    h.clock.advance(Duration::minutes(59));
    assert!(
        work_once(&h.svc, "test").await.unwrap().is_empty(),
        "not due yet"
    );
    h.clock.advance(Duration::minutes(1));
    // The URL refuses at expiry even before the worker runs.
    assert!(matches!(
        credentials::mint(&h.svc, id, &token).await,
        Err(AppError::NotUsable(_))
    ));

    // The worker comes 1.5 s late: the grant's end event says so.
    h.clock.advance(Duration::milliseconds(1500));
    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.ended, [(id, EndState::Expired)]);
    assert_eq!(h.status(id).await, RequestStatus::Expired);
    assert_eq!(h.leftovers(id), Vec::<String>::new());
    let ended = {
        let mut conn = h.svc.db.acquire().await.unwrap();
        audit::latest_detail(&mut conn, id, AuditAction::GrantEnded)
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(ended["deny_lag_seconds"], serde_json::json!(1.5), "{ended}");
    assert_eq!(
        ended["sessions_denied_at"],
        serde_json::json!(h.clock.now().unix_timestamp()),
        "{ended}"
    );
    assert!(
        h.cloud.state().running_queries.is_empty(),
        "running query stopped"
    );
    let calls = h.cloud.state().calls;
    let teardown: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .skip_while(|c| *c != "deny_all_sessions")
        .collect();
    // Three steps, the calls within each side by side: what each step must wait for is done.
    let at = |call: &str| teardown.iter().position(|c| *c == call).unwrap();
    assert_eq!(teardown.len(), 7, "{teardown:?}");
    assert_eq!(teardown[0], "deny_all_sessions");
    let mut revoke_access = teardown[1..4].to_vec();
    revoke_access.sort_unstable();
    assert_eq!(
        revoke_access,
        // The last look at the grant's queries comes after they are stopped (none new:
        // nothing to describe).
        [
            "new_query_ids",
            "revoke_lake_formation",
            "stop_running_queries"
        ]
    );
    assert!(at("stop_running_queries") < at("new_query_ids"));
    let mut delete_resources = teardown[4..].to_vec();
    delete_resources.sort_unstable();
    assert_eq!(
        delete_resources,
        ["delete_results", "delete_role", "delete_workgroup"]
    );
    assert!(at("delete_workgroup") < at("delete_results"));
    // Exactly once.
    assert!(work_once(&h.svc, "test").await.unwrap().is_empty());
    assert_eq!(h.audit_count(id, AuditAction::GrantEnded).await, 1);
    assert_eq!(h.audit_count(id, AuditAction::RevokeRequested).await, 1);
    assert!(matches!(
        credentials::mint(&h.svc, id, &token).await,
        Err(AppError::NotUsable(_))
    ));
}

/// Under a burst of expiries (more grants than one claim takes), every grant's sessions are
/// denied before any grant's slower cleanup starts, and every grant is still torn down once.
#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_burst_of_expiries_denies_every_grants_sessions_before_any_cleanup(pool: PgPool) {
    const GRANTS: usize = 40;
    let h = harness(pool);
    let mut ids = Vec::new();
    for _ in 0..GRANTS {
        ids.push(h.active().await);
    }
    h.clock.advance(Duration::hours(1));
    let before = h.cloud.state().calls.len();
    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.ended.len(), GRANTS, "{report:?}");
    let calls: Vec<String> = h.cloud.state().calls[before..].to_vec();
    let denies: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "deny_all_sessions")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(denies.len(), GRANTS, "one deny per grant: {calls:?}");
    let first_cleanup = calls
        .iter()
        .position(|c| c == "stop_running_queries")
        .unwrap();
    assert!(
        denies.iter().all(|i| *i < first_cleanup),
        "a cleanup step ran before every session was denied: {calls:?}"
    );
    for id in ids {
        assert_eq!(h.status(id).await, RequestStatus::Expired);
        assert_eq!(h.leftovers(id), Vec::<String>::new());
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn early_revoke_stops_credentials_at_once_then_tears_down(pool: PgPool) {
    let h = harness(pool);
    let id = h.active().await;
    let token = credentials::issue_token(&h.svc, &alice(), id)
        .await
        .unwrap()
        .token;
    credentials::mint(&h.svc, id, &token).await.unwrap();

    let carol = person("carol", &["analysts"]);
    assert!(matches!(
        requests::revoke(&h.svc, &carol, id, None).await,
        Err(AppError::Forbidden(_))
    ));
    requests::revoke(&h.svc, &bob(), id, Some("incident 42"))
        .await
        .unwrap();
    assert_eq!(h.status(id).await, RequestStatus::Revoking);
    let err = credentials::mint(&h.svc, id, &token).await.unwrap_err();
    assert_eq!(err.to_string(), "access is revoking");

    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.ended, [(id, EndState::Revoked)]);
    assert_eq!(h.leftovers(id), Vec::<String>::new());
    let detail = requests::view(&h.svc, &alice(), id).await.unwrap();
    assert_eq!(
        detail.request.end_reason.as_deref(),
        Some("revoked by bob@example.com: incident 42")
    );
    // Revoking twice is a conflict, not a second teardown.
    let err = requests::revoke(&h.svc, &alice(), id, None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "cannot revoke a request that is revoked");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn every_transition_writes_its_audit_row(pool: PgPool) {
    let h = harness(pool);
    let id = h.active().await;
    credentials::issue_token(&h.svc, &alice(), id)
        .await
        .unwrap();
    requests::revoke(&h.svc, &alice(), id, None).await.unwrap();
    work_once(&h.svc, "test").await.unwrap();
    let denied = h.submit().await;
    requests::decide(&h.svc, &bob(), denied, Decision::Deny, Some("not needed"))
        .await
        .unwrap();
    let cancelled = h.submit().await;
    requests::cancel(&h.svc, &alice(), cancelled).await.unwrap();

    let mut conn = h.svc.db.acquire().await.unwrap();
    let names = |events: Vec<audit::AuditEvent>| {
        events
            .into_iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(audit::list_for_request(&mut conn, id).await.unwrap()),
        [
            "request.submitted",
            "request.approved",
            "grant.activated",
            "credentials.token_issued",
            "grant.revoke_started",
            "grant.ended"
        ]
    );
    assert_eq!(
        names(audit::list_for_request(&mut conn, denied).await.unwrap()),
        ["request.submitted", "request.denied"]
    );
    assert_eq!(
        names(audit::list_for_request(&mut conn, cancelled).await.unwrap()),
        ["request.submitted", "request.cancelled"]
    );
    // A refused action writes no audit row.
    drop(conn);
    assert!(requests::cancel(&h.svc, &alice(), cancelled).await.is_err());
    assert!(requests::cancel(&h.svc, &bob(), denied).await.is_err());
    assert_eq!(
        h.audit_count(cancelled, AuditAction::RequestCancelled)
            .await,
        1
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn transient_provisioning_failure_is_retried_and_resumes_at_the_failed_step(pool: PgPool) {
    let h = harness(pool);
    let id = h.submit().await;
    requests::decide(&h.svc, &bob(), id, Decision::Approve, None)
        .await
        .unwrap();
    h.cloud.fail_next(
        "grant_lake_formation",
        CloudError::Transient("throttled".into()),
    );
    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.retrying, [id]);
    assert_eq!(h.status(id).await, RequestStatus::Approved);
    assert!(
        work_once(&h.svc, "test").await.unwrap().is_empty(),
        "waits for the backoff"
    );

    h.clock.advance(Duration::seconds(3));
    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.activated, [id]);
    let calls = h.cloud.state().calls;
    for earlier in ["create_role", "create_workgroup"] {
        assert_eq!(
            calls.iter().filter(|c| *c == earlier).count(),
            1,
            "earlier steps not repeated: {earlier}"
        );
    }
    // The failed step again, both of its calls (each idempotent).
    for again in ["put_role_policy", "grant_lake_formation"] {
        assert_eq!(calls.iter().filter(|c| *c == again).count(), 2, "{again}");
    }
    assert_eq!(
        h.audit_count(id, AuditAction::ProvisioningStepFailed).await,
        1
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn permanent_provisioning_failure_cleans_up_and_fails(pool: PgPool) {
    let h = harness(pool);
    let id = h.submit().await;
    requests::decide(&h.svc, &bob(), id, Decision::Approve, None)
        .await
        .unwrap();
    h.cloud.fail_next(
        "grant_lake_formation",
        CloudError::Rejected("bad resource".into()),
    );
    work_once(&h.svc, "test").await.unwrap();
    assert_eq!(h.status(id).await, RequestStatus::Failed);
    assert_eq!(h.leftovers(id), Vec::<String>::new());
    let detail = requests::view(&h.svc, &alice(), id).await.unwrap();
    assert!(
        detail
            .request
            .end_reason
            .unwrap()
            .contains("grant_lake_formation")
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn revoke_while_provisioning_tears_down_what_was_created(pool: PgPool) {
    let h = harness(pool);
    let id = h.submit().await;
    requests::decide(&h.svc, &bob(), id, Decision::Approve, None)
        .await
        .unwrap();
    h.cloud.fail_next(
        "grant_lake_formation",
        CloudError::Transient("throttled".into()),
    );
    work_once(&h.svc, "test").await.unwrap();
    assert!(!h.leftovers(id).is_empty(), "role and workgroup exist");
    requests::revoke(&h.svc, &alice(), id, Some("no longer needed"))
        .await
        .unwrap();
    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.ended, [(id, EndState::Revoked)]);
    assert_eq!(h.leftovers(id), Vec::<String>::new());
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn failing_revoke_step_keeps_the_request_revoking_until_it_succeeds(pool: PgPool) {
    let h = harness(pool);
    let id = h.active().await;
    requests::revoke(&h.svc, &alice(), id, None).await.unwrap();
    h.cloud.fail_next(
        "revoke_lake_formation",
        CloudError::Transient("ConcurrentModificationException".into()),
    );
    h.cloud.fail_next(
        "revoke_lake_formation",
        CloudError::Transient("ConcurrentModificationException".into()),
    );
    work_once(&h.svc, "test").await.unwrap();
    assert_eq!(h.status(id).await, RequestStatus::Revoking);
    h.clock.advance(Duration::seconds(2));
    work_once(&h.svc, "test").await.unwrap();
    assert_eq!(h.status(id).await, RequestStatus::Revoking);
    h.clock.advance(Duration::seconds(4));
    let report = work_once(&h.svc, "test").await.unwrap();
    assert_eq!(report.ended, [(id, EndState::Revoked)]);
    assert_eq!(h.leftovers(id), Vec::<String>::new());
    assert_eq!(h.audit_count(id, AuditAction::RevokeStepFailed).await, 2);
    let calls = h.cloud.state().calls;
    assert_eq!(
        calls.iter().filter(|c| *c == "delete_workgroup").count(),
        1,
        "resumed at the failed step"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn dashboard_shows_my_requests_and_the_approvers_queue(pool: PgPool) {
    let h = harness(pool);
    let id = h.submit().await;
    let mine = requests::dashboard(&h.svc, &alice()).await.unwrap();
    assert_eq!(mine.mine.len(), 1);
    assert!(!mine.is_approver && mine.pending.is_empty());
    let approver = requests::dashboard(&h.svc, &bob()).await.unwrap();
    assert!(approver.is_approver);
    assert_eq!(
        approver
            .pending
            .iter()
            .map(|q| q.request.id)
            .collect::<Vec<_>>(),
        [id]
    );
    // Strangers cannot see it.
    let err = requests::view(&h.svc, &person("carol", &[]), id)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Forbidden(_)));
}
