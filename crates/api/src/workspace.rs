//! A team workspace on PostgreSQL: the roles its members hold, enforced by the database.

use serde::{Deserialize, Serialize};

/// What a member may do; each role can do everything the one before it can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// Reads everything, writes nothing.
    Viewer,
    /// Also votes on comparisons.
    Rater,
    /// Also prompts, datasets, runs, comparisons, use cases, load tests, schedules (and the
    /// calls they make).
    Editor,
    /// Also endpoints, routes, gateway keys, budgets, prices, retention and settings.
    Admin,
}

impl MemberRole {
    pub const ALL: [MemberRole; 4] = [Self::Viewer, Self::Rater, Self::Editor, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Rater => "rater",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What the role may do, for messages.
    pub fn may(self) -> &'static str {
        match self {
            Self::Viewer => "viewers read only",
            Self::Rater => "raters read and vote",
            Self::Editor => {
                "editors change prompts, datasets, runs, comparisons and use cases, not \
                 endpoints, routes, keys, budgets, prices or settings"
            }
            Self::Admin => "admins change everything",
        }
    }
}

/// A member of a workspace: a database login and the role it holds there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: String,
    pub role: MemberRole,
}

/// Which store a console has open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Store {
    /// The local SQLite file.
    Local { path: String },
    /// A team workspace on PostgreSQL: the server (no password) and the workspace's name.
    Team { server: String, workspace: String },
}

/// Which store is open and who is acting there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub store: Store,
    /// Whom writes are recorded as (the OS user unless set).
    pub author: String,
    /// In a team workspace: the database login and the role it holds (`None`: none, or the
    /// workspace's owner).
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub role: Option<MemberRole>,
    /// Why the window opened the local file instead of the team workspace it was set to.
    #[serde(default)]
    pub warning: Option<String>,
}

/// A change made to the store: when, by whom, what (`endpoint.add`, `routes.load`, …) and to
/// what (a name, `name@version`, `#id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub at_ms: i64,
    pub author: String,
    pub action: String,
    pub subject: String,
}
