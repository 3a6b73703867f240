//! The notification outbox: each change's notification fanned out to the targets configured
//! for it, delivered once, in order per request and target, retried with backoff while the
//! target fails, given up after the maximum age, and never delivered twice by two replicas
//! delivering at once. Real PostgreSQL, a scripted sender, a clock that moves when told to.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lakegate_app::notify::{self, Message, NotifySettings, Sender, Target};
use lakegate_app::requests::{self, SubmitInput};
use lakegate_app::upkeep;
use lakegate_app::worker::work_once;
use lakegate_app::{Services, Settings};
use lakegate_domain::Principal;
use lakegate_store::requests::Decision;
use lakegate_testkit::{FakeCloud, FixedClock};
use sqlx::PgPool;
use time::Duration;
use time::macros::datetime;

const POLICY: &str = r##"
[defaults]
approver_groups = ["data-owners"]

[[rule]]
name = "sales"
match = ["sales.*"]
approver_groups = ["data-owners"]

[[rule]]
name = "hr"
match = ["hr.*"]
approver_groups = ["hr-owners"]
notify = { slack_channel = "#hr-access", webhooks = ["https://hooks.example.com/hr"] }
"##;

const ALL: &str = "https://hooks.example.com/all";
const HR: &str = "https://hooks.example.com/hr";

/// Records what it is sent; refuses everything while `down`; answers Slack with a receipt.
#[derive(Default)]
struct Scripted {
    down: AtomicBool,
    sent: Mutex<Vec<(Target, Message)>>,
    /// Attempts, delivered or not.
    tried: Mutex<usize>,
}

#[async_trait]
impl Sender for Scripted {
    async fn send(&self, target: &Target, m: &Message) -> Result<Option<String>, String> {
        *self.tried.lock().unwrap() += 1;
        // A send takes a moment, so concurrent passes overlap.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if self.down.load(Ordering::SeqCst) {
            return Err("the receiver answered 503".into());
        }
        self.sent.lock().unwrap().push((target.clone(), m.clone()));
        Ok(match target {
            Target::Slack { .. } => Some(format!("C0HR 1700000000.{:06}", m.id)),
            Target::Webhook { .. } | Target::SlackPerson { .. } => None,
        })
    }
}

impl Scripted {
    fn events_to(&self, target: &Target) -> Vec<&'static str> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == target)
            .map(|(_, m)| m.event.as_str())
            .collect()
    }
}

struct Harness {
    svc: Services,
    clock: Arc<FixedClock>,
    sender: Arc<Scripted>,
}

