//! Core throughput figures for BENCHMARKS.md: the redactor, the scorers, the SSE parser, the call
//! log (insert rate, bytes per row, reading the newest page of a large log) and one streamed call
//! end to end against the simulator. Run: `cargo bench -p milc-core --bench core`.

use std::time::{Duration, Instant};

use milc_api::{
    CallSource, ChatRequest, ErrorKind, Message, Outcome, Params, Prices, Role, Usage, UsageSource,
};
use milc_core::llm::client::{Client, Target};
use milc_core::llm::sse::SseParser;
use milc_core::Console;
use tokio_util::sync::CancellationToken;

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    redactor();
    scorers();
    sse_parser();
    rt.block_on(call_log());
    rt.block_on(streamed_calls());
}

/// 10,000 pairs of ~200 words: ROUGE-1/2/L/Lsum (with and without stemming) and sentence BLEU.
fn scorers() {
    use milc_core::eval::scoring::{bleu, rouge};
    let vocab: Vec<String> = (0..3000).map(|i| format!("word{}ing", i % 3000)).collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let pairs: Vec<(String, Vec<String>)> = (0..10_000)
        .map(|_| {
            let reference: Vec<&str> = (0..200).map(|_| vocab[next(400)].as_str()).collect();
            let prediction: Vec<&str> = reference
                .iter()
                .map(|w| {
                    if next(4) == 0 {
                        vocab[next(3000)].as_str()
                    } else {
                        w
                    }
                })
                .collect();
            (prediction.join(" "), vec![reference.join(" ")])
        })
        .collect();
    let words = pairs.len() as f64 * 200.0;
    let time = |label: &str, f: &dyn Fn(&str, &[String]) -> f64| {
        let start = Instant::now();
        let sum: f64 = pairs.iter().map(|(p, r)| f(p, r)).sum();
        let s = start.elapsed().as_secs_f64();
        println!(
            "scorers: {label:<22} 10,000 pairs of 200 words in {s:.2} s → {:.0} pairs/s, {:.1} M words/s (mean {:.4})",
            pairs.len() as f64 / s,
            words / s / 1e6,
            sum / pairs.len() as f64
        );
    };
    for kind in [
        rouge::RougeType::N(1),
        rouge::RougeType::N(2),
        rouge::RougeType::L,
    ] {
        time(&kind.name(), &|p, r| {
            rouge::score(kind, &r[0], p, false).fmeasure
        });
    }
    time("rougeL, stemmed", &|p, r| {
        rouge::score(rouge::RougeType::L, &r[0], p, true).fmeasure
    });
    time("bleu (sentence)", &|p, r| bleu::sentence(p, r));
}

fn redactor() {
    use milc_core::redact::{Placeholders, Redactor};
    let lines = common::pii::corpus();
    let r = Redactor::new();
    for (kind, counts) in common::pii::score(&r, &lines) {
        let (p, rec) = common::pii::precision_recall(counts);
        println!("redactor {kind:6} precision {p:.3} recall {rec:.3} (tp {}, fp {}, fn {}) on {} corpus lines", counts.0, counts.1, counts.2, lines.len());
    }
    // Throughput on the corpus repeated to ~10 MB, one request per line.
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let reps = 10_000_000 / text.iter().map(|t| t.len()).sum::<usize>() + 1;
    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..3 {
        bytes = 0;
        let start = Instant::now();
        for _ in 0..reps {
            for t in &text {
                let red = r.redact(t, &mut Placeholders::default());
                bytes += t.len();
                std::hint::black_box(red);
            }
        }
        best = best.min(start.elapsed());
    }
    println!(
        "redactor throughput: {:.1} MB in {:.2} s → {:.1} MB/s (corpus sentences, best of 3)",
        bytes as f64 / 1e6,
        best.as_secs_f64(),
        bytes as f64 / 1e6 / best.as_secs_f64()
    );
    // Prose with no personal data at all: the common case of a long prompt.
    let prose = "The model integration lifecycle runs from requirements to retirement, and every step is logged. ".repeat(100_000);
    let start = Instant::now();
    let red = r.redact(&prose, &mut Placeholders::default());
    assert!(red.entities.is_empty());
    println!(
        "redactor throughput on clean prose: {:.1} MB/s",
        prose.len() as f64 / 1e6 / start.elapsed().as_secs_f64()
    );
}

fn sse_parser() {
    // A realistic completion stream: ~200-byte chunk events, delivered in 1 KiB network reads.
    let event = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},\"finish_reason\":null}],\"usage\":null}\n\n";
    let stream: String = event.repeat(50_000);
    let bytes = stream.as_bytes();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut n = 0;
        for chunk in bytes.chunks(1024) {
            p.feed(chunk, &mut out);
            n += out.len();
            out.clear();
        }
        p.finish(&mut out);
        assert_eq!(n + out.len(), 50_000);
        best = best.min(start.elapsed());
    }
    let mb = bytes.len() as f64 / 1e6;
    println!("sse parser: {mb:.1} MB, 50000 events in {:.1} ms → {:.0} MB/s, {:.1} M events/s (best of 5)",
        best.as_secs_f64() * 1e3, mb / best.as_secs_f64(), 0.05 / best.as_secs_f64());
}

