//! A team workspace on PostgreSQL: one schema per workspace holding the console's tables
//! (`migrations-pg/`, applied at open like the SQLite ones), and four group roles the database
//! itself enforces (GRANTs, not checks in this code): `<schema>_viewer` reads everything,
//! `_rater` also votes, `_editor` also writes prompts, datasets, runs, comparisons, use cases and
//! the calls they make, `_admin` writes everything (endpoints, routes, keys, budgets, prices,
//! settings). Each role is granted the one before it. Members are database logins granted one of
//! them. A refusal by the database reads as what the member's role allows.

use milc_api::workspace::{Member, MemberRole};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::Error;

/// Tables only admins write: what calls go to, what they cost, who may call the gateway, and
/// the workspace's settings.
pub const ADMIN_ONLY: &[&str] = &[
    "endpoints",
    "prices",
    "recomputations",
    "budgets",
    "routes",
    "route_arms",
    "gateway_keys",
    "canary_events",
    "otel_export",
    "meta",
];

/// Tables raters write (besides what viewers read).
pub const RATER_WRITES: &[&str] = &["votes"];

/// An open workspace: a pool whose connections see the workspace's schema.
pub struct Workspace {
    pool: PgPool,
    schema: String,
}

/// Whether `db` names a PostgreSQL server (a team workspace) rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `milc_<name>`: a workspace's schema, from a name of lower-case letters, digits and `_`.
pub fn schema_of(name: &str) -> Result<String, Error> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(Error::invalid(
            "workspace",
            format!("'{name}' is not a workspace name: 1 to 40 of a-z, 0-9 and _"),
        ));
    }
    Ok(format!("milc_{name}"))
}

/// A PostgreSQL identifier, quoted.
fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn role_name(schema: &str, role: MemberRole) -> String {
    format!("{schema}_{}", role.as_str())
}

fn sql(e: sqlx::Error) -> Error {
    Error::Store(crate::StoreError::Sql(e))
}

