//! The two ends of the lifecycle through `Console`, against simulators on 127.0.0.1: a
//! requirements card judging its candidates on attached runs and load tests, a load test
//! measuring a simulator's latency and rate limit, drift flagged on a shifted endpoint and not
//! on an unchanged one, and a scheduled evaluation run when due.

#[allow(dead_code)]
mod common;

use milc_api::lifecycle::{
    CandidateSpec, DriftKind, DriftQuery, Evidence, LoadTestSpec, NewSchedule, ScoreSlo, Slo,
    Traffic, UseCaseSpec, Verdict,
};
use milc_api::prompt::{NewVersion, PromptContent, RedactMode};
use milc_api::run::{RunSpec, ScorerSpec};
use milc_api::{
    Call, CallSource, EndpointSpec, Message, Outcome, Params, Role, Usage, UsageSource,
};
use milc_core::datasets::parse_jsonl;
use milc_core::Console;
use tokio_util::sync::CancellationToken;

async fn console() -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    c.save_prompt(
        NewVersion {
            prompt: "qa".into(),
            description: None,
            content: PromptContent {
                messages: vec![Message::new(Role::User, "{{q}}")],
                params: Params {
                    max_tokens: Some(16),
                    ..Params::default()
                },
                ..PromptContent::default()
            },
            note: String::new(),
        },
        true,
    )
    .await
    .unwrap();
    let lines: String = (0..12)
        .map(|i| format!("{{\"q\": \"Summarize ticket {i} about a refund\", \"expected\": \"ticket {i} asks for a refund\"}}\n"))
        .collect();
    let items = parse_jsonl("tickets.jsonl", &lines).unwrap();
    c.import_items("tickets", &items, "tickets.jsonl")
        .await
        .unwrap();
    (dir, c)
}

/// A simulator answering after `latency_ms`, as endpoint `name` (redacting before sending when
/// `redacts`).
async fn sim_endpoint(
    c: &Console,
    name: &str,
    config: milc_sim::SimConfig,
    redacts: bool,
) -> milc_sim::SimHandle {
    let sim = milc_sim::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap();
    let mut spec = EndpointSpec::new(name, sim.base_url(), "milc-sim");
    spec.max_retries = 0;
    if redacts {
        spec.redaction.mode = RedactMode::Sending;
    }
    c.add_endpoint(spec, None).await.unwrap();
    sim
}

fn slow(latency_ms: u64) -> milc_sim::SimConfig {
    milc_sim::SimConfig {
        latency_ms,
        ..milc_sim::SimConfig::default()
    }
}

async fn run(c: &Console, endpoint: &str) -> i64 {
    let run = c
        .create_run(RunSpec {
            prompt: "qa@1".into(),
            endpoint: endpoint.into(),
            dataset: "tickets".into(),
            params: Params::default(),
            repeat: 1,
            concurrency: 4,
            scorers: vec![ScorerSpec::parse("rouge1").unwrap()],
            stem: false,
        })
        .await
        .unwrap();
    c.execute_run(run.id, &|_| {}, &CancellationToken::new())
        .await
        .unwrap();
    run.id
}

