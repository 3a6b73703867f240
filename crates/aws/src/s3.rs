//! S3: deleting a grant's query results at teardown (docs/aws.md §12, §18).

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use lakegate_domain::ports::CloudError;

use crate::error::{classify, code_of};

/// `s3://bucket/some/prefix/` → `("bucket", "some/prefix/")`. Refused unless the prefix is a
/// whole folder below the bucket's root: teardown must never empty a bucket.
fn split(uri: &str) -> Result<(&str, &str), CloudError> {
    let refuse = || {
        CloudError::Rejected(format!(
            "results location `{uri}` is not an s3://bucket/prefix/ folder; refusing to delete under it"
        ))
    };
    let rest = uri.strip_prefix("s3://").ok_or_else(refuse)?;
    let (bucket, prefix) = rest.split_once('/').ok_or_else(refuse)?;
    if bucket.is_empty() || prefix.is_empty() || !prefix.ends_with('/') || prefix.starts_with('/') {
        return Err(refuse());
    }
    Ok((bucket, prefix))
}

/// Deletes every object under `uri` (a grant's results prefix), 1,000 per call; returns how
/// many. A missing bucket or an empty prefix is success: already gone.
pub(crate) async fn delete_prefix(s3: &Client, uri: &str) -> Result<u64, CloudError> {
    let (bucket, prefix) = split(uri)?;
    let mut deleted = 0;
    loop {
        // Listed from the start each round: what was deleted is gone from the listing.
        let page = match s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if code_of(&e) == Some("NoSuchBucket") => return Ok(deleted),
            Err(e) => return Err(classify("s3:ListObjectsV2", e)),
        };
        let keys: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter(|k| k.starts_with(prefix))
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if keys.is_empty() {
            return Ok(deleted);
        }
        let count = keys.len() as u64;
        let delete = Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
            .map_err(|e| CloudError::Rejected(format!("s3:DeleteObjects: {e}")))?;
        let out = match s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code_of(&e) == Some("NoSuchBucket") => return Ok(deleted),
            Err(e) => return Err(classify("s3:DeleteObjects", e)),
        };
        if let Some(failed) = out.errors().first() {
            // Retried by the worker: an object S3 could not delete now stays listed.
            return Err(CloudError::Transient(format!(
                "s3:DeleteObjects: could not delete {} object(s), first {}: {}",
                out.errors().len(),
                failed.key().unwrap_or("?"),
                failed
                    .message()
                    .or(failed.code())
                    .unwrap_or("no reason given")
            )));
        }
        deleted += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_folder_below_the_bucket_root_is_deleted() {
        assert_eq!(
            split("s3://results/lakegate/abc/").unwrap(),
            ("results", "lakegate/abc/")
        );
        for bad in [
            "s3://results/",
            "s3://results",
            "s3:///lakegate/",
            "s3://results/lakegate/abc",
            "s3://results//",
            "https://results/lakegate/",
        ] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }
}
