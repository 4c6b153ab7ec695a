//! Retiring an endpoint through `Console`: the "still used by" report across prompts, gateway
//! routes and comparisons; a retirement refused while something uses it, unless forced; then
//! every caller refusing it with an error that names the replacement.

#[allow(dead_code)]
mod common;

use milc_api::compare::{ComparisonSpec, VariantSpec};
use milc_api::lifecycle::Lifecycle;
use milc_api::prompt::{NewVersion, PromptContent};
use milc_api::run::RunSpec;
use milc_api::{CallSource, ChatRequest, EndpointSpec, EndpointStatus, Message, Params, Role};
use milc_core::retirement::parse_sunset;
use milc_core::{Console, Error};
use tokio_util::sync::CancellationToken;

const SUNSET: &str = "2027-01-31";

/// A console with endpoints `old` and `new` (both the built-in simulator), prompt `summarize`
/// whose version 1 defaults to `old` (labelled `production`), a gateway route `support` with
/// one arm on `old` sending that prompt, and a comparison `cmp` with a variant on `old`.
async fn world() -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    for name in ["old", "new"] {
        c.add_endpoint(EndpointSpec::new(name, "sim://embedded", "milc-sim"), None)
            .await
            .unwrap();
    }
    c.save_prompt(
        NewVersion {
            prompt: "summarize".into(),
            description: None,
            content: PromptContent {
                messages: vec![Message::new(Role::User, "Summarize: {{input}}")],
                endpoint: Some("old".into()),
                ..PromptContent::default()
            },
            note: String::new(),
        },
        true,
    )
    .await
    .unwrap();
    c.label_prompt("summarize", 1, "production").await.unwrap();
    let routes = milc_core::gateway::parse_routes(
        r#"
[[route]]
model = "support"
[[route.arm]]
name = "a"
endpoint = "old"
prompt = "summarize:production"
weight = 1
"#,
        "routes.toml",
    )
    .unwrap();
    c.put_routes(&routes, true, "routes.toml").await.unwrap();
    c.create_comparison(ComparisonSpec {
        name: "cmp".into(),
        dataset: String::new(),
        inputs: vec!["The printer is on fire.".into()],
        variants: ["old", "new"]
            .map(|e| VariantSpec {
                prompt: "summarize@1".into(),
                endpoint: e.into(),
                params: Params::default(),
            })
            .to_vec(),
        criteria: vec![],
        scorers: vec![],
        seed: Some(1),
    })
    .await
    .unwrap();
    (dir, c)
}

