//! A team workspace on PostgreSQL: one schema per workspace holding the console's tables
//! (`migrations-pg/`, applied at open like the SQLite ones), and four group roles the database
//! itself enforces (GRANTs, not checks in this code): `<schema>_viewer` reads everything,
//! `_rater` also votes, `_editor` also writes prompts, datasets, runs, comparisons, use cases and
//! the calls they make, `_admin` writes everything (endpoints, routes, keys, budgets, prices,
//! settings). Each role is granted the one before it. Members are database logins granted one of
//! them. A refusal by the database reads as what the member's role allows.

pub mod storage;

use milc_api::workspace::{Member, MemberRole};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

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
pub const RATER_WRITES: &[&str] = &["votes", "activity"];

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

fn sql(e: sqlx::Error) -> Error {
    Error::Store(e.into())
}

impl Workspace {
    /// Opens workspace `name` on the PostgreSQL server at `url`, its schema first in every
    /// connection's search path (`init` creates it and applies the migrations).
    pub async fn open(url: &str, name: &str) -> Result<Self, Error> {
        let schema = schema_of(name)?;
        let store = crate::db::Store::open_pg(url, &schema, None).await?;
        let pool = store.pg_pool().expect("opened on PostgreSQL").clone();
        Ok(Self { pool, schema })
    }

    /// Creates workspace `name` (its schema, tables and roles) as the connecting user, who
    /// owns it; running it again brings an existing workspace up to date (new migrations, the
    /// grants on new tables).
    pub async fn init(url: &str, name: &str) -> Result<Self, Error> {
        let ws = Self::open(url, name).await?;
        storage::create_schema(&ws.pool, &ws.schema).await?;
        bring_up_to_date(&ws.pool, &ws.schema).await?;
        // The owner's first open settles what every member then only reads (the install id
        // that scopes keyring entries, the simulator endpoint).
        crate::Console::open_workspace(url, name)
            .await?
            .close()
            .await;
        Ok(ws)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Makes login `user` a member with `role` (and no other role in this workspace); the
    /// login is created, without a password, when it does not exist yet.
    pub async fn grant(&self, user: &str, role: MemberRole) -> Result<Member, Error> {
        if user.trim().is_empty() {
            return Err(Error::invalid("user", "name a database login"));
        }
        storage::set_member(&self.pool, &self.schema, user, role).await?;
        Ok(Member {
            user: user.to_owned(),
            role,
        })
    }

    /// Every login granted a role in this workspace.
    pub async fn members(&self) -> Result<Vec<Member>, Error> {
        let prefix = format!("{}_", self.schema);
        Ok(storage::members(&self.pool, &self.schema)
            .await?
            .into_iter()
            .filter_map(|(user, group)| {
                Some(Member {
                    user,
                    role: MemberRole::parse(group.strip_prefix(&prefix)?)?,
                })
            })
            .collect())
    }

    /// Who the connection's user is here: the highest role it holds (directly or not), or
    /// `None` when it holds none (the owner who ran `init` holds them all through ownership).
    pub async fn whoami(&self) -> Result<(String, Option<MemberRole>), Error> {
        who(&self.pool, &self.schema).await
    }
}

/// The login a connection string names, as `user@host:port/database` (no password): what the
/// desktop keeps a workspace's password under in the OS keyring.
pub fn login_of(url: &str) -> Result<String, Error> {
    let o: PgConnectOptions = url.parse().map_err(|e| {
        Error::invalid(
            "database",
            format!("'{}': {e}", crate::db::redacted_url(url)),
        )
    })?;
    Ok(format!(
        "{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or(o.get_username())
    ))
}

impl crate::Console {
    /// Opens team workspace `name` on the PostgreSQL server at `url` (made by `milc workspace
    /// init`): the same console over the team's shared store, each write as far as the
    /// connecting login's role allows.
    pub async fn open_workspace(url: &str, name: &str) -> Result<Self, Error> {
        Self::open_workspace_with(url, name, None).await
    }

