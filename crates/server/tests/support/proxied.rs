//! A lakegate over moto through the test proxy, shared by the server's test binaries that need
//! the proxy (included with `#[path]`, after `support/aws.rs` as `aws_support`).

use std::sync::Arc;

use lakegate_app::requests::{self, SubmitInput, Submitted};
use lakegate_app::worker::work_once;
use lakegate_app::{Services, Settings};
use lakegate_aws::AwsCloudAccess;
use lakegate_domain::{Principal, RequestId};
use lakegate_testkit::FixedClock;
use lakegate_testkit::aws_proxy::AwsProxy;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::aws_support::seed_catalog;

pub struct Proxied {
    pub proxy: AwsProxy,
    pub svc: Services,
    /// A Glue database of the test's own, holding `orders(order_id, email)`.
    pub db: String,
}

/// lakegate's services over moto through a proxy of the test's own, retries off, with a
/// catalog `<prefix>_<random>` and a policy whose one rule, `grant`, matches it; `rule` holds
/// the rule's other keys.
pub async fn proxied(pool: &PgPool, prefix: &str, rule: &str) -> Proxied {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) is set");
    let proxy = AwsProxy::start(&moto).await.unwrap();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let cloud = Arc::new(AwsCloudAccess::from_conf(&conf, None).await.unwrap());
    let db = seed_catalog(prefix).await;
    let policy = format!(
        "[defaults]\napprover_groups = [\"data-owners\"]\n\n\
         [[rule]]\nname = \"grant\"\nmatch = [\"{db}.*\"]\n{rule}\n"
    );
    let settings = Settings::for_tests().with_policy_toml(&policy);
    let svc = Services::new(
        pool.clone(),
        cloud,
        Arc::new(FixedClock::at(OffsetDateTime::now_utc())),
        settings,
    );
    Proxied { proxy, svc, db }
}

/// An analyst: the rules these tests write auto-approve analysts.
pub fn alice() -> Principal {
    Principal::new("alice", "alice@example.com", None, ["analysts".into()]).unwrap()
}

/// alice's grant of `resources`, auto-approved and made active by the worker.
pub async fn active_grant(svc: &Services, resources: &str, reason: &str) -> RequestId {
    let (id, outcome) = requests::submit(
        svc,
        &alice(),
        SubmitInput {
            resources,
            duration: "1h",
            reason,
            break_glass: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome, Submitted::AutoApproved);
    assert_eq!(work_once(svc, "t").await.unwrap().activated, [id]);
    id
}
