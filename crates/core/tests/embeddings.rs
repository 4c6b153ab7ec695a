//! `/v1/embeddings` through `Console::embed` against the built-in simulator: vectors in input
//! order, the call logged and costed, cosine similarity 1 for the same text.

#[allow(dead_code)]
mod common;

use milc_api::CallSource;
use milc_core::SIMULATOR_ENDPOINT;
use milc_eval::scoring::cosine;

#[tokio::test]
async fn embeddings_come_back_in_order_and_the_call_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    let p = c.prepare(SIMULATOR_ENDPOINT, None).await.unwrap();
    let inputs = ["the same text", "another text", "the same text"].map(String::from);
    let v = c.embed(&p, &inputs, CallSource::Run).await.unwrap();
    assert_eq!(v.len(), 3);
    assert!((cosine(&v[0], &v[2]) - 1.0).abs() < 1e-6);
    assert!(cosine(&v[0], &v[1]) < 0.99);
    let calls = c.calls(5).await.unwrap();
    assert_eq!(calls.len(), 1);
    let call = &calls[0].call;
    assert_eq!(call.source, CallSource::Run);
    assert!(call.usage.unwrap().prompt_tokens > 0);
    assert_eq!(call.usage.unwrap().completion_tokens, 0);
    assert!(call.cost.unwrap().pico_usd > 0, "priced at the input rate");
}
