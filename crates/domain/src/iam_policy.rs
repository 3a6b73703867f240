//! The IAM policy documents lakegate writes: the role's trust policy, what its sessions may do,
//! the session policy that ends at the grant's expiry, and the deny that cuts off old sessions.
//! Kept here, as plain JSON, so they are unit-tested without AWS.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::naming::GrantResources;

/// Athena actions a grant's sessions need in their own workgroup.
const ATHENA_WORKGROUP_ACTIONS: &[&str] = &[
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:GetQueryRuntimeStatistics",
    "athena:StopQueryExecution",
    "athena:ListQueryExecutions",
    "athena:BatchGetQueryExecution",
    "athena:GetWorkGroup",
];

/// Catalog browsing through Athena (what SQL clients and BI tools call).
const ATHENA_CATALOG_ACTIONS: &[&str] = &[
    "athena:GetDataCatalog",
    "athena:ListDatabases",
    "athena:GetDatabase",
    "athena:ListTableMetadata",
    "athena:GetTableMetadata",
];

const GLUE_READ_ACTIONS: &[&str] = &[
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
];

const S3_RESULTS_OBJECT_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
];

fn rfc3339(t: OffsetDateTime) -> String {
    // Seconds precision, `Z`: what IAM condition keys compare against.
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Lets the broker, and only the broker, assume the role, tag the session and set its source
/// identity (both need explicit trust: docs/aws.md §3).
pub fn trust_policy(broker_principal_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LakegateBroker",
            "Effect": "Allow",
            "Principal": {"AWS": broker_principal_arn},
            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
        }]
    })
    .to_string()
}

/// What a grant's sessions may do: Athena in the grant's own workgroup, Glue reads of the
/// requested databases, Lake Formation data access (Lake Formation itself decides which
/// tables and columns), S3 only under the grant's own results prefix.
pub fn access_policy(g: &GrantResources, databases: &[String]) -> String {
    let glue_prefix = format!("arn:{}:glue:{}:{}", g.partition, g.region, g.account_id);
    let mut glue_resources = vec![Value::from(format!("{glue_prefix}:catalog"))];
    let mut dbs: Vec<&str> = databases.iter().map(String::as_str).collect();
    dbs.push("default");
    dbs.sort_unstable();
    dbs.dedup();
    for db in dbs {
        glue_resources.push(format!("{glue_prefix}:database/{db}").into());
        glue_resources.push(format!("{glue_prefix}:table/{db}/*").into());
    }
    let bucket_arn = format!("arn:{}:s3:::{}", g.partition, g.results_bucket);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AthenaOwnWorkgroup",
                "Effect": "Allow",
                "Action": ATHENA_WORKGROUP_ACTIONS,
                "Resource": g.workgroup_arn,
            },
            {
                "Sid": "AthenaCatalog",
                "Effect": "Allow",
                "Action": ATHENA_CATALOG_ACTIONS,
                "Resource": format!("arn:{}:athena:{}:{}:datacatalog/AwsDataCatalog", g.partition, g.region, g.account_id),
            },
            {
                "Sid": "GlueRead",
                "Effect": "Allow",
                "Action": GLUE_READ_ACTIONS,
                "Resource": glue_resources,
            },
            {
                "Sid": "LakeFormationDataAccess",
                "Effect": "Allow",
                "Action": "lakeformation:GetDataAccess",
                "Resource": "*",
            },
            {
                "Sid": "OwnResultsObjects",
                "Effect": "Allow",
                "Action": S3_RESULTS_OBJECT_ACTIONS,
                "Resource": format!("{bucket_arn}/{}*", g.results_prefix),
            },
            {
                "Sid": "OwnResultsListing",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [format!("{}*", g.results_prefix)]}},
            },
            {
                "Sid": "ResultsBucketLocation",
                "Effect": "Allow",
                "Action": "s3:GetBucketLocation",
                "Resource": bucket_arn,
            },
        ]
    })
    .to_string()
}

/// Passed with every AssumeRole. Effective permissions are the intersection of this and the
/// role's policies, so resource scoping is left to the role policy and this one only adds the
/// clock: after `expires_at` every call is denied, whatever the reaper does (docs/aws.md §7).
/// Stays far below the 2,048-character limit.
pub fn session_policy(expires_at: OffsetDateTime) -> String {
    let actions: Vec<&str> = ATHENA_WORKGROUP_ACTIONS
        .iter()
        .chain(ATHENA_CATALOG_ACTIONS)
        .chain(GLUE_READ_ACTIONS)
        .chain(S3_RESULTS_OBJECT_ACTIONS)
        .chain(&[
            "lakeformation:GetDataAccess",
            "s3:ListBucket",
            "s3:GetBucketLocation",
        ])
        .copied()
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "UntilGrantExpiry",
            "Effect": "Allow",
            "Action": actions,
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": rfc3339(expires_at)}},
        }]
    })
    .to_string()
}

