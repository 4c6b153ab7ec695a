//! A team workspace on a real PostgreSQL cluster (scripts/with-postgres, started by
//! scripts/test; `MILC_TEST_PG` is its superuser's URL): created with its tables and roles, and
//! the roles enforced by the database itself — a viewer's connection cannot write, a rater votes
//! but cannot change a prompt, an editor changes prompts but not endpoints — each refusal read
//! as what the member's role allows.

use milc_api::workspace::MemberRole;
use milc_core::workspace::{explain, Workspace};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

fn server() -> String {
    std::env::var("MILC_TEST_PG").expect(
        "MILC_TEST_PG names a PostgreSQL server: run under scripts/with-postgres (scripts/test does)",
    )
}

/// A connection as `user` (the test cluster trusts loopback logins) into workspace `schema`.
async fn as_user(user: &str, schema: &str) -> sqlx::PgConnection {
    let opts: PgConnectOptions = server().parse().unwrap();
    opts.username(user)
        .options([("search_path", schema)])
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_database_enforces_each_members_role() {
    let name = format!("t{}", std::process::id());
    let ws = Workspace::init(&server(), &name).await.unwrap();
    // Again: nothing changes, nothing fails.
    let ws2 = Workspace::init(&server(), &name).await.unwrap();
    assert_eq!(ws2.schema(), ws.schema());
    let schema = ws.schema().to_owned();

    // The owner sets things up: an endpoint, a prompt with a version, a comparison to rate.
    sqlx::raw_sql(
        "INSERT INTO models (name) VALUES ('m');
         INSERT INTO endpoints (name, base_url, model, created_ms) VALUES ('ep', 'http://x/v1', 'm', 0);
         INSERT INTO prompts (name, created_ms) VALUES ('support', 0);",
    )
    .execute(ws.pool())
    .await
    .unwrap();

    let (viewer, rater, editor) = (
        format!("{name}_vera"),
        format!("{name}_rae"),
        format!("{name}_ed"),
    );
    ws.grant(&viewer, MemberRole::Viewer).await.unwrap();
    ws.grant(&rater, MemberRole::Rater).await.unwrap();
    ws.grant(&editor, MemberRole::Editor).await.unwrap();
    // Granting again replaces the role, never adds a second.
    ws.grant(&editor, MemberRole::Viewer).await.unwrap();
    ws.grant(&editor, MemberRole::Editor).await.unwrap();
    let members = ws.members().await.unwrap();
    let role_of = |u: &str| members.iter().find(|m| m.user == u).map(|m| m.role);
    assert_eq!(role_of(&viewer), Some(MemberRole::Viewer));
    assert_eq!(role_of(&rater), Some(MemberRole::Rater));
    assert_eq!(role_of(&editor), Some(MemberRole::Editor));
    assert_eq!(members.len(), 3, "{members:?}");

    // A viewer reads everything and writes nothing.
    let mut c = as_user(&viewer, &schema).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM endpoints")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 2, "the owner's endpoint and the simulator init adds");
    let e = sqlx::query("UPDATE prompts SET description = 'mine'")
        .execute(&mut c)
        .await
        .unwrap_err();
    let msg = explain(e, &viewer, Some(MemberRole::Viewer)).to_string();
    assert!(msg.contains("is a viewer here: viewers read only"), "{msg}");
    assert!(msg.contains("permission denied for table prompts"), "{msg}");
    c.close().await.unwrap();

    // A rater votes (the table takes the write; only its own checks are left) but cannot
    // change a prompt.
    let mut c = as_user(&rater, &schema).await;
    let e = sqlx::query("UPDATE prompts SET description = 'mine'")
        .execute(&mut c)
        .await
        .unwrap_err();
    let msg = explain(e, &rater, Some(MemberRole::Rater)).to_string();
    assert!(msg.contains("raters read and vote"), "{msg}");
    let vote = sqlx::query(
        "INSERT INTO votes (comparison_id, item_idx, left_idx, right_idx, verdict, rater, source,
                            at_ms)
         VALUES (999, 0, 0, 1, 'left', 'rae', 'human', 0)",
    )
    .execute(&mut c)
    .await
    .unwrap_err();
    // Allowed to write votes: refused by the foreign key, not by a permission.
    assert_eq!(
        vote.as_database_error().and_then(|d| d.code()).as_deref(),
        Some("23503"),
        "{vote}"
    );
    c.close().await.unwrap();

    // An editor changes prompts but not endpoints.
    let mut c = as_user(&editor, &schema).await;
    sqlx::query("UPDATE prompts SET description = 'triage'")
        .execute(&mut c)
        .await
        .unwrap();
    let e = sqlx::query("UPDATE endpoints SET base_url = 'http://evil/v1'")
        .execute(&mut c)
        .await
        .unwrap_err();
    let msg = explain(e, &editor, Some(MemberRole::Editor)).to_string();
    assert!(msg.contains("not endpoints"), "{msg}");
    c.close().await.unwrap();

    // Who each connection is.
    let me = Workspace::open(&server().replacen("milc@", &format!("{viewer}@"), 1), &name)
        .await
        .unwrap();
    assert_eq!(
        me.whoami().await.unwrap(),
        (viewer.clone(), Some(MemberRole::Viewer))
    );
}

#[tokio::test]
async fn a_workspace_name_is_checked_before_anything_is_created() {
    let err = Workspace::init(&server(), "Team One").await.err().unwrap();
    assert!(
        err.to_string()
            .contains("'Team One' is not a workspace name"),
        "{err}"
    );
}

#[tokio::test]
async fn a_workspace_behind_this_console_is_brought_up_to_date_by_its_owner_at_open() {
    let name = format!("old{}", std::process::id());
    let ws = Workspace::init(&server(), &name).await.unwrap();
    let viewer = format!("{name}_vic");
    ws.grant(&viewer, MemberRole::Viewer).await.unwrap();
    // As if made by an older console: the newest migration (the activity log) not applied.
    sqlx::raw_sql(
        "DROP TABLE activity;
         DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations);",
    )
    .execute(ws.pool())
    .await
    .unwrap();
    let as_viewer = server().replacen("milc@", &format!("{viewer}@"), 1);

    // A member may not change tables: told whom to ask, nothing changed.
    let refused = milc_core::Console::open_workspace(&as_viewer, &name)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("may not bring it up to date") && refused.contains("its owner"),
        "{refused}"
    );

    // The owner's console applies what is missing at open, as on a SQLite file, and grants
    // the roles on the new table: the member opens it and reads it.
    let owner = milc_core::Console::open_workspace(&server(), &name)
        .await
        .unwrap();
    owner.close().await;
    let member = milc_core::Console::open_workspace(&as_viewer, &name)
        .await
        .unwrap();
    assert!(member.activity(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_member_who_may_not_change_endpoints_still_tests_one() {
    let name = format!("probe{}", std::process::id());
    let ws = Workspace::init(&server(), &name).await.unwrap();
    let viewer = format!("{name}_val");
    ws.grant(&viewer, MemberRole::Viewer).await.unwrap();
    let as_viewer = server().replacen("milc@", &format!("{viewer}@"), 1);
    let member = milc_core::Console::open_workspace(&as_viewer, &name)
        .await
        .unwrap();
    let test = member.test_endpoint("Local simulator").await.unwrap();
    assert!(test.ok, "the result is shown: {test:?}");
    let kept = member
        .endpoints()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.spec.name == "Local simulator")
        .unwrap()
        .last_test;
    assert_eq!(kept, None, "and not kept: endpoints are the admins'");
}
