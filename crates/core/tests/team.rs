//! What a team meets and one person never does, with real concurrent connections on one store
//! (a SQLite file, or a PostgreSQL workspace under MILC_TEST_ENGINE=postgres): two people moving
//! the same label at once, many raters voting at once, two gateways' canary judges taking one
//! look between them, a long read (an archive) seeing one moment while others write. (Two
//! machines resuming one run: tests/runs.rs; prices recomputed while consoles log:
//! tests/usage.rs.)

#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use milc_api::compare::{Ballot, Verdict};
use milc_core::Console;

async fn team(dir: &tempfile::TempDir, people: &[&str]) -> Vec<Arc<Console>> {
    let path = dir.path().join("milc.db");
    let mut out = Vec::new();
    for p in people {
        let c = common::open(&path).await.unwrap();
        c.set_author(p).unwrap();
        out.push(Arc::new(c));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_moving_one_label_at_once_are_recorded_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let people = team(&dir, &["ana", "bob"]).await;
    let sample = people[0].demo_load().await.unwrap();
    let (ana, bob) = (&people[0], &people[1]);
    let moves = |c: &Arc<Console>, to: u32| {
        let (c, prompt) = (Arc::clone(c), sample.prompt.clone());
        async move {
            let mut made = 0;
            for _ in 0..25 {
                made += c
                    .label_prompt(&prompt, to, "staging")
                    .await
                    .unwrap()
                    .is_some() as usize;
            }
            made
        }
    };
    let (a, b) = tokio::join!(moves(ana, 1), moves(bob, 2));
    assert!(a >= 1 && b >= 1, "each made a move: {a}, {b}");

    let detail = ana.prompt(&sample.prompt).await.unwrap();
    let mut history: Vec<_> = detail
        .label_history
        .into_iter()
        .filter(|m| m.label == "staging")
        .collect();
    history.reverse(); // oldest first
    assert_eq!(history.len(), a + b, "every move that happened is recorded");
    for pair in history.windows(2) {
        assert_eq!(
            pair[1].from,
            Some(pair[0].to),
            "each move starts where the one before it left the label: {pair:?}"
        );
    }
    let last = history.last().unwrap();
    let authors = |to: u32| if to == 1 { "ana" } else { "bob" };
    assert!(
        history.iter().all(|m| m.author == authors(m.to)),
        "{history:?}"
    );
    let now = detail
        .versions
        .iter()
        .find(|v| v.labels.contains(&"staging".to_owned()))
        .unwrap();
    assert_eq!(
        now.version, last.to,
        "the label is where the last move put it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_from_many_raters_at_once_are_all_counted() {
    let dir = tempfile::tempdir().unwrap();
    let raters = ["ana", "bob", "cai", "dee", "eli", "fay"];
    let people = team(&dir, &raters).await;
    let sample = people[0].demo_load().await.unwrap();
    let tasks = people[0]
        .rating_task(&sample.comparison, "ana", 0)
        .await
        .unwrap()
        .total;
    let mut handles = Vec::new();
    for (c, rater) in people.iter().zip(raters) {
        let (c, name) = (Arc::clone(c), sample.comparison.clone());
        handles.push(tokio::spawn(async move {
            for i in 0..tasks {
                let verdict = [Verdict::Left, Verdict::Right, Verdict::Tie][(i % 3) as usize];
                let ballot = Ballot {
                    verdict,
                    comment: None,
                    criteria: Default::default(),
                };
                c.cast_vote(&name, rater, i, &ballot).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let results = people[0]
        .comparison_results(&sample.comparison, None)
        .await
        .unwrap();
    for rater in raters {
        let p = results.raters.iter().find(|p| p.rater == rater).unwrap();
        assert_eq!(p.rated, tasks, "{rater} rated every task, no vote lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_judges_takes_each_look_once() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = team(&dir, &["gw1", "gw2", "gw3"]).await;
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmodel = \"support\"\n\
         [[route.arm]]\nname = \"stable\"\nendpoint = \"Local simulator\"\nweight = 90\n\
         [[route.arm]]\nname = \"canary\"\nendpoint = \"Local simulator\"\nweight = 10\n\
         [route.canary]\nbaseline = \"stable\"\ncandidate = \"canary\"\nevery_s = 60\n",
    )
    .unwrap();
    fleet[0].load_routes_file(&routes).await.unwrap();
    // Every gateway's clock comes due at once, three times over: one look each time at most,
    // and the first one is taken.
    let every = Duration::from_secs(60);
    let mut taken = 0;
    for _ in 0..3 {
        let looks = futures_util::future::join_all(
            fleet.iter().map(|c| c.claim_canary_look("support", every)),
        )
        .await;
        taken += looks.into_iter().filter(|l| *l.as_ref().unwrap()).count();
    }
    assert_eq!(
        taken, 1,
        "one look in the minute, whichever gateway took it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_noted_with_who_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let people = team(&dir, &["ana", "bob"]).await;
    let (ana, bob) = (&people[0], &people[1]);
    ana.add_endpoint(
        milc_api::EndpointSpec::new("vllm", "http://127.0.0.1:9/v1", "m"),
        None,
    )
    .await
    .unwrap();
    bob.set_price(
        "vllm",
        0,
        &milc_api::Prices {
            input: "1".parse().unwrap(),
            cached_input: None,
            output: "2".parse().unwrap(),
        },
    )
    .await
    .unwrap();
    bob.set_budget(Some("vllm"), Some("5"), None).await.unwrap();
    ana.create_gateway_key("ci", None, None).await.unwrap();
    ana.remove_endpoint("vllm").await.unwrap();
    let seen: Vec<(String, String, String)> = bob
        .activity(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.author, a.action, a.subject))
        .collect();
    let row = |who: &str, what: &str, on: &str| (who.into(), what.into(), on.into());
    assert_eq!(
        seen,
        vec![
            row("ana", "endpoint.remove", "vllm"),
            row("ana", "gateway_key.create", "ci"),
            row("bob", "budget.set", "vllm"),
            row("bob", "price.set", "vllm"),
            row("ana", "endpoint.add", "vllm"),
        ],
        "newest first, each with who made it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_reads_one_moment_while_others_write() {
    let dir = tempfile::tempdir().unwrap();
    let people = team(&dir, &["lead", "ana"]).await;
    let (lead, ana) = (&people[0], &people[1]);
    let count = "SELECT count(*) FROM endpoints";
    let mut snap = lead.store().snapshot().await.unwrap();
    let before: i64 = milc_core::db::query_scalar(count)
        .fetch_one(&mut snap)
        .await
        .unwrap();
    // Another member adds an endpoint while the snapshot (an archive, an export) is open.
    ana.add_endpoint(
        milc_api::EndpointSpec::new("added-meanwhile", "http://127.0.0.1:9/v1", "m"),
        None,
    )
    .await
    .unwrap();
    let during: i64 = milc_core::db::query_scalar(count)
        .fetch_one(&mut snap)
        .await
        .unwrap();
    assert_eq!(
        during, before,
        "the snapshot still reads the moment it began"
    );
    drop(snap);
    let mut now = lead.store().read().await.unwrap();
    let after: i64 = milc_core::db::query_scalar(count)
        .fetch_one(&mut now)
        .await
        .unwrap();
    assert_eq!(after, before + 1, "a new read sees the change");
}