async fn call_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let console = Console::open(&path).await.unwrap();
    let store = console.call_log().clone();
    let models = [
        "meta/llama-3.3-70b-instruct",
        "nvidia/llama-3.1-nemotron-70b-instruct",
        "milc-sim",
    ];
    let rows = 100_000u32;
    let usage = Usage {
        prompt_tokens: 812,
        cached_tokens: 256,
        completion_tokens: 241,
        reasoning_tokens: 0,
        source: UsageSource::Reported,
    };
    let prices = Prices {
        input: "0.23".parse().unwrap(),
        cached_input: None,
        output: "0.4".parse().unwrap(),
    };
    // Row `i`: every 50th a rate-limited failure; `base` keeps the two rounds apart in time.
    let call = move |base: i64, i: u32| {
        let failed = i.is_multiple_of(50);
        milc_api::Call {
            at_ms: base + i as i64 * 1000,
            endpoint_id: None,
            model: models[i as usize % 3].into(),
            source: CallSource::Gateway,
            outcome: if failed { Outcome::Error } else { Outcome::Ok },
            http_status: Some(if failed { 429 } else { 200 }),
            error_kind: failed.then_some(ErrorKind::RateLimit),
            latency_ms: 900 + (i % 700) as u64,
            ttft_ms: Some(120 + (i % 90) as u64),
            usage: (!failed).then_some(usage),
            cost: (!failed).then(|| prices.cost(&usage)),
            prompt: None,
            price_id: None,
        }
    };
    let start = Instant::now();
    for i in 0..rows {
        store.log(&call(1_700_000_000_000, i)).await.unwrap();
    }
    // Until the last call is in the rollups too, not only committed.
    store.rolled_up().await;
    let took = start.elapsed();

    // The same rows from many tasks at once, as a gateway logs them: the writer commits
    // whatever has queued up together.
    let tasks = 256u32;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (t..rows).step_by(tasks as usize) {
                    store.log(&call(1_800_000_000_000, i)).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    store.rolled_up().await;
    let grouped = start.elapsed();
    println!("call log: {rows} inserts from {tasks} concurrent tasks in {:.2} s → {:.0} calls/s (group commit)",
        grouped.as_secs_f64(), rows as f64 / grouped.as_secs_f64());
    milc_core::db::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut console.store().read().await.unwrap())
        .await
        .unwrap();
    let pages: i64 =
        milc_core::db::query_scalar("SELECT count(*) FROM dbstat WHERE name = 'calls'")
            .fetch_one(&mut console.store().read().await.unwrap())
            .await
            .unwrap_or(0);
    let page_size: i64 = milc_core::db::query_scalar("PRAGMA page_size")
        .fetch_one(&mut console.store().read().await.unwrap())
        .await
        .unwrap();
    let file = std::fs::metadata(&path).unwrap().len();
    let total = 2 * rows; // both rounds are in the table now
    let start = Instant::now();
    for _ in 0..100 {
        assert_eq!(console.calls(50).await.unwrap().len(), 50);
    }
    let page = start.elapsed() / 100;
    println!("call log: {rows} sequential inserts in {:.2} s → {:.0} calls/s (one at a time: each its own commit, WAL, synchronous=NORMAL)",
        took.as_secs_f64(), rows as f64 / took.as_secs_f64());
    if pages > 0 {
        println!("call log: calls table {:.1} bytes/row ({} pages of {page_size} B); whole file {:.1} MB",
            (pages * page_size) as f64 / total as f64, pages, file as f64 / 1e6);
    } else {
        println!(
            "call log: whole file {:.1} MB → {:.1} bytes/row including indexes",
            file as f64 / 1e6,
            file as f64 / total as f64
        );
    }
    println!(
        "call log: newest 50 of {total} (with endpoint and model names) in {:.2} ms",
        page.as_secs_f64() * 1e3
    );
}

async fn streamed_calls() {
    let sim = milc_sim::start(([127, 0, 0, 1], 0).into(), milc_sim::SimConfig::default())
        .await
        .unwrap();
    let target = Target {
        base_url: sim.base_url(),
        model: "milc-sim".into(),
        token: None,
        headers: Default::default(),
        timeout: Duration::from_secs(10),
        max_retries: 0,
    };
    let client = Client::new();
    let cancel = CancellationToken::new();
    // The HTTP client is built on first use (the system's root certificates are loaded then);
    // that is start-up, not the cost of a call.
    let first = ChatRequest::new(vec![Message::new(Role::User, "hello")], Params::default());
    assert!(client
        .chat(&target, &first, &mut |_| {}, &cancel)
        .await
        .error
        .is_none());
    let n = 500;
    let mut tokens = 0;
    let start = Instant::now();
    for i in 0..n {
        let req = ChatRequest::new(
            vec![Message::new(Role::User, format!("question number {i}"))],
            Params::default(),
        );
        let ex = client.chat(&target, &req, &mut |_| {}, &cancel).await;
        assert!(ex.error.is_none());
        tokens += ex.usage.unwrap().completion_tokens;
    }
    let took = start.elapsed();
    println!("client: {n} sequential streamed calls to the simulator in {:.2} s → {:.2} ms per call, {:.0} tokens/s parsed",
        took.as_secs_f64(), took.as_secs_f64() * 1e3 / n as f64, tokens as f64 / took.as_secs_f64());
}