async fn chat(c: &Console, endpoint: &str) -> Result<milc_api::ChatResult, Error> {
    let req = ChatRequest::new(vec![Message::new(Role::User, "hi")], Params::default());
    c.chat(
        endpoint,
        &req,
        CallSource::Cli,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await
}

fn deprecated(sunset: &str, replacement: &str) -> Lifecycle {
    Lifecycle {
        status: EndpointStatus::Deprecated,
        sunset_ms: Some(parse_sunset(sunset).unwrap()),
        replacement: Some(replacement.into()),
    }
}

fn to(status: EndpointStatus) -> Lifecycle {
    Lifecycle {
        status,
        ..Lifecycle::default()
    }
}

fn run_on(endpoint: &str) -> RunSpec {
    RunSpec {
        prompt: "summarize@1".into(),
        endpoint: endpoint.into(),
        dataset: "cmp-inputs".into(),
        params: Params::default(),
        repeat: 1,
        concurrency: 1,
        scorers: vec![],
        stem: false,
    }
}

fn field_of(e: &Error) -> &str {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[tokio::test]
async fn retiring_an_endpoint_in_use_is_refused_until_forced_then_every_caller_names_the_replacement(
) {
    let (_dir, c) = world().await;
    chat(&c, "old").await.unwrap();

    // Deprecated: still takes calls, and everything that uses it says until when and instead of
    // what.
    c.set_lifecycle("old", deprecated(SUNSET, "new"), false)
        .await
        .unwrap();
    let warning = c.check_in_service("old").await.unwrap().unwrap();
    assert!(
        warning.contains("'old' is deprecated")
            && warning.contains(SUNSET)
            && warning.contains("use 'new' instead"),
        "{warning}"
    );
    chat(&c, "old").await.unwrap();
    let run = c.create_run(run_on("old")).await.unwrap();
    assert_eq!(run.warnings, vec![warning.clone()]);
    assert_eq!(c.runs().await.unwrap()[0].warnings, vec![warning.clone()]);
    assert_eq!(c.check_in_service("new").await.unwrap(), None);
    let ep = c.endpoint("old").await.unwrap();
    assert_eq!(ep.lifecycle(), deprecated(SUNSET, "new"));

    // The report: the prompt version that defaults to it, its label, the route's arm, the
    // comparison's variant, and the calls of the last days by source.
    let used = c.endpoint_used_by("old").await.unwrap();
    assert_eq!(used.subject, "endpoint 'old'");
    assert_eq!(used.prompt_versions, ["summarize@1"]);
    assert_eq!(used.labels, ["summarize:production → summarize@1"]);
    assert_eq!(used.routes, ["support / a"]);
    assert_eq!(used.comparisons.len(), 1, "{used:?}");
    assert!(used.comparisons[0].starts_with("cmp / "), "{used:?}");
    assert_eq!(used.calls_7d.get("cli"), Some(&2));
    assert_eq!(used.calls_30d.get("cli"), Some(&2));
    assert!(used.is_referenced());
    assert_eq!(used.references().len(), 4);
    // The replacement is referred to by the endpoint it replaces.
    let new = c.endpoint_used_by("new").await.unwrap();
    assert_eq!(new.replacement_for, ["endpoint 'old' (deprecated)"]);
    assert!(new.prompt_versions.is_empty() && new.routes.is_empty());

    // Retiring without force is refused, naming each of them; nothing changes.
    let refused = c
        .set_lifecycle("old", to(EndpointStatus::Retired), false)
        .await
        .unwrap_err();
    assert_eq!(field_of(&refused), "status");
    let said = refused.to_string();
    for what in [
        "prompt version: summarize@1",
        "label: summarize:production",
        "gateway route: support / a",
        "comparison: cmp / ",
        "--force",
    ] {
        assert!(said.contains(what), "'{what}' missing from: {said}");
    }
    assert_eq!(
        c.endpoint("old").await.unwrap().spec.status,
        EndpointStatus::Deprecated
    );

    // Forced: retired, keeping the sunset and replacement its deprecation named.
    let report = c
        .set_lifecycle("old", to(EndpointStatus::Retired), true)
        .await
        .unwrap();
    assert_eq!(report.references().len(), 4);
    let ep = c.endpoint("old").await.unwrap();
    assert_eq!(
        ep.lifecycle(),
        Lifecycle {
            status: EndpointStatus::Retired,
            ..deprecated(SUNSET, "new")
        }
    );

    // Every caller refuses it, naming the replacement, before anything is sent or stored.
    let calls_before = c.calls(100).await.unwrap().len();
    let e = chat(&c, "old").await.unwrap_err();
    assert_eq!(field_of(&e), "endpoint");
    assert!(
        e.to_string().contains("'old' is retired") && e.to_string().contains("use 'new' instead"),
        "{e}"
    );
    assert!(c.prepare("old", None).await.is_err());
    assert_eq!(
        c.check_in_service("old").await.unwrap_err().to_string(),
        e.to_string()
    );
    let runs_before = c.runs().await.unwrap().len();
    let e = c.create_run(run_on("old")).await.unwrap_err();
    assert_eq!(field_of(&e), "endpoint");
    assert!(e.to_string().contains("use 'new' instead"), "{e}");
    assert_eq!(c.runs().await.unwrap().len(), runs_before, "no run stored");
    // The run created while it was deprecated cannot be resumed on it either.
    let e = c
        .execute_run(run.id, &|_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("use 'new' instead"), "{e}");
    let e = c
        .create_comparison(ComparisonSpec {
            name: "cmp2".into(),
            dataset: "cmp-inputs".into(),
            inputs: vec![],
            variants: ["new", "old"]
                .map(|e| VariantSpec {
                    prompt: "summarize@1".into(),
                    endpoint: e.into(),
                    params: Params::default(),
                })
                .to_vec(),
            criteria: vec![],
            scorers: vec![],
            seed: None,
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "variants[2].endpoint");
    assert!(e.to_string().contains("use 'new' instead"), "{e}");
    assert!(c.comparison("cmp2").await.is_err(), "no comparison stored");
    assert_eq!(
        c.calls(100).await.unwrap().len(),
        calls_before,
        "nothing was sent"
    );
    let live = c.live_routes().await.unwrap();
    let arm = &live.routes[0].arms[0];
    let why = arm.prepared.as_ref().err().expect("the arm cannot serve");
    assert!(why.contains("use 'new' instead"), "{why}");

    // The retirement page lists it with its sunset, replacement, traffic and references.
    let page = c.retirement().await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].endpoint, "old");
    assert_eq!(page[0].lifecycle, ep.lifecycle());
    assert_eq!((page[0].calls_7d, page[0].calls_30d), (2, 2));
    assert_eq!(page[0].references, 4);

    // Back from retired takes force; active again clears the sunset and the replacement.
    let e = c
        .set_lifecycle("old", to(EndpointStatus::Active), false)
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "status");
    assert!(e.to_string().contains("--force"), "{e}");
    let e = c
        .set_lifecycle("old", deprecated(SUNSET, "new"), false)
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "status");
    c.set_lifecycle("old", to(EndpointStatus::Active), true)
        .await
        .unwrap();
    assert_eq!(
        c.endpoint("old").await.unwrap().lifecycle(),
        to(EndpointStatus::Active)
    );
    chat(&c, "old").await.unwrap();
    assert!(c.retirement().await.unwrap().is_empty());
}

