//! Load benchmark: thousands of concurrent streaming chat completions against an in-process
//! simulator, once unpaced (raw throughput) and once at 20 tokens/s (realistic pacing, where wall
//! time should track the longest stream's token count / 20, i.e. the simulator is not the
//! bottleneck). Run with `cargo bench -p milc-sim --bench streams`.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use milc_sim::{start, SimConfig};
use serde_json::{json, Value};

struct Outcome {
    /// Send to first non-empty content delta.
    ttft: Duration,
    /// Send to last content delta.
    last: Duration,
    content_chunks: u64,
    usage_tokens: u64,
}

/// Finds complete SSE events (terminated by a blank line) in `buf[from..]`.
fn next_event(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    buf[from..]
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (from, from + i))
}

async fn one_stream(client: reqwest::Client, url: String, i: usize) -> Result<Outcome, String> {
    let body = json!({
        "model": "milc-sim",
        "messages": [{"role": "user", "content": format!(
            "Ticket {i}: the export to CSV fails with a timeout error after two minutes. It \
             started after the last update and blocks our month-end reporting. We need a fix or \
             a workaround soon, please."
        )}],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let started = Instant::now();
    let res = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("status {}", res.status()));
    }
    let mut body = res.bytes_stream();
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut consumed = 0;
    let mut ttft = None;
    let mut last = Duration::ZERO;
    let mut content_chunks = 0;
    let mut usage_tokens = None;
    let mut done = false;
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        while let Some((start, end)) = next_event(&buf, consumed) {
            consumed = end + 2;
            let Some(data) = buf[start..end].strip_prefix(b"data: ") else {
                continue;
            };
            if data == b"[DONE]" {
                done = true;
                continue;
            }
            let v: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
            if let Some(content) = v["choices"][0]["delta"]["content"].as_str() {
                if !content.is_empty() {
                    content_chunks += 1;
                    last = started.elapsed();
                    ttft.get_or_insert(last);
                }
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                usage_tokens = Some(n);
            }
        }
    }
    if !done {
        return Err("stream ended without [DONE]".into());
    }
    Ok(Outcome {
        ttft: ttft.ok_or("no content")?,
        last,
        content_chunks,
        usage_tokens: usage_tokens.ok_or("no usage chunk")?,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn run(streams: usize, tokens_per_sec: f64) {
    let sim = start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            tokens_per_sec,
            ..SimConfig::default()
        },
    )
    .await
    .expect("start simulator");
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(streams)
        .build()
        .unwrap();
    let url = format!("{}/chat/completions", sim.base_url());
    // The first round pays for thousands of simultaneous TCP handshakes on the same cores; the
    // second reuses the pooled connections and so shows the simulator's own cost.
    for round in ["cold connections", "warm connections"] {
        measure(&client, &url, streams, tokens_per_sec, round).await;
    }
    sim.stop().await;
}

async fn measure(
    client: &reqwest::Client,
    url: &str,
    streams: usize,
    tokens_per_sec: f64,
    round: &str,
) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| tokio::spawn(one_stream(client.clone(), url.to_owned(), i)))
        .collect();
    let mut outcomes = Vec::with_capacity(streams);
    let mut failures = 0;
    for task in tasks {
        match task.await.expect("stream task panicked") {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                if failures < 5 {
                    eprintln!("stream failed: {e}");
                }
                failures += 1;
            }
        }
    }
    let wall = started.elapsed();

    let tokens: u64 = outcomes.iter().map(|o| o.content_chunks).sum();
    let mismatched = outcomes
        .iter()
        .filter(|o| o.content_chunks != o.usage_tokens)
        .count();
    let longest = outcomes.iter().map(|o| o.content_chunks).max().unwrap_or(0);
    let mut ttfts: Vec<Duration> = outcomes.iter().map(|o| o.ttft).collect();
    ttfts.sort();

    let pace = if tokens_per_sec > 0.0 {
        format!("{tokens_per_sec} tok/s")
    } else {
        "unpaced".to_owned()
    };
    println!("== {streams} concurrent streams, {pace}, {round}");
    println!(
        "streams: {} ok, {failures} failed, {mismatched} with chunk count != usage",
        outcomes.len()
    );
    println!("total tokens: {tokens}");
    println!("wall time: {:.3} s", wall.as_secs_f64());
    println!("tokens/s: {:.0}", tokens as f64 / wall.as_secs_f64());
    if !ttfts.is_empty() {
        println!(
            "ttft p50: {:.1} ms, p99: {:.1} ms",
            percentile(&ttfts, 0.50).as_secs_f64() * 1e3,
            percentile(&ttfts, 0.99).as_secs_f64() * 1e3,
        );
    }
    if tokens_per_sec > 0.0 && longest > 0 {
        // The first token leaves with the headers, the rest one interval apart, so a stream of
        // n tokens ideally spends (n - 1) / rate between its first and last token.
        let ideal = (longest - 1) as f64 / tokens_per_sec;
        println!(
            "pacing: longest stream {longest} tokens, ideal {ideal:.3} s at {tokens_per_sec} tok/s, \
             wall/ideal = {:.3} (includes the ramp-up of all requests)",
            wall.as_secs_f64() / ideal
        );
        let mut late: Vec<Duration> = outcomes
            .iter()
            .map(|o| {
                let ideal = Duration::from_secs_f64((o.content_chunks - 1) as f64 / tokens_per_sec);
                (o.last - o.ttft).saturating_sub(ideal)
            })
            .collect();
        late.sort();
        println!(
            "per-stream lateness vs ideal pacing: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&late, 0.50).as_secs_f64() * 1e3,
            percentile(&late, 0.99).as_secs_f64() * 1e3,
            late.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        run(2000, 0.0).await;
        run(2000, 20.0).await;
        run(5000, 20.0).await;
    });
}