#[tokio::test]
async fn a_card_judges_each_candidate_on_the_evidence_attached_to_it() {
    let (_dir, c) = console().await;
    let _fast = sim_endpoint(&c, "fast", slow(5), true).await;
    let _slow = sim_endpoint(&c, "slow", slow(400), false).await;
    c.create_usecase(UseCaseSpec {
        name: "ticket summaries".into(),
        owner: "ana".into(),
        description: "summarize tickets in less than 300 ms with PII redaction".into(),
        slo: Slo {
            p95_latency_ms: Some(300),
            min_score: Some(ScoreSlo::parse("rouge1>=0.05@tickets").unwrap()),
            max_error_rate: Some(0.05),
            pii_redaction: true,
            ..Slo::default()
        },
        traffic: Traffic {
            requests_per_minute: 60.0,
            tokens_per_request: 300,
        },
    })
    .await
    .unwrap();
    for (endpoint, choose) in [("fast", true), ("slow", false)] {
        let cand = CandidateSpec {
            prompt: "qa@1".into(),
            endpoint: endpoint.into(),
            params: Params::default(),
        };
        c.add_candidate("ticket summaries", cand, choose)
            .await
            .unwrap();
    }

    // Nothing measured yet: only the redaction policy is known.
    let card = c.usecase("ticket summaries").await.unwrap();
    let fast = &card.candidates[0];
    assert!(fast.chosen);
    assert_eq!(fast.verdict, Verdict::Unknown);
    let pii = fast
        .checks
        .iter()
        .find(|k| k.slo == "PII redaction")
        .unwrap();
    assert_eq!(pii.verdict, Verdict::Pass);
    // The slow endpoint keeps the default policy (redact what is stored, not what is sent).
    assert_eq!(card.candidates[1].verdict, Verdict::Fail);

    let (a, b) = (run(&c, "fast").await, run(&c, "slow").await);
    c.attach_run("ticket summaries", a).await.unwrap();
    let card = c.attach_run("ticket summaries", b).await.unwrap();
    let (fast, slow) = (&card.candidates[0], &card.candidates[1]);
    assert_eq!(fast.verdict, Verdict::Pass, "{:#?}", fast.checks);
    for k in &fast.checks {
        assert_eq!(k.verdict, Verdict::Pass, "{k:?}");
    }
    let latency = |cand: &milc_api::lifecycle::Candidate| {
        cand.checks
            .iter()
            .find(|k| k.slo == "p95 latency")
            .cloned()
            .unwrap()
    };
    assert_eq!(latency(fast).evidence, Some(Evidence::Run { id: a }));
    assert_eq!(latency(slow).verdict, Verdict::Fail);
    assert_eq!(latency(slow).evidence, Some(Evidence::Run { id: b }));
    assert_eq!(slow.verdict, Verdict::Fail);
    let score = slow
        .checks
        .iter()
        .find(|k| k.slo == "score rouge1")
        .unwrap();
    assert_eq!(score.verdict, Verdict::Pass, "the slow one answers as well");

    // A load test on the fast endpoint, attached: the newest evidence for its latency.
    let lt = c
        .loadtest(
            LoadTestSpec {
                endpoint: "fast".into(),
                prompt: Some("qa@1".into()),
                variables: [("q".to_owned(), "Summarize ticket 1".to_owned())].into(),
                message: String::new(),
                concurrency: vec![1, 2],
                duration_ms: 300,
                params: Params::default(),
                usecase: Some("ticket summaries".into()),
            },
            &|_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let card = c.usecase("ticket summaries").await.unwrap();
    assert!(card
        .attached
        .iter()
        .any(|x| x.kind == "loadtest" && x.id == lt.id));
    // Who started it, and that it became the card's evidence, is in the activity log.
    let noted: Vec<(String, String)> = c
        .activity(5)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.subject))
        .collect();
    assert!(
        noted.contains(&("loadtest.start".into(), format!("#{} on fast", lt.id)))
            && noted.contains(&(
                "usecase.attach".into(),
                format!("ticket summaries load test #{}", lt.id)
            )),
        "{noted:?}"
    );
    // 60 requests a minute at ~5 ms each keeps one caller busy: the first level stands for it.
    assert_eq!(
        latency(&card.candidates[0]).evidence,
        Some(Evidence::Loadtest {
            id: lt.id,
            concurrency: 1
        })
    );
    assert!(
        lt.levels[0].cost_per_month.is_some(),
        "projected at the card's traffic"
    );
}