#[tokio::test]
async fn deprecating_names_a_sunset_and_a_replacement_that_takes_calls() {
    let (_dir, c) = world().await;
    c.add_endpoint(
        EndpointSpec::new("gone", "sim://embedded", "milc-sim"),
        None,
    )
    .await
    .unwrap();
    c.set_lifecycle("gone", to(EndpointStatus::Retired), false)
        .await
        .unwrap();
    let cases = [
        (
            Lifecycle {
                sunset_ms: None,
                ..deprecated(SUNSET, "new")
            },
            "sunset",
        ),
        (
            Lifecycle {
                replacement: None,
                ..deprecated(SUNSET, "new")
            },
            "replacement",
        ),
        (deprecated(SUNSET, "nowhere"), "replacement"),
        (deprecated(SUNSET, "old"), "replacement"),
        (deprecated(SUNSET, "gone"), "replacement"),
        (
            Lifecycle {
                sunset_ms: Some(0),
                ..to(EndpointStatus::Active)
            },
            "sunset",
        ),
    ];
    for (lifecycle, field) in cases {
        let e = c
            .set_lifecycle("old", lifecycle.clone(), false)
            .await
            .unwrap_err();
        assert_eq!(field_of(&e), field, "{lifecycle:?}: {e}");
    }
    assert_eq!(
        c.endpoint("old").await.unwrap().lifecycle(),
        to(EndpointStatus::Active)
    );
    assert!(c
        .set_lifecycle("nowhere", to(EndpointStatus::Retired), false)
        .await
        .is_err());

    // A new endpoint starts active: the lifecycle is never set by adding or editing one.
    let mut spec = EndpointSpec::new("born-old", "sim://embedded", "milc-sim");
    spec.status = EndpointStatus::Deprecated;
    let e = c.add_endpoint(spec, None).await.unwrap_err();
    assert_eq!(field_of(&e), "status");
    let ep = c.endpoint("old").await.unwrap();
    let e = c
        .update_endpoint(
            ep.id,
            EndpointSpec {
                status: EndpointStatus::Retired,
                ..ep.spec.clone()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "status");
    assert!(e.to_string().contains("milc endpoints status"), "{e}");
    // Editing the rest keeps the lifecycle as it is.
    c.set_lifecycle("old", deprecated(SUNSET, "new"), false)
        .await
        .unwrap();
    let ep = c.endpoint("old").await.unwrap();
    let edited = c
        .update_endpoint(
            ep.id,
            EndpointSpec {
                max_retries: 5,
                ..ep.spec.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.spec.max_retries, 5);
    assert_eq!(edited.lifecycle(), deprecated(SUNSET, "new"));
}

#[tokio::test]
async fn an_unused_endpoint_retires_without_force() {
    let (_dir, c) = world().await;
    c.add_endpoint(
        EndpointSpec::new("spare", "sim://embedded", "milc-sim"),
        None,
    )
    .await
    .unwrap();
    let used = c
        .set_lifecycle("spare", to(EndpointStatus::Retired), false)
        .await
        .unwrap();
    assert!(!used.is_referenced(), "{used:?}");
    assert_eq!(used.references(), Vec::<String>::new());
    let ep = c.endpoint("spare").await.unwrap();
    assert_eq!(ep.spec.status, EndpointStatus::Retired);
    assert!(ep.sunset_ms.is_some(), "the day it was retired");
    let e = chat(&c, "spare").await.unwrap_err().to_string();
    assert!(
        e.contains("'spare' is retired") && !e.contains("instead"),
        "{e}"
    );
}

#[tokio::test]
async fn a_prompt_version_reports_its_labels_routes_comparisons_and_calls() {
    let (_dir, c) = world().await;
    let req = c
        .prompt_request(
            "summarize:production",
            [("input".to_owned(), "x".to_owned())].into(),
        )
        .await
        .unwrap()
        .0;
    c.chat(
        "new",
        &req,
        CallSource::Playground,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    for reference in ["summarize@1", "summarize:production", "summarize"] {
        let used = c.prompt_used_by(reference).await.unwrap();
        assert_eq!(used.subject, "prompt summarize@1");
        assert!(used.prompt_versions.is_empty());
        assert_eq!(used.labels, ["summarize:production → summarize@1"]);
        assert_eq!(used.routes, ["support / a (summarize:production)"]);
        assert_eq!(used.comparisons.len(), 2, "{used:?}");
        assert_eq!(used.calls_7d.get("playground"), Some(&1), "{used:?}");
        assert_eq!(used.references().len(), 4);
    }
    // A second version takes none of it: the label and the comparison stay on version 1.
    c.save_prompt(
        NewVersion {
            prompt: "summarize".into(),
            description: None,
            content: PromptContent {
                messages: vec![Message::new(Role::User, "In one line: {{input}}")],
                ..PromptContent::default()
            },
            note: String::new(),
        },
        false,
    )
    .await
    .unwrap();
    let v2 = c.prompt_used_by("summarize@2").await.unwrap();
    assert!(!v2.is_referenced(), "{v2:?}");
    assert!(v2.calls_30d.is_empty());
    let e = c.prompt_used_by("summarize@9").await.unwrap_err();
    assert!(e.to_string().contains("summarize@9"), "{e}");
    let e = c.prompt_used_by("bad name!").await.unwrap_err();
    assert_eq!(field_of(&e), "prompt");
}

#[tokio::test]
async fn budgets_use_cases_schedules_and_drift_watches_count_as_references() {
    let (_dir, c) = world().await;
    c.set_budget(Some("old"), Some("5"), Some("100"))
        .await
        .unwrap();
    // Use cases, schedules and drift watches as their own actions store them (rows of the
    // lifecycle tables): a card with a chosen candidate on `old` and prompt version 1, a
    // schedule calling both, and a drift watch on each.
    {
        let mut db = c.store().write().await.unwrap();
        let ids: (i64, i64) = milc_core::db::query_as(
            "SELECT (SELECT id FROM endpoints WHERE name = 'old'),
                    (SELECT v.id FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
                     WHERE p.name = 'summarize' AND v.version = 1)",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        for sql in [
            "INSERT INTO usecases (id, name, spec_json, created_ms, updated_ms)
             VALUES (1, 'triage', '{}', 0, 0), (2, 'digest', '{}', 0, 0)",
            "INSERT INTO usecase_candidates
                 (usecase_id, prompt_version_id, endpoint_id, params_json, chosen, created_ms)
             VALUES (1, ?2, ?1, '{}', TRUE, 0), (2, ?2, ?1, '{}', FALSE, 0)",
            "INSERT INTO schedules
                 (name, endpoint_id, prompt_version_id, spec_json, every_ms, next_due_ms, created_ms)
             VALUES ('nightly', ?1, ?2, '{}', 86400000, 0, 0)",
            "INSERT INTO drift_watches (kind, subject, window_ms, created_ms)
             VALUES ('endpoint', 'old', 604800000, 0), ('prompt', 'summarize@1', 86400000, 0),
                    ('endpoint', 'new', 3600000, 0)",
        ] {
            milc_core::db::query(sql)
                .bind(ids.0)
                .bind(ids.1)
                .execute(&mut db)
                .await
                .unwrap();
        }
        db.commit().await.unwrap();
    }
    let used = c.endpoint_used_by("old").await.unwrap();
    assert_eq!(used.budgets, ["daily $5.00, monthly $100.00"]);
    assert_eq!(used.usecases, ["digest", "triage (chosen)"]);
    assert_eq!(used.schedules, ["nightly"]);
    assert_eq!(used.drift_watches, ["endpoint 'old' over 7d"]);
    assert_eq!(used.references().len(), 4 + 5);
    let prompt = c.prompt_used_by("summarize:production").await.unwrap();
    assert_eq!(prompt.usecases, ["digest", "triage (chosen)"]);
    assert_eq!(prompt.schedules, ["nightly"]);
    assert_eq!(prompt.drift_watches, ["prompt summarize@1 over 1d"]);
    assert!(prompt.budgets.is_empty());

    let refused = c
        .set_lifecycle("old", to(EndpointStatus::Retired), false)
        .await
        .unwrap_err()
        .to_string();
    for what in [
        "budget: daily $5.00",
        "use case: triage (chosen)",
        "schedule: nightly",
        "drift watch: endpoint 'old' over 7d",
    ] {
        assert!(refused.contains(what), "'{what}' missing from: {refused}");
    }
}