/// Denies everything to every session of the role: written first when a grant is revoked or
/// expires. AWS's recipe denies only sessions issued before the revocation (`aws:TokenIssueTime`,
/// docs/aws.md §8) because the role stays in use; a lakegate role is never used again once revoking
/// begins, so denying all sessions is strictly stronger: it also covers a session minted while
/// the revoke was starting, and any clock skew between lakegate and AWS. Idempotent.
pub fn revoke_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LakegateRevokeAllSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
        }]
    })
    .to_string()
}

/// Denies every session of the role issued before `cutoff` (`aws:TokenIssueTime`, docs/aws.md §8):
/// written when a new credentials token replaces the old one, so sessions handed out under the
/// old token stop working while the grant goes on. Re-written, not added to, on every new token.
pub fn superseded_sessions_policy(cutoff: OffsetDateTime) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LakegateDenySupersededSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": rfc3339(cutoff)}},
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::naming::CloudIdentity;
    use crate::request::RequestId;
    use crate::target::ResultsLocation;

    fn grant() -> GrantResources {
        GrantResources::derive(
            RequestId::new_random(),
            &CloudIdentity {
                account_id: "123456789012".into(),
                region: "us-east-1".into(),
                broker_principal_arn: "arn:aws:iam::123456789012:user/broker".into(),
            },
            &ResultsLocation::parse("s3://results/lakegate/").unwrap(),
        )
    }

    fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    }

    #[test]
    fn access_policy_is_scoped_to_the_grant() {
        let g = grant();
        let doc: Value = serde_json::from_str(&access_policy(&g, &["sales".into()])).unwrap();
        assert_eq!(
            statement(&doc, "AthenaOwnWorkgroup")["Resource"],
            g.workgroup_arn
        );
        let objects = statement(&doc, "OwnResultsObjects")["Resource"]
            .as_str()
            .unwrap();
        assert_eq!(
            objects,
            format!("arn:aws:s3:::results/lakegate/{}/*", g.request)
        );
        let glue = statement(&doc, "GlueRead")["Resource"].to_string();
        assert!(glue.contains("database/sales") && glue.contains("database/default"));
        assert!(!glue.contains("database/hr"));
        // No statement grants anything on every resource except GetDataAccess (which has no
        // resource-level permissions).
        for s in doc["Statement"].as_array().unwrap() {
            if s["Resource"] == "*" {
                assert_eq!(s["Action"], "lakeformation:GetDataAccess");
            }
            assert_eq!(s["Effect"], "Allow");
        }
    }

    #[test]
    fn session_policy_ends_at_expiry_and_fits_sts_limit() {
        let doc = session_policy(datetime!(2026-03-01 12:30:15.5 UTC));
        assert!(doc.len() <= 2048, "{} characters", doc.len());
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(
            v["Statement"][0]["Condition"]["DateLessThan"]["aws:CurrentTime"],
            "2026-03-01T12:30:15Z"
        );
    }

    #[test]
    fn revoke_policy_denies_every_session() {
        let v: Value = serde_json::from_str(&revoke_policy()).unwrap();
        let s = &v["Statement"][0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Action"], "*");
        assert_eq!(s["Resource"], "*");
        assert!(s.get("Condition").is_none(), "no session is exempt");
    }

    #[test]
    fn superseded_sessions_are_those_issued_before_the_cutoff() {
        let doc: Value = serde_json::from_str(&superseded_sessions_policy(datetime!(
            2026-05-01 10:00:30.7 UTC
        )))
        .unwrap();
        let s = statement(&doc, "LakegateDenySupersededSessions");
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Action"], "*");
        assert_eq!(
            s["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-05-01T10:00:30Z"
        );
    }

    #[test]
    fn trust_policy_names_only_the_broker() {
        let v: Value = serde_json::from_str(&trust_policy("arn:aws:iam::1:user/broker")).unwrap();
        assert_eq!(
            v["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::1:user/broker"
        );
        assert_eq!(v["Statement"].as_array().unwrap().len(), 1);
    }
}