impl Workspace {
    /// Opens workspace `name` on the PostgreSQL server at `url`, its schema first in the search
    /// path; applies any migration not yet applied.
    pub async fn open(url: &str, name: &str) -> Result<Self, Error> {
        let schema = schema_of(name)?;
        let opts: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|e| Error::invalid("database", format!("'{url}': {e}")))?
            .options([("search_path", schema.as_str())])
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(|e| Error::invalid("database", format!("cannot connect: {e}")))?;
        Ok(Self { pool, schema })
    }

    /// Creates workspace `name` (its schema, tables and roles) as the connecting user, who
    /// owns it; running it again brings an existing workspace up to date (new migrations, the
    /// grants on new tables).
    pub async fn init(url: &str, name: &str) -> Result<Self, Error> {
        let ws = Self::open(url, name).await?;
        sqlx::query(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            ident(&ws.schema)
        ))
        .execute(&ws.pool)
        .await
        .map_err(sql)?;
        sqlx::migrate!("../../migrations-pg")
            .run(&ws.pool)
            .await
            .map_err(|e| Error::Store(crate::StoreError::Migrate(e)))?;
        ws.grant_roles().await?;
        Ok(ws)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The four group roles and what each may do, on every table the schema has now.
    async fn grant_roles(&self) -> Result<(), Error> {
        let s = ident(&self.schema);
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
        )
        .bind(&self.schema)
        .fetch_all(&self.pool)
        .await
        .map_err(sql)?;
        let mut stmts = Vec::new();
        let mut previous: Option<String> = None;
        for role in MemberRole::ALL {
            let r = role_name(&self.schema, role);
            // Roles are cluster-wide: created once, granted again on every init.
            stmts.push(format!(
                "DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
                ident(&r)
            ));
            if let Some(p) = &previous {
                stmts.push(format!("GRANT {} TO {}", ident(p), ident(&r)));
            }
            previous = Some(r);
        }
        let viewer = ident(&role_name(&self.schema, MemberRole::Viewer));
        let rater = ident(&role_name(&self.schema, MemberRole::Rater));
        let editor = ident(&role_name(&self.schema, MemberRole::Editor));
        let admin = ident(&role_name(&self.schema, MemberRole::Admin));
        stmts.push(format!("GRANT USAGE ON SCHEMA {s} TO {viewer}"));
        stmts.push(format!(
            "GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {viewer}"
        ));
        stmts.push(format!(
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {rater}"
        ));
        for t in tables.iter().filter(|t| RATER_WRITES.contains(&t.as_str())) {
            stmts.push(format!(
                "GRANT INSERT, UPDATE ON {s}.{} TO {rater}",
                ident(t)
            ));
        }
        for t in tables.iter().filter(|t| !ADMIN_ONLY.contains(&t.as_str())) {
            stmts.push(format!(
                "GRANT INSERT, UPDATE, DELETE ON {s}.{} TO {editor}",
                ident(t)
            ));
        }
        stmts.push(format!(
            "GRANT INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {s} TO {admin}"
        ));
        let mut tx = self.pool.begin().await.map_err(sql)?;
        for st in &stmts {
            sqlx::query(st).execute(&mut *tx).await.map_err(sql)?;
        }
        tx.commit().await.map_err(sql)?;
        Ok(())
    }

    /// Makes login `user` a member with `role` (and no other role in this workspace); the
    /// login is created, without a password, when it does not exist yet.
    pub async fn grant(&self, user: &str, role: MemberRole) -> Result<Member, Error> {
        if user.trim().is_empty() {
            return Err(Error::invalid("user", "name a database login"));
        }
        let u = ident(user);
        let mut tx = self.pool.begin().await.map_err(sql)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(user)
                .fetch_one(&mut *tx)
                .await
                .map_err(sql)?;
        if !exists {
            sqlx::query(&format!("CREATE ROLE {u} LOGIN"))
                .execute(&mut *tx)
                .await
                .map_err(sql)?;
        }
        for r in MemberRole::ALL {
            sqlx::query(&format!(
                "REVOKE {} FROM {u}",
                ident(&role_name(&self.schema, r))
            ))
            .execute(&mut *tx)
            .await
            .map_err(sql)?;
        }
        sqlx::query(&format!(
            "GRANT {} TO {u}",
            ident(&role_name(&self.schema, role))
        ))
        .execute(&mut *tx)
        .await
        .map_err(sql)?;
        tx.commit().await.map_err(sql)?;
        Ok(Member {
            user: user.to_owned(),
            role,
        })
    }

    /// Every login granted a role in this workspace.
    pub async fn members(&self) -> Result<Vec<Member>, Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.rolname::text, g.rolname::text FROM pg_auth_members a
             JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
             WHERE g.rolname LIKE $1 AND m.rolcanlogin ORDER BY 1",
        )
        .bind(format!("{}\\_%", self.schema))
        .fetch_all(&self.pool)
        .await
        .map_err(sql)?;
        Ok(rows
            .into_iter()
            .filter_map(|(user, group)| {
                let role = group.strip_prefix(&format!("{}_", self.schema))?;
                Some(Member {
                    user,
                    role: MemberRole::parse(role)?,
                })
            })
            .collect())
    }

    /// Who the connection's user is here: the highest role it holds (directly or not), or
    /// `None` when it holds none (the owner who ran `init` holds them all through ownership).
    pub async fn whoami(&self) -> Result<(String, Option<MemberRole>), Error> {
        let user: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&self.pool)
            .await
            .map_err(sql)?;
        let mut held = None;
        for r in MemberRole::ALL {
            let has: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'MEMBER')")
                .bind(role_name(&self.schema, r))
                .fetch_one(&self.pool)
                .await
                .map_err(sql)?;
            if has {
                held = Some(r);
            }
        }
        Ok((user, held))
    }
}

/// The database's refusal of a write, as a member reads it: what their role allows, then the
/// database's own words. Any other error is kept as it is.
pub fn explain(e: sqlx::Error, user: &str, role: Option<MemberRole>) -> Error {
    let denied = matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42501"));
    if !denied {
        return sql(e);
    }
    let what = role.map_or("holds no role in this workspace".to_owned(), |r| {
        format!("is a {} here: {}", r.as_str(), r.may())
    });
    Error::invalid(
        "permission",
        format!("{user} {what} (the database refused: {})", db_message(&e)),
    )
}

fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        e => e.to_string(),
    }
}