fn harness(pool: PgPool) -> Harness {
    let clock = Arc::new(FixedClock::at(datetime!(2026-05-01 09:00 UTC)));
    let cloud = Arc::new(FakeCloud::with_sample_catalog().with_clock(clock.clone()));
    let settings = Settings::for_tests()
        .with_policy_toml(POLICY)
        .with_results("s3://results/lakegate/")
        .with_notify(NotifySettings {
            webhooks: vec![ALL.into()],
            slack_channel: Some("#lakegate".into()),
            slack: true,
            max_age: Duration::hours(1),
            ..NotifySettings::default()
        });
    let sender = Arc::new(Scripted::default());
    Harness {
        svc: Services::new(pool, cloud, clock.clone(), settings).with_sender(sender.clone()),
        clock,
        sender,
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

fn webhook(url: &str) -> Target {
    Target::Webhook { url: url.into() }
}

impl Harness {
    /// Alice asks for `resources`; `approver` approves; the worker sets it up.
    async fn granted(&self, resources: &str, approver: &Principal) -> lakegate_domain::RequestId {
        let alice = person("alice", &["analysts"]);
        let (id, _) = requests::submit(
            &self.svc,
            &alice,
            SubmitInput {
                resources,
                duration: "1h",
                reason: "quarterly numbers",
                break_glass: false,
            },
        )
        .await
        .unwrap();
        requests::decide(&self.svc, approver, id, Decision::Approve, None)
            .await
            .unwrap();
        work_once(&self.svc, "t").await.unwrap();
        id
    }

    async fn undelivered(&self) -> i64 {
        sqlx::query_scalar(
            "select count(*) from notification_delivery
             where delivered_at is null and given_up_at is null",
        )
        .fetch_one(&self.svc.db)
        .await
        .unwrap()
    }
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn each_notification_reaches_its_targets_once_and_in_order(pool: PgPool) {
    let h = harness(pool);
    let id = h
        .granted("hr.employees: name", &person("hank", &["hr-owners"]))
        .await;

    let pass = notify::deliver_due(&h.svc).await.unwrap();
    assert_eq!(pass.routed, 3, "{pass:?}");
    // One request's messages to one target go one at a time: each pass sends the next one.
    let mut passes = 1;
    while h.undelivered().await > 0 {
        notify::deliver_due(&h.svc).await.unwrap();
        passes += 1;
        assert!(passes < 10, "stuck");
    }
    let order = ["request.submitted", "request.approved", "grant.active"];
    // The deployment's webhook, the rule's webhook and the rule's Slack channel (not the
    // default one) hear of everything.
    let slack = Target::Slack {
        channel: "#hr-access".into(),
    };
    for target in [webhook(ALL), webhook(HR), slack.clone()] {
        assert_eq!(h.sender.events_to(&target), order, "{target:?}");
    }
    assert!(
        h.sender
            .events_to(&Target::Slack {
                channel: "#lakegate".into()
            })
            .is_empty()
    );
    // The requester hears of the decision and of her access in person, not of her own asking.
    let alice = Target::SlackPerson {
        email: "alice@example.com".into(),
    };
    assert_eq!(
        h.sender.events_to(&alice),
        ["request.approved", "grant.active"]
    );
    // Slack's later messages refer to the first one's receipt, to update it and thread.
    let sent = h.sender.sent.lock().unwrap().clone();
    let to_slack: Vec<&Message> = sent
        .iter()
        .filter(|(t, _)| *t == slack)
        .map(|(_, m)| m)
        .collect();
    let first = to_slack[0];
    assert_eq!(first.thread, None);
    let receipt = format!("C0HR 1700000000.{:06}", first.id);
    assert!(
        to_slack[1..]
            .iter()
            .all(|m| m.thread.as_deref() == Some(&receipt))
    );
    // The same notification has the same id at every target; different ones differ.
    for m in &to_slack {
        assert!(
            sent.iter()
                .filter(|(_, o)| o.id == m.id)
                .all(|(_, o)| o.event == m.event)
        );
    }
    assert!(
        sent.iter()
            .all(|(_, m)| m.request.as_ref().unwrap().id == id)
    );

    // Delivered is delivered.
    assert_eq!(notify::deliver_due(&h.svc).await.unwrap().delivered, 0);
    // A request of a rule that names no target goes to the deployment's webhook and the default
    // channel.
    h.granted("sales.orders", &person("dana", &["data-owners"]))
        .await;
    for _ in 0..5 {
        notify::deliver_due(&h.svc).await.unwrap();
    }
    assert_eq!(h.sender.events_to(&webhook(HR)).len(), 3, "not the rule's");
    assert_eq!(
        h.sender.events_to(&Target::Slack {
            channel: "#lakegate".into()
        }),
        order
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_failing_target_is_retried_with_backoff_then_given_up(pool: PgPool) {
    let h = harness(pool);
    h.sender.down.store(true, Ordering::SeqCst);
    h.granted("sales.orders", &person("dana", &["data-owners"]))
        .await;

    // The first attempt fails; the next is not due for a second, then two, then four.
    let pass = notify::deliver_due(&h.svc).await.unwrap();
    // Three targets: the webhook, the channel, and the requester in person.
    assert_eq!(pass.failed, 3, "the first message to each target: {pass:?}");
    assert_eq!(
        notify::deliver_due(&h.svc).await.unwrap().failed,
        0,
        "not due yet"
    );
    for wait in [1, 2, 4] {
        h.clock
            .advance(Duration::seconds(wait) - Duration::milliseconds(10));
        assert_eq!(
            notify::deliver_due(&h.svc).await.unwrap().failed,
            0,
            "{wait}s: early"
        );
        h.clock.advance(Duration::milliseconds(10));
        assert_eq!(
            notify::deliver_due(&h.svc).await.unwrap().failed,
            3,
            "{wait}s: due"
        );
    }
    let (attempts, error): (i32, String) =
        sqlx::query_as("select max(attempts), max(last_error) from notification_delivery")
            .fetch_one(&h.svc.db)
            .await
            .unwrap();
    assert_eq!(attempts, 4);
    assert_eq!(error, "the receiver answered 503");

    // The receiver comes back: the oldest goes out first, the rest follow in order.
    h.sender.down.store(false, Ordering::SeqCst);
    h.clock.advance(Duration::seconds(8));
    let mut tries = 0;
    while h.undelivered().await > 0 {
        notify::deliver_due(&h.svc).await.unwrap();
        tries += 1;
        assert!(tries < 10, "stuck");
    }
    assert_eq!(
        h.sender.events_to(&webhook(ALL)),
        ["request.submitted", "request.approved", "grant.active"]
    );

    // Down again for longer than the maximum age: given up, and the next one goes on.
    h.sender.down.store(true, Ordering::SeqCst);
    let sent_before = h.sender.sent.lock().unwrap().len();
    let dana = person("dana", &["data-owners"]);
    let id = h.granted("sales.customers", &dana).await;
    let mut given_up = 0;
    for _ in 0..40 {
        h.clock.advance(Duration::minutes(5));
        given_up += notify::deliver_due(&h.svc).await.unwrap().given_up;
        if given_up >= 3 {
            break;
        }
    }
    assert_eq!(given_up, 3, "the first message to each target");
    assert!(h.svc.clock.now() - datetime!(2026-05-01 09:00 UTC) >= Duration::hours(1));
    let given: i64 = sqlx::query_scalar(
        "select count(*) from notification_delivery d join notification n using (notification_id)
         where n.request_id = $1 and d.given_up_at is not null",
    )
    .bind(id.0)
    .fetch_one(&h.svc.db)
    .await
    .unwrap();
    assert!(given >= 3, "{given}");
    assert_eq!(h.sender.sent.lock().unwrap().len(), sent_before);
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn two_replicas_delivering_at_once_send_each_once(pool: PgPool) {
    let h = harness(pool);
    for table in ["sales.orders", "sales.customers", "hr.employees: name"] {
        let approver = if table.starts_with("hr") {
            person("hank", &["hr-owners"])
        } else {
            person("dana", &["data-owners"])
        };
        h.granted(table, &approver).await;
    }
    // Two delivery loops (two replicas) at once, until nothing is left.
    let mut rounds = 0;
    while h.undelivered().await > 0 || rounds == 0 {
        let (a, b) = tokio::join!(notify::deliver_due(&h.svc), notify::deliver_due(&h.svc));
        a.unwrap();
        b.unwrap();
        rounds += 1;
        assert!(rounds < 10, "stuck");
    }
    let sent = h.sender.sent.lock().unwrap().clone();
    let mut seen = std::collections::BTreeSet::new();
    for (target, m) in &sent {
        assert!(
            seen.insert((target.key(), m.id)),
            "{} sent twice to {target:?}",
            m.event.as_str()
        );
    }
    // 3 requests × 3 notifications × 2 targets, the hr one's to 1 more target, and 2 of each
    // request's to the requester.
    assert_eq!(sent.len(), 3 * 3 * 2 + 3 + 3 * 2, "{:?}", seen);
    assert_eq!(
        *h.sender.tried.lock().unwrap(),
        sent.len(),
        "no send attempted twice"
    );
}

#[sqlx::test(migrator = "lakegate_store::MIGRATOR")]
async fn a_grant_is_told_once_it_ends_within_ten_minutes(pool: PgPool) {
    let h = harness(pool);
    let id = h
        .granted("sales.orders", &person("dana", &["data-owners"]))
        .await;
    assert_eq!(
        upkeep::notice_expiring(&h.svc).await.unwrap(),
        0,
        "an hour left"
    );
    h.clock.advance(Duration::minutes(49));
    assert_eq!(
        upkeep::notice_expiring(&h.svc).await.unwrap(),
        0,
        "11 minutes left"
    );
    h.clock.advance(Duration::minutes(2));
    assert_eq!(upkeep::notice_expiring(&h.svc).await.unwrap(), 1);
    assert_eq!(
        upkeep::notice_expiring(&h.svc).await.unwrap(),
        0,
        "told once"
    );
    for _ in 0..5 {
        notify::deliver_due(&h.svc).await.unwrap();
    }
    let events = h.sender.events_to(&webhook(ALL));
    assert_eq!(
        events,
        [
            "request.submitted",
            "request.approved",
            "grant.active",
            "grant.expiring"
        ]
    );
    let sent = h.sender.sent.lock().unwrap().clone();
    let (_, m) = sent
        .iter()
        .find(|(_, m)| m.event.as_str() == "grant.expiring")
        .unwrap();
    assert_eq!(m.request.as_ref().unwrap().id, id);
    assert_eq!(m.actor, None, "lakegate itself");
    assert!(m.text.contains("ends in 10 minutes or less"), "{}", m.text);
}
