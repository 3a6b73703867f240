//! People who have signed in, as of their latest sign-in: how someone known elsewhere only by
//! a verified email (a Slack user) is found as a person with groups.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::error::StoreError;

/// A person as last seen.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Person {
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub seen_at: OffsetDateTime,
}

/// Records `person` as seen now (their latest sign-in, or their groups confirmed).
pub async fn seen(conn: &mut PgConnection, person: &Person) -> Result<(), StoreError> {
    sqlx::query(
        "insert into person (subject, email, name, groups, seen_at) values ($1, $2, $3, $4, $5)
         on conflict (subject) do update set email = excluded.email, name = excluded.name,
             groups = excluded.groups, seen_at = excluded.seen_at",
    )
    .bind(&person.subject)
    .bind(&person.email)
    .bind(&person.name)
    .bind(&person.groups)
    .bind(person.seen_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Only the groups of `subject` changed (confirmed by the identity provider at `at`).
pub async fn groups_seen(
    conn: &mut PgConnection,
    subject: &str,
    groups: &[String],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("update person set groups = $2, seen_at = $3 where subject = $1")
        .bind(subject)
        .bind(groups)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The person most recently seen with `email` (compared without case).
pub async fn find_by_email(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<Person>, StoreError> {
    Ok(sqlx::query_as(
        "select subject, email, name, groups, seen_at from person
         where lower(email) = lower($1) order by seen_at desc limit 1",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?)
}
