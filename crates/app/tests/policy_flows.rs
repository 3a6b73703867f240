//! The approval policy end to end: auto-approval, several distinct approvals, sensitive
//! columns, who sees what, break-glass with its notification and review, and extensions.
//! Real PostgreSQL, a recording FakeCloud, a clock that moves only when told to.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lakegate_app::extensions::{self, Extended};
use lakegate_app::notify::{self, Message, NotifySettings, Sender, Target};
use lakegate_app::requests::{self, Decided, SubmitInput, Submitted};
use lakegate_app::upkeep::{self, Lapsed};
use lakegate_app::worker::work_once;
use lakegate_app::{AppError, RequestSettings, Services, Settings};
use lakegate_domain::audit::AuditAction;
use lakegate_domain::lake_formation::{LfColumns, LfResource};
use lakegate_domain::ports::Clock as _;
use lakegate_domain::{EndState, PolicyError, Principal, RequestId, RequestStatus};
use lakegate_store::requests::Decision;
use lakegate_store::{audit, requests as store_requests};
use lakegate_testkit::{FakeCloud, FixedClock};
use sqlx::PgPool;
use time::Duration;
use time::macros::datetime;

const POLICY: &str = r#"
admin_group = "security"

[defaults]
approver_groups = ["data-owners"]
max_duration = "8h"

[[rule]]
name = "sales"
match = ["sales.*"]
approver_groups = ["sales-owners"]
max_duration = "4h"
query_scan_cutoff = "2GB"
scan_budget = "1TB"
sensitive_columns = ["email"]
auto_approve = { requester_groups = ["analysts"], max_duration = "2h" }
break_glass = { groups = ["oncall"], max_duration = "1h" }

[[rule]]
name = "hr"
match = ["hr.*"]
approver_groups = ["hr-owners"]
approvals = 2
sensitive_columns = ["salary", "national_id"]
sensitive_approver_groups = ["privacy"]
"#;

/// Takes every message, and keeps it.
#[derive(Default)]
struct Recorded(Mutex<Vec<(Target, Message)>>);

#[async_trait]
impl Sender for Recorded {
    async fn send(&self, target: &Target, m: &Message) -> Result<Option<String>, String> {
        self.0.lock().unwrap().push((target.clone(), m.clone()));
        Ok(None)
    }
}

/// The webhook that hears of break-glass only.
const BREAK_GLASS_HOOK: &str = "https://hooks.example.com/break-glass";

struct Harness {
    svc: Services,
    cloud: Arc<FakeCloud>,
    clock: Arc<FixedClock>,
    notes: Arc<Recorded>,
}

fn harness(pool: PgPool) -> Harness {
    harness_with(pool, |s| s)
}

