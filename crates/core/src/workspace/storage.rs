//! Every SQL statement of a team workspace on PostgreSQL: its schema, the group roles and what
//! each may write, members' logins and their role, who a connection is. The policy (which
//! tables each role writes) is `super`'s; this file only says it in SQL.

use milc_api::workspace::MemberRole;
use sqlx::PgPool;

use crate::db::Result;

/// A PostgreSQL identifier, quoted.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `<schema>_<role>`: a workspace's group role.
pub fn role_name(schema: &str, role: MemberRole) -> String {
    format!("{schema}_{}", role.as_str())
}

pub async fn create_schema(pool: &PgPool, schema: &str) -> Result<()> {
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))
        .execute(pool)
        .await?;
    Ok(())
}

/// What a role may write besides what the role before it may.
pub struct Writes<'a> {
    pub rater: Vec<&'a str>,
    pub editor: Vec<&'a str>,
}

pub async fn tables(pool: &PgPool, schema: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    .bind(schema)
    .fetch_all(pool)
    .await?)
}

/// Creates the four group roles (once per cluster), each granted the one before it, and
/// grants them: viewers read the schema, raters also write `writes.rater`, editors also
/// `writes.editor`, admins every table; in one transaction.
pub async fn grant_roles(pool: &PgPool, schema: &str, writes: &Writes<'_>) -> Result<()> {
    let s = ident(schema);
    let role = |r| ident(&role_name(schema, r));
    let mut stmts = Vec::new();
    let mut previous: Option<String> = None;
    for r in MemberRole::ALL {
        stmts.push(format!(
            "DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            role(r)
        ));
        if let Some(p) = &previous {
            stmts.push(format!("GRANT {p} TO {}", role(r)));
        }
        previous = Some(role(r));
    }
    let (viewer, rater, editor, admin) = (
        role(MemberRole::Viewer),
        role(MemberRole::Rater),
        role(MemberRole::Editor),
        role(MemberRole::Admin),
    );
    stmts.push(format!("GRANT USAGE ON SCHEMA {s} TO {viewer}"));
    stmts.push(format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {viewer}"
    ));
    stmts.push(format!(
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {rater}"
    ));
    for t in &writes.rater {
        stmts.push(format!(
            "GRANT INSERT, UPDATE ON {s}.{} TO {rater}",
            ident(t)
        ));
    }
    for t in &writes.editor {
        stmts.push(format!(
            "GRANT INSERT, UPDATE, DELETE ON {s}.{} TO {editor}",
            ident(t)
        ));
    }
    stmts.push(format!(
        "GRANT INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {s} TO {admin}"
    ));
    let mut tx = pool.begin().await?;
    for st in &stmts {
        sqlx::query(st).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Gives login `user` (created without a password if missing) exactly `role` among the
/// workspace's roles, in one transaction.
pub async fn set_member(pool: &PgPool, schema: &str, user: &str, role: MemberRole) -> Result<()> {
    let u = ident(user);
    let mut tx = pool.begin().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE ROLE {u} LOGIN"))
            .execute(&mut *tx)
            .await?;
    }
    for r in MemberRole::ALL {
        sqlx::query(&format!("REVOKE {} FROM {u}", ident(&role_name(schema, r))))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("GRANT {} TO {u}", ident(&role_name(schema, role))))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// (login, group role) for every login granted one of the workspace's roles.
pub async fn members(pool: &PgPool, schema: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT m.rolname::text, g.rolname::text FROM pg_auth_members a
         JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
         WHERE g.rolname LIKE $1 AND m.rolcanlogin ORDER BY 1",
    )
    .bind(format!("{schema}\\_%"))
    .fetch_all(pool)
    .await?)
}

/// The connection's user, and whether it holds each of the workspace's roles (in
/// [`MemberRole::ALL`]'s order), directly or not: one round trip, asked on every focus of the
/// window.
pub async fn login_and_roles(pool: &PgPool, schema: &str) -> Result<(String, Vec<bool>)> {
    let roles: Vec<String> = MemberRole::ALL
        .iter()
        .map(|r| role_name(schema, *r))
        .collect();
    Ok(sqlx::query_as(
        "SELECT current_user::text,
                ARRAY(SELECT pg_has_role(current_user, r, 'MEMBER')
                      FROM unnest($1::text[]) WITH ORDINALITY AS t (r, n) ORDER BY n)",
    )
    .bind(roles)
    .fetch_one(pool)
    .await?)
}

/// The newest migration applied to the workspace (an error when it has no tables yet).
pub async fn schema_version(c: &mut crate::db::DbConn) -> Result<i64> {
    crate::db::query_scalar("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(c)
        .await
}
