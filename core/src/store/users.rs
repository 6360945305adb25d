//! Accounts: local (password hash) and, later, SSO users keyed by issuer + subject.
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::unix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    fn parse(text: &str) -> Role {
        if text == "admin" {
            Role::Admin
        } else {
            Role::Viewer
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub email: Option<String>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    email: Option<String>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            username: row.username,
            role: Role::parse(&row.role),
            email: row.email,
        }
    }
}

/// A local account with its password hash, as needed to check a sign-in.
#[derive(Debug, Clone)]
pub struct LocalCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    id: i64,
    username: String,
    role: String,
    email: Option<String>,
    password_hash: Option<String>,
}

pub async fn find_local(db: &SqlitePool, username: &str) -> Result<Option<LocalCredentials>, sqlx::Error> {
    let row: Option<CredentialsRow> = sqlx::query_as(
        "SELECT id, username, role, email, password_hash FROM users WHERE username = ?1 AND oidc_subject IS NULL",
    )
    .bind(username)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| LocalCredentials {
        password_hash: row.password_hash,
        user: User {
            id: row.id,
            username: row.username,
            role: Role::parse(&row.role),
            email: row.email,
        },
    }))
}

pub async fn find_by_id(db: &SqlitePool, id: i64) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> = sqlx::query_as("SELECT id, username, role, email FROM users WHERE id = ?1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(User::from))
}

pub async fn any_local_admin(db: &SqlitePool) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM users WHERE role = 'admin' AND password_hash IS NOT NULL LIMIT 1")
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Creates the first admin, unless an admin with a password already exists (then `None`).
/// The check and the insert are one statement, so two racing setup requests cannot both win.
pub async fn create_first_admin(
    db: &SqlitePool,
    username: &str,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<User>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, created_at, updated_at)
         SELECT ?1, ?2, 'admin', ?3, ?3
         WHERE NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND password_hash IS NOT NULL)
         RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(unix(now))
    .fetch_optional(db)
    .await?;
    Ok(id.map(|id| User {
        id,
        username: username.to_owned(),
        role: Role::Admin,
        email: None,
    }))
}

/// Creates the local admin `username`, or sets its password and admin role when it exists.
pub async fn upsert_local_admin(
    db: &SqlitePool,
    username: &str,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<User, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role, created_at, updated_at)
         VALUES (?1, ?2, 'admin', ?3, ?3)
         ON CONFLICT (username) WHERE oidc_subject IS NULL DO UPDATE SET password_hash = excluded.password_hash, role = 'admin',
             updated_at = excluded.updated_at
         RETURNING id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(unix(now))
    .fetch_one(db)
    .await?;
    Ok(User {
        id,
        username: username.to_owned(),
        role: Role::Admin,
        email: None,
    })
}

/// Creates or updates the SSO user identified by issuer + subject (never by username).
pub async fn upsert_oidc(
    db: &SqlitePool,
    issuer: &str,
    subject: &str,
    username: &str,
    email: Option<&str>,
    role: Role,
    now: OffsetDateTime,
) -> Result<User, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, email, role, oidc_issuer, oidc_subject, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (oidc_issuer, oidc_subject) DO UPDATE SET username = excluded.username,
             email = excluded.email, role = excluded.role, updated_at = excluded.updated_at
         RETURNING id",
    )
    .bind(username)
    .bind(email)
    .bind(role.as_str())
    .bind(issuer)
    .bind(subject)
    .bind(unix(now))
    .fetch_one(db)
    .await?;
    Ok(User {
        id,
        username: username.to_owned(),
        role,
        email: email.map(str::to_owned),
    })
}

pub async fn set_password_hash(
    db: &SqlitePool,
    user_id: i64,
    hash: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1 AND oidc_subject IS NULL")
        .bind(user_id)
        .bind(hash)
        .bind(unix(now))
        .execute(db)
        .await?;
    Ok(())
}

pub async fn password_hash_by_id(db: &SqlitePool, user_id: i64) -> Result<Option<String>, sqlx::Error> {
    let hash: Option<Option<String>> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?1")
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    Ok(hash.flatten())
}

/// The stored hash of a local account, to tell whether an environment password changed.
pub async fn password_hash_of(db: &SqlitePool, username: &str) -> Result<Option<String>, sqlx::Error> {
    let hash: Option<Option<String>> =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = ?1 AND oidc_subject IS NULL")
            .bind(username)
            .fetch_optional(db)
            .await?;
    Ok(hash.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_in_memory;

    #[tokio::test]
    async fn first_admin_can_be_created_only_once() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        let now = OffsetDateTime::now_utc();
        assert!(!any_local_admin(&db).await?);
        let first = create_first_admin(&db, "admin", "$argon2id$x", now).await?;
        assert!(first.is_some());
        assert!(create_first_admin(&db, "other", "$argon2id$y", now).await?.is_none());
        assert!(any_local_admin(&db).await?);
        let found = find_local(&db, "ADMIN").await?.map(|c| c.user.username);
        assert_eq!(found.as_deref(), Some("admin"), "usernames match case-insensitively");
        Ok(())
    }

    #[tokio::test]
    async fn sso_users_are_keyed_by_issuer_and_subject() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        let now = OffsetDateTime::now_utc();
        create_first_admin(&db, "alice", "hash", now).await?;
        // Same name as a local account, and renamed at the provider later: still one SSO user.
        let first = upsert_oidc(&db, "https://idp", "sub-1", "alice", None, Role::Viewer, now).await?;
        let renamed = upsert_oidc(&db, "https://idp", "sub-1", "alice2", Some("a@x.io"), Role::Admin, now).await?;
        assert_eq!(first.id, renamed.id);
        let other_idp = upsert_oidc(&db, "https://other", "sub-1", "alice", None, Role::Viewer, now).await?;
        assert_ne!(first.id, other_idp.id);
        assert_eq!(
            find_by_id(&db, first.id).await?.map(|u| u.username),
            Some("alice2".to_owned())
        );
        Ok(())
    }

    #[tokio::test]
    async fn upsert_updates_the_password_of_an_existing_admin() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        let now = OffsetDateTime::now_utc();
        let a = upsert_local_admin(&db, "admin", "hash-1", now).await?;
        let b = upsert_local_admin(&db, "admin", "hash-2", now).await?;
        assert_eq!(a.id, b.id);
        assert_eq!(password_hash_of(&db, "admin").await?.as_deref(), Some("hash-2"));
        Ok(())
    }
}