/// The harness with its settings changed by `tune`. The catalog also holds `finance.ledger`,
/// which no rule of [`POLICY`] makes requestable.
fn harness_with(pool: PgPool, tune: impl FnOnce(Settings) -> Settings) -> Harness {
    let clock = Arc::new(FixedClock::at(datetime!(2026-05-01 09:00 UTC)));
    let cloud = Arc::new(
        FakeCloud::with_sample_catalog()
            .with_table("finance", "ledger", &["entry_id", "amount"], &[])
            .with_clock(clock.clone()),
    );
    let settings = tune(
        Settings::for_tests()
            .with_policy_toml(POLICY)
            .with_results("s3://results/lakegate/")
            .with_notify(NotifySettings {
                break_glass_webhook: Some(BREAK_GLASS_HOOK.into()),
                ..NotifySettings::default()
            }),
    );
    let notes = Arc::new(Recorded::default());
    Harness {
        svc: Services::new(pool, cloud.clone(), clock.clone(), settings).with_sender(notes.clone()),
        cloud,
        clock,
        notes,
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

fn analyst() -> Principal {
    person("alice", &["analysts"])
}

impl Harness {
    async fn submit(
        &self,
        who: &Principal,
        resources: &str,
        duration: &str,
        break_glass: bool,
    ) -> Result<(RequestId, Submitted), AppError> {
        requests::submit(
            &self.svc,
            who,
            SubmitInput {
                resources,
                duration,
                reason: "reconcile the April revenue report",
                break_glass,
            },
        )
        .await
    }

    async fn get(&self, id: RequestId) -> lakegate_domain::AccessRequest {
        let mut conn = self.svc.db.acquire().await.unwrap();
        store_requests::get(&mut conn, id).await.unwrap()
    }

    async fn audit_count(&self, id: RequestId, action: AuditAction) -> i64 {
        let mut conn = self.svc.db.acquire().await.unwrap();
        audit::count_for_request(&mut conn, id, action)
            .await
            .unwrap()
    }

    async fn approve(&self, who: &Principal, id: RequestId) -> Result<Decided, AppError> {
        requests::decide(&self.svc, who, id, Decision::Approve, None).await
    }

    /// An auto-approved sales grant of alice's, provisioned and active.
    async fn active_sales_grant(&self) -> RequestId {
        let (id, outcome) = self
            .submit(&analyst(), "sales.orders", "1h", false)
            .await
            .unwrap();
        assert_eq!(outcome, Submitted::AutoApproved);
        assert_eq!(work_once(&self.svc, "t").await.unwrap().activated, [id]);
        id
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn auto_approval_follows_the_rules(pool: PgPool) {
    let h = harness(pool);
    // (who, resources, duration, expected outcome)
    let cases: &[(Principal, &str, &str, Submitted)] = &[
        (analyst(), "sales.orders", "2h", Submitted::AutoApproved),
        // Longer than the auto-approval limit.
        (analyst(), "sales.orders", "3h", Submitted::Pending),
        // All columns of customers include `email`, which is sensitive.
        (analyst(), "sales.customers", "1h", Submitted::Pending),
        (
            analyst(),
            "sales.customers: customer_id, country",
            "1h",
            Submitted::AutoApproved,
        ),
        // Not an analyst.
        (
            person("erin", &["marketing"]),
            "sales.orders",
            "1h",
            Submitted::Pending,
        ),
        // A table under [defaults] is never auto-approved.
        (analyst(), "hr.employees: name", "1h", Submitted::Pending),
    ];
    for (who, resources, duration, expected) in cases {
        let (id, outcome) = h.submit(who, resources, duration, false).await.unwrap();
        assert_eq!(outcome, *expected, "{resources} for {duration}");
        let r = h.get(id).await;
        let auto = *expected == Submitted::AutoApproved;
        assert_eq!(r.auto_approved, auto, "{resources}");
        assert_eq!(
            r.status,
            if auto {
                RequestStatus::Approved
            } else {
                RequestStatus::Pending
            }
        );
        assert_eq!(
            h.audit_count(id, AuditAction::RequestAutoApproved).await,
            i64::from(auto)
        );
    }

    // The rule's limits go onto the grant and its workgroup.
    let (id, _) = h
        .submit(&analyst(), "sales.orders", "1h", false)
        .await
        .unwrap();
    work_once(&h.svc, "t").await.unwrap();
    let r = h.get(id).await;
    assert_eq!(r.status, RequestStatus::Active);
    assert_eq!(r.scan_cutoff_bytes, Some(2_000_000_000));
    assert_eq!(r.scan_budget_bytes, Some(1_000_000_000_000));
    let wg = h.cloud.state().workgroups[&format!("lakegate-{id}")].clone();
    assert_eq!(wg.bytes_scanned_cutoff, 2_000_000_000);

    // Durations outside the rule's bounds are refused with the rule named.
    let err = h
        .submit(&analyst(), "sales.orders", "5h", false)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the maximum comes from rule sales"),
        "{err}"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn distinct_approvals_and_sensitive_columns(pool: PgPool) {
    let h = harness(pool);
    // Every column of employees, so salary and national_id: hr-owners twice, and privacy once.
    let (id, outcome) = h
        .submit(&analyst(), "hr.employees", "1h", false)
        .await
        .unwrap();
    assert_eq!(outcome, Submitted::Pending);
    let detail = requests::view(&h.svc, &analyst(), id).await.unwrap();
    assert_eq!(
        detail
            .evaluation
            .sensitive_columns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["hr.employees.salary", "hr.employees.national_id"]
    );
    assert_eq!(
        detail.approval.missing,
        [
            "2 more approvals from hr-owners (rule hr)",
            "1 more approval from privacy (sensitive columns, rule hr)"
        ]
    );

    let h1 = person("h1", &["hr-owners"]);
    // The approvers' queue says the same, for every request in it at once.
    let board = requests::dashboard(&h.svc, &h1).await.unwrap();
    let q = board.pending.iter().find(|q| q.request.id == id).unwrap();
    assert_eq!(
        q.sensitive,
        ["hr.employees.salary", "hr.employees.national_id"]
    );
    assert_eq!(q.missing, detail.approval.missing);
    let h2 = person("h2", &["hr-owners"]);
    let privacy = person("pat", &["privacy"]);
    let sales_owner = person("sam", &["sales-owners"]);

    assert_eq!(
        h.approve(&h1, id).await.unwrap(),
        Decided::NeedsMore(vec![
            "1 more approval from hr-owners (rule hr)".into(),
            "1 more approval from privacy (sensitive columns, rule hr)".into()
        ])
    );
    // The same person twice counts once.
    assert!(matches!(
        h.approve(&h1, id).await,
        Err(AppError::Forbidden(PolicyError::AlreadyApproved))
    ));
    // Nor can an approval be turned into a denial: a conflict, with a reason.
    let denied = requests::decide(&h.svc, &h1, id, Decision::Deny, Some("changed my mind")).await;
    assert!(
        matches!(&denied, Err(AppError::AlreadyDecided(m)) if m.contains("an approval stands")),
        "{denied:?}"
    );
    assert_eq!(h.get(id).await.status, RequestStatus::Pending);
    // An approver of other tables neither sees nor decides it.
    assert!(matches!(
        h.approve(&sales_owner, id).await,
        Err(AppError::Forbidden(PolicyError::NotVisible))
    ));
    assert!(matches!(
        requests::view(&h.svc, &sales_owner, id).await,
        Err(AppError::Forbidden(PolicyError::NotVisible))
    ));
    assert_eq!(
        h.approve(&h2, id).await.unwrap(),
        Decided::NeedsMore(vec![
            "1 more approval from privacy (sensitive columns, rule hr)".into()
        ])
    );
    assert_eq!(h.get(id).await.status, RequestStatus::Pending);
    assert_eq!(h.approve(&privacy, id).await.unwrap(), Decided::Approved);
    assert_eq!(h.get(id).await.status, RequestStatus::Approved);
    assert_eq!(h.audit_count(id, AuditAction::ApprovalRecorded).await, 2);
    assert_eq!(h.audit_count(id, AuditAction::RequestApproved).await, 1);
    // Approvals are kept with the approvers' groups.
    let detail = requests::view(&h.svc, &h1, id).await.unwrap();
    assert_eq!(detail.decisions.len(), 3);
    assert_eq!(detail.decisions[2].groups, ["privacy"]);
    assert!(detail.approval.satisfied);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn each_approver_sees_only_their_tables(pool: PgPool) {
    let h = harness(pool);
    let (sales, _) = h
        .submit(&analyst(), "sales.customers", "1h", false)
        .await
        .unwrap();
    let (hr, _) = h
        .submit(&analyst(), "hr.employees: name", "1h", false)
        .await
        .unwrap();

    let queued = |qs: &[requests::Queued]| qs.iter().map(|q| q.request.id).collect::<Vec<_>>();
    let board = requests::dashboard(&h.svc, &person("sam", &["sales-owners"]))
        .await
        .unwrap();
    assert!(board.is_approver);
    assert_eq!(queued(&board.pending), [sales]);
    let board = requests::dashboard(&h.svc, &person("h1", &["hr-owners"]))
        .await
        .unwrap();
    assert_eq!(queued(&board.pending), [hr]);
    // Admins see every live grant, but queue nothing they cannot approve.
    let board = requests::dashboard(&h.svc, &person("dora", &["security"]))
        .await
        .unwrap();
    assert!(board.is_admin && !board.is_approver);
    assert!(board.pending.is_empty());
    let board = requests::dashboard(&h.svc, &analyst()).await.unwrap();
    assert!(!board.is_approver && board.pending.is_empty());
    assert_eq!(board.mine.len(), 2);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn break_glass_is_immediate_flagged_notified_capped_and_reviewed(pool: PgPool) {
    let h = harness(pool);
    let oncall = person("olga", &["oncall"]);

    // Refusals: too long, not in the group, a table whose rules have no break-glass.
    let err = h
        .submit(&oncall, "sales.orders", "2h", true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("between 15m and 1h"), "{err}");
    let err = h
        .submit(&analyst(), "sales.orders", "30m", true)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("break-glass is not available"),
        "{err}"
    );
    let err = h
        .submit(&oncall, "sales.orders\nhr.employees: name", "30m", true)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("break-glass is not available"),
        "{err}"
    );
    notify::deliver_due(&h.svc).await.unwrap();
    assert!(h.notes.0.lock().unwrap().is_empty());

    let (id, outcome) = h
        .submit(&oncall, "sales.customers", "30m", true)
        .await
        .unwrap();
    assert_eq!(outcome, Submitted::BreakGlass);
    let r = h.get(id).await;
    assert!(r.break_glass && r.needs_review());
    assert_eq!(r.status, RequestStatus::Approved, "no approver involved");
    assert_eq!(h.audit_count(id, AuditAction::BreakGlassActivated).await, 1);
    assert_eq!(work_once(&h.svc, "t").await.unwrap().activated, [id]);

    // Enqueued with the audit event; the break-glass webhook hears of it, and of nothing else.
    let pass = notify::deliver_due(&h.svc).await.unwrap();
    assert_eq!(pass.delivered, 1, "{pass:?}");
    let notes = h.notes.0.lock().unwrap().clone();
    assert_eq!(notes.len(), 1);
    let (target, m) = &notes[0];
    assert_eq!(
        *target,
        Target::Webhook {
            url: BREAK_GLASS_HOOK.into()
        }
    );
    assert_eq!(m.event.as_str(), "break_glass.activated");
    assert_eq!(m.request.as_ref().unwrap().id, id);
    assert!(m.text.contains("olga@example.com"), "{}", m.text);
    assert!(m.text.starts_with("BREAK-GLASS"), "{}", m.text);
    assert_eq!(
        notify::deliver_due(&h.svc).await.unwrap().delivered,
        0,
        "delivered once"
    );

    // Approvers of the tables are asked to review it; the requester may not.
    let sam = person("sam", &["sales-owners"]);
    let board = requests::dashboard(&h.svc, &sam).await.unwrap();
    assert_eq!(board.needs_review.len(), 1);
    assert!(matches!(
        requests::review(&h.svc, &oncall, id, None).await,
        Err(AppError::Forbidden(PolicyError::SelfApproval))
    ));
    requests::review(&h.svc, &sam, id, Some("incident 42, fine"))
        .await
        .unwrap();
    let r = h.get(id).await;
    assert!(r.break_glass && !r.needs_review());
    assert_eq!(
        r.review.unwrap().comment.as_deref(),
        Some("incident 42, fine")
    );
    assert!(matches!(
        requests::review(&h.svc, &sam, id, None).await,
        Err(AppError::Invalid(_))
    ));
    assert_eq!(h.audit_count(id, AuditAction::BreakGlassReviewed).await, 1);
    assert!(
        requests::dashboard(&h.svc, &sam)
            .await
            .unwrap()
            .needs_review
            .is_empty()
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn extensions_move_the_expiry_within_the_rules(pool: PgPool) {
    let h = harness(pool);
    let id = h.active_sales_grant().await;
    let first_expiry = h.get(id).await.expires_at.unwrap();

    // 1h + 30m stays within the 2h auto-approval: applied at once.
    let out = extensions::extend(&h.svc, &analyst(), id, "30m", "the report needs a rerun")
        .await
        .unwrap();
    assert_eq!(out, Extended::Now(first_expiry + Duration::minutes(30)));
    assert_eq!(
        h.get(id).await.expires_at,
        Some(first_expiry + Duration::minutes(30))
    );
    assert_eq!(
        h.audit_count(id, AuditAction::ExtensionAutoApproved).await,
        1
    );

    // Another hour makes 2h30m in all: past auto-approval, so an approver decides.
    let out = extensions::extend(&h.svc, &analyst(), id, "1h", "and a second rerun")
        .await
        .unwrap();
    assert_eq!(out, Extended::Pending);
    let again = extensions::extend(&h.svc, &analyst(), id, "15m", "a third one, meanwhile").await;
    assert!(matches!(again, Err(AppError::Invalid(_))), "{again:?}");
    // Only the requester asks for more time.
    assert!(matches!(
        extensions::extend(
            &h.svc,
            &person("sam", &["sales-owners"]),
            id,
            "1h",
            "on their behalf"
        )
        .await,
        Err(AppError::Forbidden(_))
    ));

    let detail = requests::view(&h.svc, &analyst(), id).await.unwrap();
    let pending = detail.extensions.last().unwrap();
    assert_eq!(
        pending.approval.missing,
        ["1 more approval from sales-owners (rule sales)"]
    );
    let sam = person("sam", &["sales-owners"]);
    assert_eq!(
        requests::dashboard(&h.svc, &sam)
            .await
            .unwrap()
            .extensions
            .len(),
        1
    );
    assert!(matches!(
        extensions::decide_extension(
            &h.svc,
            &analyst(),
            id,
            pending.extension.id,
            Decision::Approve,
            None
        )
        .await,
        Err(AppError::Forbidden(PolicyError::SelfApproval))
    ));
    assert_eq!(
        extensions::decide_extension(
            &h.svc,
            &sam,
            id,
            pending.extension.id,
            Decision::Approve,
            None
        )
        .await
        .unwrap(),
        Decided::Approved
    );
    let new_expiry = first_expiry + Duration::minutes(90);
    let r = h.get(id).await;
    assert_eq!(r.expires_at, Some(new_expiry));
    assert_eq!(r.granted_total(), Duration::minutes(150));

    // The rule's 4h maximum caps the total.
    let err = extensions::extend(&h.svc, &analyst(), id, "2h", "the whole afternoon")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("you can add at most 1h 30m"),
        "{err}"
    );

    // The reaper follows the new expiry, not the old one.
    h.clock.set(first_expiry + Duration::minutes(5));
    assert!(work_once(&h.svc, "t").await.unwrap().ended.is_empty());
    assert_eq!(h.get(id).await.status, RequestStatus::Active);
    h.clock.set(new_expiry + Duration::seconds(1));
    work_once(&h.svc, "t").await.unwrap();
    work_once(&h.svc, "t").await.unwrap();
    let r = h.get(id).await;
    assert_eq!(r.status, RequestStatus::Expired);
    assert_eq!(r.end_state, Some(EndState::Expired));

    // An ended grant is not extended.
    let late = extensions::extend(&h.svc, &analyst(), id, "30m", "one more look please").await;
    assert!(matches!(late, Err(AppError::Conflict(_))), "{late:?}");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn requests_nobody_else_can_decide_never_crowd_an_approvers_queue(pool: PgPool) {
    let h = harness_with(pool, |s| {
        s.with_requests(RequestSettings {
            max_pending_per_person: 0,
            ..RequestSettings::default()
        })
    });
    // More pending sales requests than any queue page holds, all older than the one hr request.
    let spammer = person("mallory", &[]);
    for _ in 0..501 {
        let (_, outcome) = h
            .submit(&spammer, "sales.customers", "1h", false)
            .await
            .unwrap();
        assert_eq!(outcome, Submitted::Pending);
    }
    let (hr, _) = h
        .submit(&analyst(), "hr.employees: name", "1h", false)
        .await
        .unwrap();
    let board = requests::dashboard(&h.svc, &person("h1", &["hr-owners"]))
        .await
        .unwrap();
    let ids: Vec<RequestId> = board.pending.iter().map(|q| q.request.id).collect();
    assert_eq!(ids, [hr], "the hr approver's queue holds the hr request");
    // Nobody is queued their own request, even when in the approver group.
    let board = requests::dashboard(&h.svc, &person("mallory", &["sales-owners"]))
        .await
        .unwrap();
    assert!(board.pending.is_empty(), "{} queued", board.pending.len());
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn one_person_may_have_only_so_many_pending_requests(pool: PgPool) {
    let h = harness(pool);
    let mut first = None;
    for _ in 0..20 {
        let (id, outcome) = h
            .submit(&analyst(), "sales.customers", "1h", false)
            .await
            .unwrap();
        assert_eq!(outcome, Submitted::Pending);
        first.get_or_insert(id);
    }
    match h.submit(&analyst(), "sales.customers", "1h", false).await {
        Err(AppError::Invalid(e)) => assert!(
            e.to_string().contains("20 requests waiting")
                && e.to_string().contains("LAKEGATE_MAX_PENDING_PER_PERSON"),
            "{e}"
        ),
        other => panic!("the 21st pending request was not refused: {other:?}"),
    }
    // What needs nobody's decision is not held back by the cap.
    let (_, outcome) = h
        .submit(&analyst(), "sales.orders", "1h", false)
        .await
        .unwrap();
    assert_eq!(outcome, Submitted::AutoApproved);
    // Another person is not affected, and a cancelled request frees a place.
    h.submit(&person("bob", &[]), "sales.customers", "1h", false)
        .await
        .unwrap();
    requests::cancel(&h.svc, &analyst(), first.unwrap())
        .await
        .unwrap();
    h.submit(&analyst(), "sales.customers", "1h", false)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn undecided_requests_and_extensions_lapse(pool: PgPool) {
    let h = harness(pool);
    let (pending, _) = h
        .submit(&analyst(), "sales.customers", "1h", false)
        .await
        .unwrap();
    h.clock.advance(Duration::days(6));
    let (younger, _) = h
        .submit(&analyst(), "sales.customers", "1h", false)
        .await
        .unwrap();
    assert_eq!(upkeep::lapse_due(&h.svc).await.unwrap(), Lapsed::default());

    h.clock.advance(Duration::days(1));
    let lapsed = upkeep::lapse_due(&h.svc).await.unwrap();
    assert_eq!(lapsed.requests, [pending]);
    assert_eq!(h.get(pending).await.status, RequestStatus::Lapsed);
    assert_eq!(h.get(younger).await.status, RequestStatus::Pending);
    assert_eq!(h.audit_count(pending, AuditAction::RequestLapsed).await, 1);
    assert_eq!(upkeep::lapse_due(&h.svc).await.unwrap(), Lapsed::default());
    // Nobody decides a lapsed request any more.
    let late = h.approve(&person("sam", &["sales-owners"]), pending).await;
    assert!(matches!(late, Err(AppError::Conflict(_))), "{late:?}");

    // An extension still pending when its grant ends lapses with it.
    let grant = h.active_sales_grant().await;
    let out = extensions::extend(
        &h.svc,
        &analyst(),
        grant,
        "3h",
        "the quarter close runs long",
    )
    .await
    .unwrap();
    assert_eq!(out, Extended::Pending);
    assert!(
        upkeep::lapse_due(&h.svc)
            .await
            .unwrap()
            .extensions
            .is_empty()
    );
    requests::revoke(&h.svc, &analyst(), grant, None)
        .await
        .unwrap();
    let lapsed = upkeep::lapse_due(&h.svc).await.unwrap();
    assert_eq!(lapsed.extensions.len(), 1);
    assert_eq!(lapsed.extensions[0].0, grant);
    assert_eq!(h.audit_count(grant, AuditAction::ExtensionLapsed).await, 1);
    let sam = person("sam", &["sales-owners"]);
    assert!(
        requests::dashboard(&h.svc, &sam)
            .await
            .unwrap()
            .extensions
            .is_empty()
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn the_form_tells_nothing_of_tables_nobody_may_request(pool: PgPool) {
    let h = harness(pool);
    let refusal = |r: Result<(RequestId, Submitted), AppError>| match r {
        Err(AppError::Invalid(e)) => e.to_string(),
        other => panic!("not refused: {other:?}"),
    };
    // An existing table no rule covers, a missing table in a database that exists, a missing
    // database: one answer, naming only what was typed.
    let exists = refusal(h.submit(&analyst(), "finance.ledger", "1h", false).await);
    let no_table = refusal(h.submit(&analyst(), "finance.budget", "1h", false).await);
    let no_db = refusal(h.submit(&analyst(), "treasury.ledger", "1h", false).await);
    let columns = refusal(
        h.submit(&analyst(), "finance.ledger: no_such_column", "1h", false)
            .await,
    );
    assert_eq!(
        exists.replace("finance.ledger", "X"),
        no_table.replace("finance.budget", "X")
    );
    assert_eq!(
        exists.replace("finance.ledger", "X"),
        no_db.replace("treasury.ledger", "X")
    );
    assert_eq!(exists, columns);
    assert!(exists.contains("not found or not requestable"), "{exists}");
    for answer in [&exists, &no_table, &no_db, &columns] {
        assert!(!answer.contains("entry_id"), "a column leaked: {answer}");
    }
    // The catalog was not even asked about them.
    assert!(
        !h.cloud.state().calls.iter().any(|c| c == "describe_table"),
        "{:?}",
        h.cloud.state().calls
    );
    // A requestable database answers the same for a table it does not have.
    let missing = refusal(h.submit(&analyst(), "sales.refunds", "1h", false).await);
    assert_eq!(
        missing.replace("sales.refunds", "X"),
        exists.replace("finance.ledger", "X")
    );
    // Column names are listed for tables one may request.
    let typo = refusal(
        h.submit(&analyst(), "sales.orders: amonut", "1h", false)
            .await,
    );
    assert!(typo.contains("order_id"), "{typo}");
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn all_columns_are_granted_as_the_list_the_approver_saw(pool: PgPool) {
    let h = harness(pool);
    let (id, outcome) = h
        .submit(&analyst(), "sales.customers", "1h", false)
        .await
        .unwrap();
    assert_eq!(outcome, Submitted::Pending);
    // The table gains a column between the request and its approval.
    h.cloud.add_column("sales", "customers", "phone");
    let sam = person("sam", &["sales-owners"]);
    assert_eq!(h.approve(&sam, id).await.unwrap(), Decided::Approved);

    let mut conn = h.svc.db.acquire().await.unwrap();
    let item = lakegate_store::work::load(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    let table = item
        .lf_grants
        .iter()
        .find_map(|g| match &g.resource {
            LfResource::TableWithColumns { columns, .. } => Some(columns.clone()),
            LfResource::Database { .. } => None,
        })
        .unwrap();
    assert_eq!(
        table,
        LfColumns::Names(
            ["country", "customer_id", "email", "name"]
                .map(String::from)
                .to_vec()
        ),
        "the explicit list shown at request time, never the wildcard"
    );
    let events = audit::list_for_request(&mut conn, id).await.unwrap();
    let changed = events
        .iter()
        .find(|e| e.action == AuditAction::GrantColumnsChanged)
        .expect("the new column is flagged");
    assert_eq!(
        changed.detail["not_granted"],
        serde_json::json!({ "sales.customers": ["phone"] })
    );
    work_once(&h.svc, "t").await.unwrap();
    assert!(
        h.cloud.state().grants.iter().any(|g| matches!(
            &g.resource,
            LfResource::TableWithColumns { columns: LfColumns::Names(c), .. } if !c.contains(&"phone".to_owned())
        )),
        "granted without the new column"
    );

    // While the grant is live, the table gains another column: the monitor notes it once.
    h.cloud.add_column("sales", "customers", "fax");
    let query = |n: &str| lakegate_domain::ports::QueryExecution {
        id: n.to_owned(),
        sql: "SELECT name FROM sales.customers".into(),
        database: Some("sales".into()),
        state: lakegate_domain::usage::QueryState::Succeeded,
        state_change_reason: None,
        bytes_scanned: 1_000,
        engine_ms: 5,
        submitted_at: Some(h.clock.now()),
        completed_at: Some(h.clock.now()),
    };
    let workgroup = format!("lakegate-{id}");
    h.cloud.set_queries(&workgroup, vec![query("q1")]);
    lakegate_app::monitor::monitor_once(&h.svc).await.unwrap();
    h.cloud
        .set_queries(&workgroup, vec![query("q1"), query("q2")]);
    lakegate_app::monitor::monitor_once(&h.svc).await.unwrap();
    let events = audit::list_for_request(&mut conn, id).await.unwrap();
    let changes: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.action == AuditAction::GrantColumnsChanged)
        .map(|e| &e.detail["not_granted"])
        .collect();
    assert_eq!(
        changes,
        [
            &serde_json::json!({ "sales.customers": ["phone"] }),
            &serde_json::json!({ "sales.customers": ["phone", "fax"] })
        ]
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn queues_follow_a_changed_policy_after_a_restart(pool: PgPool) {
    let before = harness(pool.clone());
    let (id, _) = before
        .submit(&analyst(), "sales.customers", "1h", false)
        .await
        .unwrap();
    let newcomer = person("nora", &["revenue-owners"]);
    assert!(
        requests::dashboard(&before.svc, &newcomer)
            .await
            .unwrap()
            .pending
            .is_empty()
    );

    // lakegate restarts with a policy where another group owns sales.
    let after = harness_with(pool, |s| {
        s.with_policy_toml(&POLICY.replace(
            r#"approver_groups = ["sales-owners"]"#,
            r#"approver_groups = ["revenue-owners"]"#,
        ))
    });
    assert_eq!(
        upkeep::refresh_approver_groups(&after.svc).await.unwrap(),
        1
    );
    let queued: Vec<RequestId> = requests::dashboard(&after.svc, &newcomer)
        .await
        .unwrap()
        .pending
        .iter()
        .map(|q| q.request.id)
        .collect();
    assert_eq!(queued, [id]);
    let sam = person("sam", &["sales-owners"]);
    assert!(
        requests::dashboard(&after.svc, &sam)
            .await
            .unwrap()
            .pending
            .is_empty()
    );
    // Nothing more to bring up to date.
    assert_eq!(
        upkeep::refresh_approver_groups(&after.svc).await.unwrap(),
        0
    );
}
