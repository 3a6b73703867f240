//! STS: who the broker is, and sessions of the ephemeral roles.

use aws_sdk_sts::Client;
use aws_sdk_sts::types::Tag;
use lakegate_domain::ports::{CloudError, SessionCredentials, SessionSpec};
use time::OffsetDateTime;

use crate::error::classify;

pub(crate) struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

pub(crate) async fn caller_identity(sts: &Client) -> Result<CallerIdentity, CloudError> {
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify("sts:GetCallerIdentity", e))?;
    match (out.account(), out.arn()) {
        (Some(account), Some(arn)) => Ok(CallerIdentity {
            account: account.to_owned(),
            arn: arn.to_owned(),
        }),
        _ => Err(CloudError::Other(
            "sts:GetCallerIdentity returned no account".into(),
        )),
    }
}

/// The IAM principal to trust for a caller ARN: a user as is; an assumed-role session as its
/// role (`arn:aws:sts::A:assumed-role/R/S` → `arn:aws:iam::A:role/R`; a role path, if any, is
/// not visible here and must be configured explicitly).
pub(crate) fn principal_of(account: &str, arn: &str) -> String {
    if let Some(rest) = arn.split(":assumed-role/").nth(1) {
        let role = rest.split('/').next().unwrap_or(rest);
        let partition = lakegate_domain::naming::partition_of(arn);
        return format!("arn:{partition}:iam::{account}:role/{role}");
    }
    arn.to_owned()
}

pub(crate) async fn assume_role(
    sts: &Client,
    spec: &SessionSpec,
) -> Result<SessionCredentials, CloudError> {
    let tags = spec
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CloudError::Other(format!("session tag: {e}")))?;
    let out = sts
        .assume_role()
        .role_arn(&spec.role_arn)
        .role_session_name(&spec.session_name)
        .duration_seconds(spec.duration_seconds)
        .policy(&spec.session_policy)
        .source_identity(&spec.source_identity)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| classify("sts:AssumeRole", e))?;
    let c = out
        .credentials()
        .ok_or_else(|| CloudError::Other("sts:AssumeRole returned no credentials".into()))?;
    let exp = c.expiration();
    let expiration = OffsetDateTime::from_unix_timestamp(exp.secs())
        .map_err(|e| CloudError::Other(format!("sts:AssumeRole expiration: {e}")))?
        + time::Duration::nanoseconds(i64::from(exp.subsec_nanos()));
    Ok(SessionCredentials {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: c.secret_access_key().to_owned(),
        session_token: c.session_token().to_owned(),
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::principal_of;

    #[test]
    fn trusted_principal_of_a_caller() {
        assert_eq!(
            principal_of("1", "arn:aws:sts::1:assumed-role/broker/i-123"),
            "arn:aws:iam::1:role/broker"
        );
        assert_eq!(
            principal_of("1", "arn:aws:iam::1:user/broker"),
            "arn:aws:iam::1:user/broker"
        );
        assert_eq!(
            principal_of("1", "arn:aws-cn:sts::1:assumed-role/broker/i-123"),
            "arn:aws-cn:iam::1:role/broker"
        );
    }
}
