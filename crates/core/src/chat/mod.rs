//! Chat calls: one request to an endpoint (streamed or not), rendered from the variables,
//! redacted as the policy says, logged whatever happens; the Playground's history and the bodies
//! kept with the call log.

pub mod storage;

use std::time::Duration;

use milc_api::prompt::{
    CallBody, Figures, HistoryEntry, Pick, PromptPin, PromptRef, PromptVersion, RedactMode,
};
use milc_api::{
    tokens_per_sec, CallError, CallSource, ChatRequest, ChatResult, Endpoint, ErrorKind, Message,
    Outcome,
};
use milc_llm::client::Target;
use milc_llm::ratelimit::RateGate;
use milc_llm::structured;
use tokio_util::sync::CancellationToken;

use crate::calllog::{CallDetail, Operation};
use crate::db::{self, now_ms};
use crate::redact::{Placeholders, Redactor};
use crate::{endpoints, prompts, retirement, usage, Console, Error};

/// What calls to one endpoint with one prompt version share; see [`Console::prepare`].
pub struct Prepared {
    ep: Endpoint,
    pinned: Option<PromptVersion>,
    policy: milc_api::RedactionPolicy,
    redactor: Redactor,
    target: Target,
    /// Requests to this endpoint kept within the limits its responses announce.
    gate: RateGate,
    /// The endpoint's prices over time: a call is costed with the one in force when it ends.
    prices: usage::Timeline,
    /// The run these calls are made for, if any (exported with each call).
    run_id: Option<i64>,
    /// Whether the gate heeds the limits answers announce (a load test does not: it measures
    /// where the server starts refusing).
    heeds_limits: bool,
}

impl Prepared {
    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// The prompt version calls are made with, if any.
    pub fn pinned(&self) -> Option<&PromptVersion> {
        self.pinned.as_ref()
    }

    pub fn pin(&self) -> Option<PromptPin> {
        self.pinned.as_ref().map(|v| PromptPin {
            prompt: v.prompt.clone(),
            version: v.version,
        })
    }

    pub fn policy(&self) -> &milc_api::RedactionPolicy {
        &self.policy
    }

    /// The requests to this endpoint kept within the limits its responses announce.
    pub fn gate(&self) -> &RateGate {
        &self.gate
    }

    /// `text` redacted as it is sent (call only where the policy redacts before sending).
    pub fn redact_sending(&self, text: &str, placeholders: &mut Placeholders) -> String {
        self.redactor.redact(text, placeholders).text
    }

    /// The same endpoint, sending whatever the rate-limit headers announce: the server's 429s
    /// are what a load test measures.
    pub fn ignoring_rate_limits(mut self) -> Self {
        self.heeds_limits = false;
        self
    }

    /// The same endpoint, its calls made for run `id`.
    pub fn in_run(mut self, id: i64) -> Self {
        self.run_id = Some(id);
        self
    }

    /// What the exporter shows of a call made here that its log row does not keep.
    pub(crate) fn detail(&self, operation: Operation) -> CallDetail {
        CallDetail {
            operation,
            endpoint: Some(self.ep.spec.name.clone()),
            server: Some(self.target.base_url.clone()),
            run_id: self.run_id,
            ..CallDetail::default()
        }
    }

    /// The same endpoint with another timeout or retry count (a gateway arm's overrides).
    pub fn with_overrides(mut self, timeout_ms: Option<u64>, max_retries: Option<u32>) -> Self {
        if let Some(t) = timeout_ms {
            self.target.timeout = Duration::from_millis(t);
        }
        if let Some(n) = max_retries {
            self.target.max_retries = n;
        }
        self
    }

    /// The cost of `usage` now, and the dated price it used (`None`: the endpoint's own).
    pub(crate) fn cost_now(
        &self,
        usage: Option<milc_api::Usage>,
    ) -> (Option<milc_api::Cost>, Option<i64>) {
        let (id, prices) = usage::price_at(&self.prices, now_ms());
        let prices = if self.prices.is_empty() {
            self.ep.spec.prices
        } else {
            prices
        };
        (usage.map(|u| prices.cost(&u)), id)
    }