    /// [`Console::open_workspace`] with the login's password given apart from the URL (the
    /// desktop keeps it in the OS keyring).
    pub async fn open_workspace_with(
        url: &str,
        name: &str,
        password: Option<&crate::SecretString>,
    ) -> Result<Self, Error> {
        let schema = schema_of(name)?;
        let store =
            crate::db::Store::open_pg(url, &schema, password.map(crate::SecretString::expose))
                .await?;
        check_ready(&store, url, name).await?;
        let place = milc_api::workspace::Store::Team {
            server: crate::db::redacted_url(url),
            workspace: name.to_owned(),
        };
        Self::on(store, place).await
    }

    /// Opens `db`: a `postgres://` connection string names a team workspace (`workspace`, or
    /// `main`), anything else the SQLite file at that path.
    pub async fn open_db(db: &str, workspace: Option<&str>) -> Result<Self, Error> {
        match is_url(db) {
            true => Self::open_workspace(db, workspace.unwrap_or("main")).await,
            false => Self::open(std::path::Path::new(db)).await,
        }
    }

    /// Which store this console has open and who is acting there: in a team workspace, the
    /// database login and the role it holds.
    pub async fn identity(&self) -> Result<milc_api::workspace::Identity, Error> {
        let (mut login, mut role) = (None, None);
        if let (Some(pool), milc_api::workspace::Store::Team { workspace, .. }) =
            (self.store.pg_pool(), &self.place)
        {
            let (user, held) = who(pool, &schema_of(workspace)?).await?;
            (login, role) = (Some(user), held);
        }
        Ok(milc_api::workspace::Identity {
            store: self.place.clone(),
            author: self.author(),
            login,
            role,
            warning: None,
        })
    }
}

/// The connection's login and the highest role it holds in the workspace of `schema`.
async fn who(pool: &PgPool, schema: &str) -> Result<(String, Option<MemberRole>), Error> {
    let (user, holds) = storage::login_and_roles(pool, schema).await?;
    let held = MemberRole::ALL
        .into_iter()
        .zip(holds)
        .filter_map(|(r, h)| h.then_some(r))
        .next_back();
    Ok((user, held))
}

/// Applies the migrations this console knows that the workspace lacks, and grants the roles
/// what they may do on every table (new ones included): the owner's to do.
async fn bring_up_to_date(pool: &PgPool, schema: &str) -> Result<(), Error> {
    sqlx::migrate!("../../migrations-pg")
        .run(pool)
        .await
        .map_err(|e| Error::Store(crate::StoreError::Migrate(e)))?;
    let tables = storage::tables(pool, schema).await?;
    let writes = storage::Writes {
        rater: tables
            .iter()
            .map(String::as_str)
            .filter(|t| RATER_WRITES.contains(t))
            .collect(),
        editor: tables
            .iter()
            .map(String::as_str)
            .filter(|t| !ADMIN_ONLY.contains(t))
            .collect(),
    };
    Ok(storage::grant_roles(pool, schema, &writes).await?)
}

/// The newest PostgreSQL migration this console knows.
fn latest_migration() -> i64 {
    sqlx::migrate!("../../migrations-pg")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Whether workspace `name` exists on `url` with every migration this console needs. Migrations
/// it lacks are applied at open, as on a SQLite file, when the login may (the workspace's
/// owner); a member is told to ask the owner.
pub(crate) async fn check_ready(
    store: &crate::db::Store,
    url: &str,
    name: &str,
) -> Result<(), Error> {
    let shown = crate::db::redacted_url(url);
    let mut c = store.read().await?;
    let version = match storage::schema_version(&mut c).await {
        Ok(v) => v,
        Err(crate::StoreError::Sql(sqlx::Error::Database(d)))
            if d.code().as_deref() == Some("42P01") =>
        {
            return Err(Error::invalid(
                "workspace",
                format!(
                    "there is no workspace '{name}' on {shown}: its owner creates it with \
                     `milc --workspace {name} workspace init`"
                ),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    drop(c);
    let needed = latest_migration();
    if version >= needed {
        return Ok(());
    }
    let pool = store
        .pg_pool()
        .expect("a workspace's store is on PostgreSQL");
    bring_up_to_date(pool, &schema_of(name)?)
        .await
        .map_err(|e| {
            Error::invalid(
                "workspace",
                format!(
                    "workspace '{name}' on {shown} has schema {version}, this console needs \
                 {needed}, and this login may not bring it up to date ({e}): its owner opens it \
                 once, or runs `milc --workspace {name} workspace init`"
                ),
            )
        })
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
