//! Names of everything lakegate creates in AWS. All derive from the request id, so a crash at
//! any point can be repaired by running the same steps again, and no name is ever reused.

use crate::request::RequestId;
use crate::target::ResultsLocation;

/// IAM path of every role lakegate creates; the broker's own IAM permissions are scoped to it.
pub const ROLE_PATH: &str = "/lakegate/";
/// Prefix of every role and workgroup name.
pub const NAME_PREFIX: &str = "lakegate-";
/// The role's inline policy: what its sessions may do.
pub const ACCESS_POLICY_NAME: &str = "lakegate-access";
/// The role's inline policy that denies all its sessions once revoking begins.
pub const REVOKE_POLICY_NAME: &str = "lakegate-revoke";
/// The role's inline policy that denies sessions minted before the current credentials token.
pub const SUPERSEDED_POLICY_NAME: &str = "lakegate-superseded-sessions";
/// Tags put on roles and workgroups.
pub const TAG_REQUEST: &str = "lakegate:request";
pub const TAG_OWNER: &str = "lakegate:owner";
pub const TAG_EXPIRES_AT: &str = "lakegate:expires-at";

/// Who lakegate is in AWS: the account and region it works in, and the principal allowed to
/// assume the roles it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudIdentity {
    pub account_id: String,
    pub region: String,
    /// `arn:aws:iam::<account>:role/...` or `...:user/...`; named in every role's trust policy.
    pub broker_principal_arn: String,
}

impl CloudIdentity {
    /// The AWS partition (`aws`, `aws-cn`, `aws-us-gov`, …) of every ARN lakegate writes:
    /// the broker's own, read from its ARN (`aws` if it cannot be read).
    pub fn partition(&self) -> &str {
        partition_of(&self.broker_principal_arn)
    }
}

/// The partition of an ARN (`arn:<partition>:…`); `aws` when `arn` is none.
pub fn partition_of(arn: &str) -> &str {
    let mut parts = arn.split(':');
    match (parts.next(), parts.next()) {
        (Some("arn"), Some(partition)) if !partition.is_empty() => partition,
        _ => "aws",
    }
}

/// The names and ARNs of one request's AWS resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantResources {
    pub request: RequestId,
    /// The AWS partition of every ARN (see [`CloudIdentity::partition`]).
    pub partition: String,
    pub account_id: String,
    pub region: String,
    pub role_name: String,
    pub role_arn: String,
    pub workgroup: String,
    pub workgroup_arn: String,
    pub results_bucket: String,
    /// Key prefix under the bucket, ending in `/`.
    pub results_prefix: String,
}

impl GrantResources {
    pub fn derive(request: RequestId, identity: &CloudIdentity, results: &ResultsLocation) -> Self {
        let name = format!("{NAME_PREFIX}{request}");
        let partition = identity.partition();
        Self {
            request,
            partition: partition.to_owned(),
            account_id: identity.account_id.clone(),
            region: identity.region.clone(),
            role_arn: format!(
                "arn:{partition}:iam::{}:role{ROLE_PATH}{name}",
                identity.account_id
            ),
            workgroup_arn: format!(
                "arn:{partition}:athena:{}:{}:workgroup/{name}",
                identity.region, identity.account_id
            ),
            role_name: name.clone(),
            workgroup: name,
            results_bucket: results.bucket.clone(),
            results_prefix: results.request_prefix(&request),
        }
    }

    /// `s3://bucket/prefix/<request>/`: the workgroup's enforced output location.
    pub fn results_uri(&self) -> String {
        format!("s3://{}/{}", self.results_bucket, self.results_prefix)
    }
}