    /// `text` as a kept body stores it: always redacted, whatever the mode (bodies are kept
    /// only with `log_bodies`, and always pass the redactor).
    pub fn redact_body(&self, text: &str, placeholders: &mut Placeholders) -> String {
        self.redactor.redact(text, placeholders).text
    }

    /// `text` as it may be stored under this policy: redacted when it redacts before logging.
    pub fn redact_for_storage(&self, text: &str) -> String {
        if self.policy.mode.logging() {
            self.redactor
                .redact(text, &mut Placeholders::default())
                .text
        } else {
            text.to_owned()
        }
    }
}

impl Console {
    /// Sends a chat request to the named endpoint, calling `on_delta` with content as it arrives,
    /// and logs the call whatever happens. The messages are rendered strictly with the request's
    /// variables; the redaction policy (the pinned prompt version's, else the endpoint's) decides
    /// what is redacted before sending and before storing. Calls from the Playground and `milc
    /// chat` are kept in the history. A failed or cancelled call is `Error::Call`, with the id of
    /// its log row and any partial output.
    #[tracing::instrument(skip_all, fields(endpoint = name, source = source.as_str()), err(level = "info"))]
    pub async fn chat(
        &self,
        name: &str,
        req: &ChatRequest,
        source: CallSource,
        on_delta: &mut (dyn FnMut(&str) + Send),
        cancel: &CancellationToken,
    ) -> Result<ChatResult, Error> {
        let prepared = self.prepare(name, req.prompt.as_ref()).await?;
        self.chat_prepared(&prepared, req, source, on_delta, cancel)
            .await
    }

    /// Looks up what every call to `name` (with prompt version `pin`) needs: the endpoint (a
    /// retired one refuses, naming its replacement; a deprecated one is logged), the pinned version, the redaction policy and its compiled patterns,
    /// and the request target with the token read from the keyring. The run engine prepares once
    /// per run instead of once per item.
    pub async fn prepare(&self, name: &str, pin: Option<&PromptPin>) -> Result<Prepared, Error> {
        let ep = endpoints::storage::endpoint_by_name(&mut self.store.read().await?, name).await?;
        retirement::check_usable(&ep)?;
        let pinned = match pin {
            Some(pin) => {
                Some(prompts::storage::resolve(&mut self.store.read().await?, &pin_ref(pin)).await?)
            }
            None => None,
        };
        let policy = pinned
            .as_ref()
            .and_then(|v| v.content.redaction.clone())
            .unwrap_or_else(|| ep.spec.redaction.clone());
        let redactor = Redactor::for_policy(&policy, "redaction")?;
        let target = self.target(&ep).await?;
        let prices = usage::storage::timeline(&mut self.store.read().await?, ep.id).await?;
        Ok(Prepared {
            ep,
            pinned,
            policy,
            redactor,
            target,
            gate: RateGate::default(),
            prices,
            run_id: None,
            heeds_limits: true,
        })
    }

