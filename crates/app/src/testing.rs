//! Settings for tests (feature `test-util`): the one place tests get a [`Settings`] from, so a
//! setting added to lakegate is added to every test's configuration at once.

use lakegate_domain::ResultsLocation;
use lakegate_domain::policy::Policy;
use lakegate_domain::policy_file::PolicyFile;
use time::Duration;

use crate::notify::NotifySettings;
use crate::{MonitorSettings, RequestSettings, Settings, WorkerSettings};

/// The results bucket the sample catalog's emulator seeding creates.
pub const TEST_RESULTS: &str = "s3://lakegate-athena-results/lakegate/";
/// The permissions boundary every test role gets.
pub const TEST_BOUNDARY: &str = "arn:aws:iam::123456789012:policy/lakegate-boundary";

impl Settings {
    /// What `lakegate serve` would run with by default: `data-owners` approve, 15m–8h, a 10 GB
    /// cutoff, default worker and monitor, results under [`TEST_RESULTS`].
    #[allow(clippy::missing_panics_doc, reason = "constant, valid input")]
    pub fn for_tests() -> Self {
        #[allow(clippy::unwrap_used, reason = "constant, valid input")]
        let policy = Policy::new(
            "data-owners",
            Duration::minutes(15),
            Duration::hours(8),
            10_000_000_000,
        )
        .unwrap();
        #[allow(clippy::unwrap_used, reason = "constant, valid input")]
        let results = ResultsLocation::parse(TEST_RESULTS).unwrap();
        Self {
            policy: PolicyFile::from_policy(&policy),
            results,
            permissions_boundary_arn: TEST_BOUNDARY.into(),
            worker: WorkerSettings::default(),
            monitor: MonitorSettings::default(),
            requests: RequestSettings::default(),
            notify: NotifySettings::default(),
        }
    }

    /// The same with the policy file `toml` (panics, naming the mistake, if it is not valid).
    #[must_use]
    pub fn with_policy_toml(mut self, toml: &str) -> Self {
        self.policy = PolicyFile::parse(toml, "policy.toml")
            .unwrap_or_else(|e| panic!("the test's policy file is not valid: {e}"));
        self
    }

    /// The same with results written under `location` (`s3://bucket/prefix/`).
    #[must_use]
    pub fn with_results(mut self, location: &str) -> Self {
        self.results = ResultsLocation::parse(location)
            .unwrap_or_else(|e| panic!("not a results location: {location}: {e}"));
        self
    }

    #[must_use]
    pub fn with_worker(mut self, worker: WorkerSettings) -> Self {
        self.worker = worker;
        self
    }

    #[must_use]
    pub fn with_requests(mut self, requests: RequestSettings) -> Self {
        self.requests = requests;
        self
    }

    #[must_use]
    pub fn with_notify(mut self, notify: NotifySettings) -> Self {
        self.notify = notify;
        self
    }

    #[must_use]
    pub fn with_monitor(mut self, monitor: MonitorSettings) -> Self {
        self.monitor = monitor;
        self
    }
}