/// Keeps `[\w+=,.@-]` (what STS allows), replaces everything else with `-`.
fn sanitize(input: &str) -> String {
    input
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `RoleSessionName`: who and which request, shown in CloudTrail as
/// `assumed-role/lakegate-<id>/<session name>`. 2–64 characters.
pub fn session_name(user: &str, request: RequestId) -> String {
    let short = request.0.simple().to_string();
    let short = &short[..8];
    let mut user = sanitize(user);
    user.truncate(64 - 1 - short.len());
    if user.is_empty() {
        user.push_str("user");
    }
    format!("{user}-{short}")
}

/// `SourceIdentity`: the person, carried into CloudTrail and through role chains.
/// 2–64 characters of `[\w+=,.@-]`, never starting with `aws:`.
pub fn source_identity(user: &str) -> String {
    let mut s = sanitize(user);
    s.truncate(64);
    while s.len() < 2 {
        s.push('_');
    }
    s
}

/// A tag value IAM and Athena accept: letters, digits, spaces and `_.:/=+-@`, at most 256
/// characters; anything else becomes `_`.
pub fn tag_value(input: &str) -> String {
    input
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn id() -> RequestId {
        RequestId(Uuid::parse_str("0b9f3f8e-8c1a-4f7e-9a55-2f6c1d2e3a4b").unwrap())
    }

    #[test]
    fn names_derive_from_the_request() {
        let identity = CloudIdentity {
            account_id: "123456789012".into(),
            region: "eu-west-1".into(),
            broker_principal_arn: "arn:aws:iam::123456789012:role/broker".into(),
        };
        let results = ResultsLocation::parse("s3://results/athena/").unwrap();
        let g = GrantResources::derive(id(), &identity, &results);
        assert_eq!(g.role_name, "lakegate-0b9f3f8e-8c1a-4f7e-9a55-2f6c1d2e3a4b");
        assert!(g.role_name.len() <= 64);
        assert_eq!(
            g.role_arn,
            "arn:aws:iam::123456789012:role/lakegate/lakegate-0b9f3f8e-8c1a-4f7e-9a55-2f6c1d2e3a4b"
        );
        assert_eq!(
            g.workgroup_arn,
            "arn:aws:athena:eu-west-1:123456789012:workgroup/lakegate-0b9f3f8e-8c1a-4f7e-9a55-2f6c1d2e3a4b"
        );
        assert_eq!(
            g.results_uri(),
            "s3://results/athena/0b9f3f8e-8c1a-4f7e-9a55-2f6c1d2e3a4b/"
        );
    }

    #[test]
    fn arns_are_written_in_the_brokers_partition() {
        let identity = CloudIdentity {
            account_id: "123456789012".into(),
            region: "cn-north-1".into(),
            broker_principal_arn: "arn:aws-cn:iam::123456789012:role/broker".into(),
        };
        let results = ResultsLocation::parse("s3://results/athena/").unwrap();
        let g = GrantResources::derive(id(), &identity, &results);
        assert!(g.role_arn.starts_with("arn:aws-cn:iam::"), "{}", g.role_arn);
        assert!(g.workgroup_arn.starts_with("arn:aws-cn:athena:cn-north-1:"));
        let policy = crate::iam_policy::access_policy(&g, &["sales".into()]);
        assert!(!policy.contains("arn:aws:"), "{policy}");
        assert_eq!(partition_of("arn:aws-us-gov:iam::1:user/b"), "aws-us-gov");
        assert_eq!(partition_of("not an arn"), "aws");
    }

    #[test]
    fn session_names_fit_sts_rules() {
        assert_eq!(
            session_name("alice@example.com", id()),
            "alice@example.com-0b9f3f8e"
        );
        assert_eq!(session_name("ä b/c", id()), "--b-c-0b9f3f8e");
        let long = session_name(&"x".repeat(200), id());
        assert_eq!(long.len(), 64);
        assert_eq!(session_name("", id()), "user-0b9f3f8e");
    }

    #[test]
    fn tag_values_fit_aws_rules() {
        assert_eq!(tag_value("o'brien+x@example.com"), "o_brien+x@example.com");
        assert_eq!(tag_value(&"é".repeat(300)).chars().count(), 256);
    }

    #[test]
    fn source_identities_fit_sts_rules() {
        assert_eq!(source_identity("aws:root"), "aws-root");
        assert_eq!(source_identity("a"), "a_");
        assert_eq!(source_identity(&"y".repeat(100)).len(), 64);
    }
}