    /// Embeds `inputs` on a prepared endpoint and logs the call (usage as reported, else
    /// estimated; completion tokens are zero), like any other call.
    pub async fn embed(
        &self,
        p: &Prepared,
        inputs: &[String],
        source: CallSource,
    ) -> Result<Vec<Vec<f64>>, Error> {
        // The policy applies to embeddings too: redacted before sending when it says so.
        let mut placeholders = Placeholders::default();
        let sent: Vec<String> = if p.policy.mode.sending() {
            inputs
                .iter()
                .map(|i| p.redactor.redact(i, &mut placeholders).text)
                .collect()
        } else {
            inputs.to_vec()
        };
        let start = std::time::Instant::now();
        let r = self.client.embeddings(&p.target, &sent).await;
        let latency_ms = start.elapsed().as_millis() as u64;
        let usage = r.as_ref().ok().map(|(_, reported)| milc_api::Usage {
            prompt_tokens: reported.unwrap_or_else(|| {
                inputs
                    .iter()
                    .map(|i| milc_llm::tokens::text_tokens(&p.target.model, i))
                    .sum()
            }),
            cached_tokens: 0,
            completion_tokens: 0,
            reasoning_tokens: 0,
            source: if reported.is_some() {
                milc_api::UsageSource::Reported
            } else {
                milc_api::UsageSource::Estimated
            },
        });
        let (cost, price_id) = p.cost_now(usage);
        let call = milc_api::Call {
            at_ms: now_ms(),
            endpoint_id: Some(p.ep.id),
            model: p.ep.spec.model.clone(),
            source,
            outcome: if r.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            },
            http_status: r.as_ref().err().and_then(|e| e.status),
            error_kind: r.as_ref().err().map(|e| e.kind),
            latency_ms,
            ttft_ms: None,
            usage,
            cost,
            prompt: p.pinned.as_ref().map(|v| PromptPin {
                prompt: v.prompt.clone(),
                version: v.version,
            }),
            price_id,
        };
        let call_id = self
            .log
            .log_with(&call, p.detail(Operation::Embeddings))
            .await?;
        r.map(|(v, _)| v).map_err(|error| Error::Call {
            error,
            call_id: Some(call_id),
            partial: String::new(),
        })
    }

    /// `chat` with the lookups done: see [`Console::prepare`].
    pub async fn chat_prepared(
        &self,
        p: &Prepared,
        req: &ChatRequest,
        source: CallSource,
        on_delta: &mut (dyn FnMut(&str) + Send),
        cancel: &CancellationToken,
    ) -> Result<ChatResult, Error> {
        let (ep, pinned, policy, redactor) = (&p.ep, &p.pinned, &p.policy, &p.redactor);
        req.params
            .check()
            .map_err(|(field, allowed)| Error::invalid(field, allowed))?;
        if req.messages.is_empty() {
            return Err(Error::invalid(
                "messages",
                "a chat needs at least one message",
            ));
        }
        let (rendered, unused_variables) = prompts::render(&req.messages, &req.variables)?;

        // One set of placeholders per request: the same value is `[EMAIL_1]` in what is sent,
        // in what is stored, and in the answer that is restored.
        let mut placeholders = Placeholders::default();
        let mut redacted = Vec::new();
        let sent: Vec<Message> = if policy.mode.sending() {
            rendered
                .iter()
                .map(|m| {
                    let r = redactor.redact(&m.content, &mut placeholders);
                    redacted.extend(r.entities);
                    Message::new(m.role, r.text)
                })
                .collect()
        } else {
            rendered
        };
        let wire = ChatRequest {
            stream: req.stream,
            ..ChatRequest::new(sent, req.params.clone())
        };

        let ticket = tokio::select! {
            t = p.gate.acquire() => t,
            _ = cancel.cancelled() => {
                return Err(Error::Call {
                    error: milc_llm::client::cancelled(),
                    call_id: None,
                    partial: String::new(),
                })
            }
        };
        let ex = self.client.chat(&p.target, &wire, on_delta, cancel).await;
        if let Some(r) = ex.rate_limit.as_ref().filter(|_| p.heeds_limits) {
            p.gate.observe(&ticket, r);
        }
        drop(ticket);
        let (cost, price_id) = p.cost_now(ex.usage);
        let ms = |d: Duration| d.as_millis() as u64;
        let call = milc_api::Call {
            at_ms: now_ms(),
            endpoint_id: Some(ep.id),
            model: ep.spec.model.clone(),
            source,
            outcome: match &ex.error {
                None => Outcome::Ok,
                Some(e) if e.kind == ErrorKind::Cancelled => Outcome::Cancelled,
                Some(_) => Outcome::Error,
            },
            http_status: ex.status,
            error_kind: ex.error.as_ref().map(|e| e.kind),
            latency_ms: ms(ex.latency),
            ttft_ms: ex.ttft.map(ms),
            usage: ex.usage,
            cost,
            prompt: req.prompt.clone(),
            price_id,
        };
        // What is stored: bodies (only where the policy allows, always redacted) and history.
        let mut store_text = |text: &str, redact: bool| {
            if redact {
                redactor.redact(text, &mut placeholders).text
            } else {
                text.to_owned()
            }
        };
        let bodies = policy.log_bodies.then(|| {
            let mut request = milc_llm::client::request_body(&ep.spec.model, &wire);
            for m in request["messages"].as_array_mut().into_iter().flatten() {
                if let Some(c) = m["content"].as_str() {
                    m["content"] = store_text(c, true).into();
                }
            }
            (request, store_text(&ex.output, true))
        });
        let exporting = self.log.tap().is_on();
        let detail = CallDetail {
            response_model: ex.response_model.clone(),
            finish_reason: ex.finish_reason.clone(),
            params: exporting.then(|| req.params.clone()),
            bodies: bodies.as_ref().filter(|_| exporting).cloned(),
            ..p.detail(Operation::Chat)
        };
        let call_id = self.log.log_with(&call, detail).await?;
        let figures = Figures {
            ttft_ms: call.ttft_ms,
            latency_ms: call.latency_ms,
            usage: ex.usage,
            cost,
            tokens_per_sec: ex
                .usage
                .and_then(|u| tokens_per_sec(u.completion_tokens, call.latency_ms, call.ttft_ms)),
        };
        if let Some((request, response)) = bodies {
            storage::insert_call_body(
                &mut self.store.read().await?,
                &CallBody {
                    call_id,
                    request,
                    response,
                },
            )
            .await?;
        }
        let history_id = if matches!(source, CallSource::Playground | CallSource::Cli) {
            let inputs = policy.mode != RedactMode::Off;
            let entry = HistoryEntry {
                id: 0,
                at_ms: call.at_ms,
                call_id: Some(call_id),
                endpoint: ep.spec.name.clone(),
                prompt: req.prompt.clone(),
                messages: req
                    .messages
                    .iter()
                    .map(|m| Message::new(m.role, store_text(&m.content, inputs)))
                    .collect(),
                variables: req
                    .variables
                    .iter()
                    .map(|(k, v)| (k.clone(), store_text(v, inputs)))
                    .collect(),
                params: req.params.clone(),
                output: store_text(&ex.output, policy.mode.logging()),
                outcome: call.outcome,
                error: ex.error.as_ref().map(ToString::to_string),
                figures: figures.clone(),
                redacted: inputs,
            };
            let version_id = match &pinned {
                Some(v) => {
                    db::prompt_version_id(&mut self.store.read().await?, &v.prompt, v.version)
                        .await?
                }
                None => None,
            };
            Some(storage::insert_history(&mut self.store.read().await?, &entry, version_id).await?)
        } else {
            None
        };

        match (ex.error, ex.usage, cost) {
            (None, Some(usage), Some(cost)) => {
                let restored = Some(placeholders.restore(&ex.output))
                    .filter(|r| policy.mode.sending() && *r != ex.output);
                let structured = req
                    .params
                    .response_format
                    .as_ref()
                    .and_then(|f| structured::check(f, &ex.output));
                Ok(ChatResult {
                    call_id,
                    output: ex.output,
                    finish_reason: ex.finish_reason,
                    ttft_ms: call.ttft_ms,
                    latency_ms: call.latency_ms,
                    tokens_per_sec: figures.tokens_per_sec,
                    usage,
                    cost,
                    attempts: ex.attempts,
                    unused_variables,
                    redacted,
                    restored,
                    structured,
                    history_id,
                })
            }
            (error, _, _) => Err(Error::Call {
                error: error.unwrap_or_else(|| CallError {
                    kind: ErrorKind::Internal,
                    message: "the call succeeded without usage".into(),
                    status: None,
                }),
                call_id: Some(call_id),
                partial: ex.output,
            }),
        }
    }

    /// The history, newest first, filtered to entries holding every word of `search`.
    pub async fn history(&self, search: &str, limit: u32) -> Result<Vec<HistoryEntry>, Error> {
        Ok(storage::history(&mut self.store.read().await?, search, limit).await?)
    }

    /// The bodies kept with a call, if its policy kept any.
    pub async fn call_body(&self, call_id: i64) -> Result<Option<CallBody>, Error> {
        Ok(storage::call_body(&mut self.store.read().await?, call_id).await?)
    }
}

fn pin_ref(pin: &PromptPin) -> PromptRef {
    PromptRef {
        name: pin.prompt.clone(),
        pick: Pick::Version(pin.version),
    }
}
