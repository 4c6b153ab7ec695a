//! `Console` as a shell uses it: connection tests that say exactly what is wrong, calls logged
//! whatever their outcome, lifecycle status respected, the built-in simulator on first run.

#[allow(dead_code)]
mod common;

use milc_api::{
    CallSource, ChatRequest, EndpointSpec, EndpointStatus, ErrorKind, Message, Params, Role,
    UsageSource,
};
use milc_core::{Console, Error, SIMULATOR_ENDPOINT};
use milc_sim::SimConfig;
use tokio_util::sync::CancellationToken;

async fn console() -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    (dir, c)
}

fn hi() -> ChatRequest {
    ChatRequest::new(vec![Message::new(Role::User, "hi")], Params::default())
}

async fn chat(c: &Console, name: &str) -> Result<milc_api::ChatResult, Error> {
    c.chat(
        name,
        &hi(),
        CallSource::Cli,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await
}

#[tokio::test]
async fn connection_tests_name_what_is_wrong() {
    let (_dir, c) = console().await;
    let open = milc_sim::start(([127, 0, 0, 1], 0).into(), SimConfig::default())
        .await
        .unwrap();
    let locked = milc_sim::start(
        ([127, 0, 0, 1], 0).into(),
        SimConfig {
            api_key: Some("k".into()),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let gone = {
        let s = milc_sim::start(([127, 0, 0, 1], 0).into(), SimConfig::default())
            .await
            .unwrap();
        let addr = s.addr();
        s.stop().await;
        addr
    };
    let add = async |name: &str, url: String, model: &str| {
        let mut spec = EndpointSpec::new(name, url, model);
        spec.max_retries = 0;
        spec.timeout_ms = 5_000;
        c.add_endpoint(spec, None).await.unwrap();
    };
    add("good", open.base_url(), "milc-sim").await;
    add("no-token", locked.base_url(), "milc-sim").await;
    add("typo", open.base_url(), "milc-simm").await;
    add("refused", format!("http://{gone}/v1"), "milc-sim").await;
    // TLS spoken to a plain-HTTP server: the handshake fails.
    add("tls", format!("https://{}/v1", open.addr()), "milc-sim").await;

    let good = c.test_endpoint("good").await.unwrap();
    assert!(good.ok && good.latency_ms.is_some() && good.models.contains(&"milc-sim".to_owned()));
    let kinds = [
        ("no-token", ErrorKind::Auth),
        ("typo", ErrorKind::NotFound),
        ("refused", ErrorKind::Connection),
        ("tls", ErrorKind::Tls),
    ];
    for (name, kind) in kinds {
        let t = c.test_endpoint(name).await.unwrap();
        let e = t.error.unwrap();
        assert!(!t.ok);
        assert_eq!(e.kind, kind, "{name}: {e}");
    }
    let typo = c.test_endpoint("typo").await.unwrap().error.unwrap();
    assert!(
        typo.message.contains("milc-simm") && typo.message.contains("milc-sim-reasoning"),
        "{}",
        typo.message
    );
    // The result is kept with the endpoint for the list.
    let listed = c.endpoint("refused").await.unwrap().last_test.unwrap();
    assert_eq!(listed.error.unwrap().kind, ErrorKind::Connection);

    let bad = c
        .add_endpoint(EndpointSpec::new("bad", "not a url", "m"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, Error::Invalid { field, .. } if field == "base_url"),
        "{bad}"
    );
}

#[tokio::test]
async fn every_call_is_logged_and_costs_never_count_a_subset_twice() {
    let (_dir, c) = console().await;
    let sim = milc_sim::start(([127, 0, 0, 1], 0).into(), SimConfig::default())
        .await
        .unwrap();
    let mut spec = EndpointSpec::new("r", sim.base_url(), "milc-sim-reasoning");
    spec.prices.input = "1".parse().unwrap();
    spec.prices.output = "10".parse().unwrap();
    c.add_endpoint(spec, None).await.unwrap();
    let mut spec = EndpointSpec::new("down", sim.base_url(), "milc-sim");
    spec.headers.insert("x-sim-fault".into(), "quota".into());
    c.add_endpoint(spec, None).await.unwrap();

    let r = chat(&c, "r").await.unwrap();
    let u = r.usage;
    assert_eq!(u.reasoning_tokens, 8);
    // 1 µ$ per prompt token and 10 µ$ per completion token; reasoning tokens are inside completion.
    assert_eq!(
        r.cost.pico_usd as u64,
        (u.prompt_tokens + 10 * u.completion_tokens) * 1_000_000
    );
    let Err(Error::Call {
        error,
        call_id: Some(id),
        ..
    }) = chat(&c, "down").await
    else {
        panic!("expected a failure")
    };
    assert_eq!(error.kind, ErrorKind::Quota);

    let calls = c.calls(10).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (
            calls[0].id,
            calls[0].call.error_kind,
            calls[0].call.http_status
        ),
        (id, Some(ErrorKind::Quota), Some(429))
    );
    assert_eq!(calls[0].call.cost, None, "a refused call costs nothing");
    assert_eq!(calls[1].call.cost, Some(r.cost));
    assert_eq!(calls[1].call.usage.unwrap().source, UsageSource::Reported);
}

#[tokio::test]
async fn a_new_database_offers_the_builtin_simulator_once() {
    let (dir, c) = console().await;
    let eps = c.endpoints().await.unwrap();
    assert_eq!(eps.len(), 1);
    assert!(eps[0].simulator);
    assert_eq!(eps[0].spec.name, SIMULATOR_ENDPOINT);
    let r = chat(&c, SIMULATOR_ENDPOINT).await.unwrap();
    assert!(!r.output.is_empty() && r.cost.pico_usd > 0);
    assert!(c.test_endpoint(SIMULATOR_ENDPOINT).await.unwrap().ok);

    // Deleted by the user, it stays deleted.
    c.remove_endpoint(SIMULATOR_ENDPOINT).await.unwrap();
    c.store().close().await;
    let again = common::open(&dir.path().join("milc.db")).await.unwrap();
    assert!(again.endpoints().await.unwrap().is_empty());

    // Added back by its URL, it is the simulator again: labelled, and it answers.
    let ep = again
        .add_endpoint(
            EndpointSpec::new("mine", "sim://embedded", "milc-sim"),
            None,
        )
        .await
        .unwrap();
    assert!(ep.simulator);
    assert!(!chat(&again, "mine").await.unwrap().output.is_empty());
}

#[tokio::test]
async fn retired_endpoints_take_no_calls() {
    let (_dir, c) = console().await;
    let ep = c.endpoint(SIMULATOR_ENDPOINT).await.unwrap();
    // Editing an endpoint does not change its lifecycle: that goes through set_lifecycle.
    let edit = c
        .update_endpoint(
            ep.id,
            EndpointSpec {
                status: EndpointStatus::Retired,
                ..ep.spec
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&edit, Error::Invalid { field, .. } if field == "status"),
        "{edit}"
    );
    c.set_lifecycle(
        SIMULATOR_ENDPOINT,
        milc_api::lifecycle::Lifecycle {
            status: EndpointStatus::Retired,
            ..Default::default()
        },
        false,
    )
    .await
    .unwrap();
    let err = chat(&c, SIMULATOR_ENDPOINT).await.unwrap_err();
    assert!(err.to_string().contains("retired"), "{err}");
    assert!(c.calls(5).await.unwrap().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn out_of_range_parameters_are_refused_before_anything_is_sent() {
    let (_dir, c) = console().await;
    let mut req = hi();
    req.params.temperature = Some(3.0);
    let err = c
        .chat(
            SIMULATOR_ENDPOINT,
            &req,
            CallSource::Cli,
            &mut |_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "temperature"),
        "{err}"
    );
    assert!(c.calls(5).await.unwrap().is_empty());
}
