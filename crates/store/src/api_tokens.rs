//! Personal API tokens: stored as their SHA-256 only, listed for their owner, revoked by them.

use lakegate_domain::api_token::Scope;
use lakegate_domain::request::Requester;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;

/// A token as its owner sees it on the settings page (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: Uuid,
    pub owner: Requester,
    /// The owner's groups as last seen at sign-in: what the token acts with.
    pub owner_groups: Vec<String>,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
}

pub struct NewApiToken<'a> {
    pub id: Uuid,
    pub owner: &'a Requester,
    pub owner_groups: &'a [String],
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub token_hash: &'a [u8],
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct Row {
    token_id: Uuid,
    owner_subject: String,
    owner_email: String,
    owner_name: Option<String>,
    owner_groups: Vec<String>,
    name: String,
    scopes: Vec<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
}

impl Row {
    fn into_domain(self) -> Result<ApiToken, StoreError> {
        let scopes = self
            .scopes
            .iter()
            .map(|s| {
                Scope::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown scope {s}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(ApiToken {
            id: self.token_id,
            owner: Requester {
                subject: self.owner_subject,
                email: self.owner_email,
                name: self.owner_name,
            },
            owner_groups: self.owner_groups,
            name: self.name,
            scopes,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        })
    }
}

const COLUMNS: &str =
    "token_id, owner_subject, owner_email, owner_name, owner_groups, name, scopes,
    created_at, expires_at, revoked_at, last_used_at";

pub async fn insert(conn: &mut PgConnection, t: NewApiToken<'_>) -> Result<(), StoreError> {
    let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
    sqlx::query(
        "insert into api_token (token_id, owner_subject, owner_email, owner_name, owner_groups,
             name, scopes, token_hash, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id)
    .bind(&t.owner.subject)
    .bind(&t.owner.email)
    .bind(&t.owner.name)
    .bind(t.owner_groups)
    .bind(t.name)
    .bind(&scopes)
    .bind(t.token_hash)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A person's tokens, newest first, revoked and expired ones included (for the record).
pub async fn list_for_owner(
    conn: &mut PgConnection,
    owner_subject: &str,
) -> Result<Vec<ApiToken>, StoreError> {
    sqlx::query_as::<_, Row>(&format!(
        "select {COLUMNS} from api_token where owner_subject = $1
         order by created_at desc, token_id"
    ))
    .bind(owner_subject)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Row::into_domain)
    .collect()
}

/// How many tokens a person has that still work at `at`.
pub async fn count_usable(
    conn: &mut PgConnection,
    owner_subject: &str,
    at: OffsetDateTime,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "select count(*) from api_token
         where owner_subject = $1 and revoked_at is null and expires_at > $2",
    )
    .bind(owner_subject)
    .bind(at)
    .fetch_one(conn)
    .await?)
}

/// The token whose hash this is, if it still works at `at`; its last use becomes `at`.
pub async fn use_by_hash(
    conn: &mut PgConnection,
    token_hash: &[u8],
    at: OffsetDateTime,
) -> Result<Option<ApiToken>, StoreError> {
    sqlx::query_as::<_, Row>(&format!(
        "update api_token set last_used_at = $2
         where token_hash = $1 and revoked_at is null and expires_at > $2
         returning {COLUMNS}"
    ))
    .bind(token_hash)
    .bind(at)
    .fetch_optional(conn)
    .await?
    .map(Row::into_domain)
    .transpose()
}

/// Why a token does not work: `None` when no token has this hash.
pub async fn state_by_hash(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<(OffsetDateTime, Option<OffsetDateTime>)>, StoreError> {
    Ok(
        sqlx::query_as("select expires_at, revoked_at from api_token where token_hash = $1")
            .bind(token_hash)
            .fetch_optional(conn)
            .await?,
    )
}

/// The owner revokes one of their tokens. `None`: they have no such token; `Some(false)`: it
/// was revoked already.
pub async fn revoke(
    conn: &mut PgConnection,
    owner_subject: &str,
    id: Uuid,
    at: OffsetDateTime,
) -> Result<Option<(String, bool)>, StoreError> {
    let row: Option<(String, Option<OffsetDateTime>)> = sqlx::query_as(
        "select name, revoked_at from api_token where token_id = $1 and owner_subject = $2 for update",
    )
    .bind(id)
    .bind(owner_subject)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((name, revoked_at)) = row else {
        return Ok(None);
    };
    if revoked_at.is_some() {
        return Ok(Some((name, false)));
    }
    sqlx::query("update api_token set revoked_at = $2 where token_id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(Some((name, true)))
}

/// The owner signed in again: their tokens act with the groups seen now.
pub async fn refresh_owner_groups(
    conn: &mut PgConnection,
    owner_subject: &str,
    groups: &[String],
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "update api_token set owner_groups = $2
         where owner_subject = $1 and revoked_at is null and owner_groups <> $2",
    )
    .bind(owner_subject)
    .bind(groups)
    .execute(conn)
    .await?
    .rows_affected())
}