#[tokio::test]
async fn a_load_test_measures_the_simulators_latency_and_meets_its_rate_limit() {
    let (_dir, c) = console().await;
    let _sim = sim_endpoint(
        &c,
        "limited",
        milc_sim::SimConfig {
            latency_ms: 100,
            rate_limit: Some(milc_sim::parse_rate_window("20/1s").unwrap()),
            ..milc_sim::SimConfig::default()
        },
        false,
    )
    .await;
    let seen = std::sync::Mutex::new(Vec::new());
    let lt = c
        .loadtest(
            LoadTestSpec {
                endpoint: "limited".into(),
                prompt: None,
                variables: Default::default(),
                message: milc_api::lifecycle::default_message(),
                concurrency: vec![1, 16],
                duration_ms: 1500,
                params: Params {
                    max_tokens: Some(8),
                    ..Params::default()
                },
                usecase: None,
            },
            &|p| seen.lock().unwrap().push(p.fraction),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let (one, many) = (&lt.levels[0], &lt.levels[1]);
    // One caller: about ten requests a second, under the limit of twenty; every one answered
    // after the configured 100 ms (plus what HTTP on this machine adds).
    assert_eq!(one.rate_limited, 0, "{one:?}");
    assert_eq!(one.errors, 0);
    assert!(one.requests >= 5, "{one:?}");
    assert!(one.ttft_ms.p50 >= 100.0, "{one:?}");
    assert!(
        one.latency_ms.p50 >= 100.0 && one.latency_ms.p50 < 400.0,
        "{one:?}"
    );
    // Sixteen callers ask for ~160 a second: most are refused with 429.
    assert!(many.rate_limited_rate > 0.5, "{many:?}");
    assert_eq!(many.errors, many.rate_limited);
    // Progress went forward to the end.
    let seen = seen.into_inner().unwrap();
    assert!(seen[0] < 0.5 && *seen.last().unwrap() > 0.9, "{seen:?}");
    // The calls are in the log as a load test's.
    let usage = c
        .usage_calls(&milc_api::usage::CallsQuery {
            since_ms: 0,
            until_ms: i64::MAX,
            endpoint: Some("limited".into()),
            prompt: None,
            source: Some(CallSource::Loadtest),
            outcome: None,
            limit: 100_000,
        })
        .await
        .unwrap();
    assert_eq!(usage.len() as u64, one.requests + many.requests);
    assert_eq!(c.loadtests().await.unwrap()[0].id, lt.id);
}

fn call(endpoint: i64, at_ms: i64, latency_ms: u64, tokens: u64, failed: bool) -> Call {
    let usage = Usage {
        prompt_tokens: 20,
        cached_tokens: 0,
        completion_tokens: tokens,
        reasoning_tokens: 0,
        source: UsageSource::Reported,
    };
    Call {
        at_ms,
        endpoint_id: Some(endpoint),
        model: "m".into(),
        source: CallSource::Gateway,
        outcome: if failed { Outcome::Error } else { Outcome::Ok },
        http_status: None,
        error_kind: None,
        latency_ms,
        ttft_ms: None,
        usage: Some(usage),
        cost: Some(milc_api::Cost {
            pico_usd: tokens as i64 * 1_000_000,
            source: UsageSource::Reported,
        }),
        prompt: None,
        price_id: None,
    }
}

#[tokio::test]
async fn drift_is_flagged_on_a_shifted_endpoint_and_not_on_an_unchanged_one() {
    let (_dir, c) = console().await;
    let shifted = c
        .add_endpoint(
            EndpointSpec::new("shifted", "http://127.0.0.1:9/v1", "m"),
            None,
        )
        .await
        .unwrap()
        .id;
    let steady = c
        .add_endpoint(
            EndpointSpec::new("steady", "http://127.0.0.1:9/v1", "m"),
            None,
        )
        .await
        .unwrap()
        .id;
    let now = milc_core::db::now_ms();
    let hour = 3_600_000;
    // Yesterday and today, 60 calls each; the same spread of latencies and lengths, except
    // that today "shifted" is half again as slow and writes twice as much.
    for i in 0..60u64 {
        let noise = (i * 37) % 40;
        for (ep, today_latency, today_tokens) in [
            (shifted, 150 + noise * 3 / 2, 100 + noise),
            (steady, 100 + noise, 50 + noise / 2),
        ] {
            let yesterday = now - 2 * 12 * hour + (i as i64) * 60_000;
            let today = now - 12 * hour + (i as i64) * 60_000;
            c.call_log()
                .log(&call(ep, yesterday, 100 + noise, 50 + noise / 2, false))
                .await
                .unwrap();
            c.call_log()
                .log(&call(ep, today, today_latency, today_tokens, false))
                .await
                .unwrap();
        }
    }
    let query = |subject: &str| DriftQuery {
        kind: DriftKind::Endpoint,
        subject: subject.into(),
        since_ms: now - 12 * hour,
        until_ms: now + 1,
        baseline: None,
    };
    let r = c.drift(&query("shifted")).await.unwrap();
    assert!(r.drifted);
    let fig = |m: &str| r.figures.iter().find(|f| f.metric.starts_with(m)).unwrap();
    let latency = fig("latency p50");
    assert!(
        latency.drifted && latency.p_value.unwrap() < 1e-6,
        "{latency:?}"
    );
    assert!((latency.change.unwrap() - 0.5).abs() < 0.1, "{latency:?}");
    assert!(fig("output tokens").drifted);
    assert!(!fig("error rate").drifted, "no call failed on either day");
    assert_eq!(fig("refusal rate").test, "none", "no answer is kept");
    assert!(!r.series.is_empty());

    let r = c.drift(&query("steady")).await.unwrap();
    assert!(!r.drifted, "{:#?}", r.figures);
    assert!(r.figures.iter().all(|f| !f.significant), "{:#?}", r.figures);

    // Watched, the shift alerts once per episode.
    c.watch_drift(DriftKind::Endpoint, "shifted", 12 * hour)
        .await
        .unwrap();
    c.watch_drift(DriftKind::Endpoint, "steady", 12 * hour)
        .await
        .unwrap();
    let mut alerts = c.subscribe_alerts();
    let (reports, fired) = c.check_drift().await.unwrap();
    assert_eq!(reports.len(), 2);
    assert!(!fired.is_empty());
    assert!(
        fired
            .iter()
            .all(|a| a.message.contains("endpoint 'shifted'")),
        "{fired:?}"
    );
    assert_eq!(
        alerts.recv().await.unwrap().kind,
        milc_api::usage::AlertKind::Drift
    );
    let (_, again) = c.check_drift().await.unwrap();
    assert!(again.is_empty(), "the same episode alerts once");
}

#[tokio::test]
async fn a_scheduled_evaluation_runs_when_due_and_becomes_its_cards_evidence() {
    let (_dir, c) = console().await;
    let _sim = sim_endpoint(&c, "fast", slow(0), true).await;
    c.create_usecase(UseCaseSpec {
        name: "tickets".into(),
        owner: "ana".into(),
        slo: Slo {
            min_score: Some(ScoreSlo::parse("rouge1>=0.05@tickets").unwrap()),
            ..Slo::default()
        },
        ..UseCaseSpec::default()
    })
    .await
    .unwrap();
    // A card without a chosen candidate has nothing to evaluate.
    let err = c
        .add_schedule(NewSchedule {
            name: "nightly".into(),
            usecase: Some("tickets".into()),
            spec: None,
            every_ms: 86_400_000,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no chosen candidate"), "{err}");
    c.add_candidate(
        "tickets",
        CandidateSpec {
            prompt: "qa@1".into(),
            endpoint: "fast".into(),
            params: Params::default(),
        },
        true,
    )
    .await
    .unwrap();
    let s = c
        .add_schedule(NewSchedule {
            name: "nightly".into(),
            usecase: Some("tickets".into()),
            spec: None,
            every_ms: 86_400_000,
        })
        .await
        .unwrap();
    assert_eq!(s.spec.dataset, "tickets");
    let due = c
        .run_due(&|_, _| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(due.runs.len(), 1, "{due:?}");
    let run = due.runs[0].run.as_ref().unwrap();
    assert_eq!(run.items, 12);
    let card = c.usecase("tickets").await.unwrap();
    assert_eq!(card.chosen().unwrap().verdict, Verdict::Pass);
    assert!(card
        .attached
        .iter()
        .any(|a| a.kind == "run" && a.id == run.run.id));
    // Not due again for a day.
    let again = c
        .run_due(&|_, _| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert!(again.runs.is_empty());
    let s = &c.schedules().await.unwrap()[0];
    assert_eq!(s.last_run, Some(run.run.id));
    assert!(s.next_due_ms > milc_core::db::now_ms() + 86_000_000);
}
