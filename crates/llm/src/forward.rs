//! Opening an upstream request for a gateway: the client's body is sent as it is (the gateway
//! has already set the model and usage options), retried by the same rules as every call until
//! a response starts, and handed back unread so the gateway can pass its bytes on as they
//! arrive. A final upstream error keeps its status, headers and body, to pass through.

use std::time::SystemTime;

use bytes::Bytes;
use milc_api::{CallError, ErrorKind};
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use tokio_util::sync::CancellationToken;

use crate::client::{cancelled, failure, headers, send, url, Client, Target};
use crate::retry::{self, Wait};

/// How opening an upstream request ended.
pub enum Opened {
    /// A success status; the body is not read yet.
    Ok(reqwest::Response),
    /// The upstream answered an error status after any retries: pass it through.
    Upstream {
        status: u16,
        headers: HeaderMap,
        body: Bytes,
        error: CallError,
    },
    /// No answer: connection refused, timeout, cancelled.
    Failed(CallError),
}

impl Client {
    /// `POST {base}/{path}` with `body` (already JSON), retried on what the retry rules allow
    /// (`target.max_retries`), until a response starts. Returns how it ended and the attempts.
    pub async fn open(
        &self,
        t: &Target,
        path: &str,
        body: Bytes,
        stream: bool,
        cancel: &CancellationToken,
    ) -> (Opened, u32) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => return (Opened::Failed(cancelled()), attempts),
                r = self.attempt_open(t, path, body.clone(), stream) => r,
            };
            let failed = match outcome {
                Ok(resp) => return (Opened::Ok(resp), attempts),
                Err(f) => f,
            };
            let retryable = attempts <= t.max_retries
                && retry::is_retryable(
                    failed.error.kind,
                    failed.error.status,
                    failed.headers.as_deref(),
                );
            let wait = retryable.then(|| {
                retry::delay(
                    failed.headers.as_deref(),
                    attempts - 1,
                    SystemTime::now(),
                    rand::random::<f64>(),
                )
            });
            match wait {
                Some(Wait::For(d)) => {
                    tokio::select! {
                        _ = cancel.cancelled() => return (Opened::Failed(cancelled()), attempts),
                        _ = tokio::time::sleep(d) => {}
                    }
                }
                _ => {
                    let opened = match (failed.error.status, failed.headers, failed.body) {
                        (Some(status), Some(headers), Some(body)) => Opened::Upstream {
                            status,
                            headers: *headers,
                            body,
                            error: failed.error,
                        },
                        _ => Opened::Failed(failed.error),
                    };
                    return (opened, attempts);
                }
            }
        }
    }

    async fn attempt_open(
        &self,
        t: &Target,
        path: &str,
        body: Bytes,
        stream: bool,
    ) -> Result<reqwest::Response, crate::client::Failed> {
        let mut rb = self
            .http
            .post(url(&t.base_url, path))
            .headers(headers(t)?)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if stream {
            rb = rb.header(ACCEPT, "text/event-stream");
        }
        let resp = send(rb, t.timeout).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(failure(resp, t.timeout).await)
        }
    }
}

/// The error for an upstream that stopped answering mid-way.
pub fn stalled(timeout_ms: u128, status: u16) -> CallError {
    CallError {
        kind: ErrorKind::Timeout,
        message: format!("the upstream stalled: nothing arrived for {timeout_ms} ms"),
        status: Some(status),
    }
}
