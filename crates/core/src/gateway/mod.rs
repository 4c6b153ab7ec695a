//! The gateway's domain: routes and arms (checked, stored, loaded from and written to a TOML
//! file), gateway keys (only a hash is kept), the live routes a running gateway serves (each arm
//! prepared like any chat call: endpoint, token, policy, prices, prompt version), the upstream
//! body an arm sends, gateway calls logged with their route and arm, feedback, and the canary
//! judge (`canary.rs`). The HTTP server itself is `milc-gateway`.

pub mod canary;
mod file;
pub mod storage;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use milc_api::gateway::{Feedback, GatewayKey, Route, RouteSpec};
use milc_api::prompt::{CallBody, PromptPin};
use milc_api::{
    CallError, CallSource, Cost, ErrorKind, Message, Outcome, Role, Usage, UsageSource,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::calllog::{CallDetail, GatewayTag, Operation};
use crate::chat::Prepared;
use crate::db::{self, hex, now_ms, StoreError};
use crate::redact::Placeholders;
use crate::{chat, endpoints, Console, Error};

pub use file::{parse_routes, routes_toml};

/// How a caller is recognised for sticky assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sticky {
    /// A request header (lower-case name).
    Header(String),
    /// The body's `user` field.
    User,
}

impl Sticky {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "user" {
            return Ok(Self::User);
        }
        match s.strip_prefix("header:") {
            Some(h)
                if !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Ok(Self::Header(h.to_ascii_lowercase()))
            }
            _ => Err(format!(
                "'{s}': write `user` (the body's user field) or `header:NAME`"
            )),
        }
    }
}

/// One arm as a running gateway serves it.
pub struct LiveArm {
    pub name: String,
    pub weight: f64,
    /// Index of the fallback arm in the route's arms.
    pub fallback: Option<usize>,
    /// Why the arm cannot serve (its endpoint is retired, its prompt is gone, …): it takes
    /// no traffic; its callers go to its fallback or get this error.
    pub prepared: Result<Prepared, String>,
}

/// One route as a running gateway serves it.
pub struct LiveRoute {
    pub id: i64,
    pub model: String,
    pub sticky: Option<Sticky>,
    pub arms: Vec<LiveArm>,
}

/// Every route, ready to serve; rebuilt whenever [`Console::gateway_fingerprint`] changes.
pub struct LiveRoutes {
    pub routes: Vec<Arc<LiveRoute>>,
    /// Routes that could not be prepared (an arm's endpoint is retired, a prompt reference no
    /// longer resolves, a token is missing): served as errors that say why.
    pub broken: Vec<(String, String)>,
}

/// What routes a write changed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RoutesWritten {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

/// What a gateway saw of one upstream call, for the log.
pub struct GatewayCall {
    pub public_id: String,
    pub route_id: i64,
    pub arm: String,
    pub fallback_for: Option<String>,
    pub key_id: Option<i64>,
    /// The raw caller id: only its salted hash is stored.
    pub caller: Option<String>,
    pub embeddings: bool,
    pub stream: bool,
    pub status: Option<u16>,
    pub error: Option<CallError>,
    pub latency: Duration,
    pub ttft: Option<Duration>,
    pub usage: Option<Usage>,
    /// The body sent upstream (after redaction for sending).
    pub request: Value,
    /// The answer's text so far.
    pub output: String,
    /// Content pieces received (a stream's own token count when it reported no usage).
    pub deltas: u64,
    pub finish_reason: Option<String>,
    /// The model the upstream says answered.
    pub response_model: Option<String>,
}

/// A new gateway key: the stored entry and the key itself, shown once.
pub struct NewKey {
    pub key: GatewayKey,
    pub secret: milc_llm::SecretString,
}

/// SHA-256 of a gateway key, as stored and compared.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The routes as checked against each other (names, weights, fallbacks, canary arms, sticky).
pub fn check_route(spec: &RouteSpec, at: &str) -> Result<(), Error> {
    let field = |f: &str| format!("{at}{f}");
    if spec.model.trim().is_empty() {
        return Err(Error::invalid(field("model"), "a route needs a model name"));
    }
    if let Some(s) = &spec.sticky {
        Sticky::parse(s).map_err(|m| Error::invalid(field("sticky"), m))?;
    }
    if spec.arms.is_empty() {
        return Err(Error::invalid(
            field("arm"),
            "a route needs at least one arm",
        ));
    }
    for (i, a) in spec.arms.iter().enumerate() {
        let f = |x: &str| field(&format!("arm[{i}].{x}"));
        if a.name.trim().is_empty() {
            return Err(Error::invalid(f("name"), "an arm needs a name"));
        }
        if spec.arms[..i].iter().any(|b| b.name == a.name) {
            return Err(Error::invalid(
                f("name"),
                format!("two arms are named '{}'", a.name),
            ));
        }
        if !a.weight.is_finite() || a.weight < 0.0 {
            return Err(Error::invalid(f("weight"), "a number from 0"));
        }
        if let Some(p) = &a.prompt {
            milc_api::prompt::PromptRef::parse(p).map_err(|m| Error::invalid(f("prompt"), m))?;
        }
        if a.timeout_ms == Some(0) {
            return Err(Error::invalid(f("timeout_ms"), "at least 1"));
        }
        if let Some(fb) = &a.fallback {
            if fb == &a.name || !spec.arms.iter().any(|b| &b.name == fb) {
                return Err(Error::invalid(
                    f("fallback"),
                    format!("'{fb}' is not another arm of this route"),
                ));
            }
        }
    }
    if spec.arms.iter().all(|a| a.weight == 0.0) {
        return Err(Error::invalid(
            field("arm"),
            "at least one arm needs a weight above 0",
        ));
    }
    if let Some(c) = &spec.canary {
        for (name, what) in [(&c.baseline, "baseline"), (&c.candidate, "candidate")] {
            if !spec.arms.iter().any(|a| &a.name == name) {
                return Err(Error::invalid(
                    field(&format!("canary.{what}")),
                    format!("'{name}' is not an arm of this route"),
                ));
            }
        }
        if c.baseline == c.candidate {
            return Err(Error::invalid(
                field("canary"),
                "baseline and candidate are the same arm",
            ));
        }
        let g = &c.guardrails;
        for (v, name) in [
            (g.max_error_rate_increase, "max_error_rate_increase"),
            (g.max_p95_latency_increase, "max_p95_latency_increase"),
            (g.max_cost_increase, "max_cost_increase"),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(
                    field(&format!("canary.guardrails.{name}")),
                    "a number from 0",
                ));
            }
        }
        if c.every_s == 0 {
            return Err(Error::invalid(field("canary.every_s"), "at least 1"));
        }
    }
    Ok(())
}

impl Console {
    pub async fn routes(&self) -> Result<Vec<Route>, Error> {
        Ok(storage::routes(&mut self.store.read().await?).await?)
    }

    pub async fn route(&self, model: &str) -> Result<Route, Error> {
        self.routes()
            .await?
            .into_iter()
            .find(|r| r.spec.model == model)
            .ok_or_else(|| StoreError::NoSuchRoute(model.to_owned()).into())
    }

    /// Writes routes as a person wrote them, all or nothing. A route whose spec is what was
    /// last written is left alone (its weights and canary state stay as verdicts left them); a
    /// new or changed canary starts now. With `replace_all`, routes not named are removed (the
    /// route file is the whole truth).
    #[tracing::instrument(skip_all, fields(routes = specs.len()), err(level = "info"))]
    pub async fn put_routes(
        &self,
        specs: &[RouteSpec],
        replace_all: bool,
        origin: &str,
    ) -> Result<RoutesWritten, Error> {
        for (i, s) in specs.iter().enumerate() {
            let at = format!("{origin}: route[{i}] '{}' ", s.model);
            check_route(s, &at)?;
            if specs[..i].iter().any(|o| o.model == s.model) {
                return Err(Error::invalid(
                    at + "model",
                    "two routes have this model name",
                ));
            }
        }
        let mut tx = self.store.write().await?;
        let before = storage::written_specs(&mut tx).await?;
        let mut out = RoutesWritten::default();
        for (i, spec) in specs.iter().enumerate() {
            let mut ids = Vec::new();
            for (k, a) in spec.arms.iter().enumerate() {
                let ep = endpoints::storage::endpoint_by_name(&mut tx, &a.endpoint)
                    .await
                    .map_err(|e| match e {
                        StoreError::NoSuchEndpoint(n) => Error::invalid(
                            format!("{origin}: route[{i}] '{}' arm[{k}].endpoint", spec.model),
                            format!("no endpoint named '{n}'"),
                        ),
                        e => e.into(),
                    })?;
                if let Some(p) = &a.prompt {
                    let r = milc_api::prompt::PromptRef::parse(p)
                        .map_err(|m| Error::invalid("prompt", m))?;
                    crate::prompts::storage::resolve(&mut tx, &r)
                        .await
                        .map_err(|e| {
                            Error::invalid(
                                format!("{origin}: route[{i}] '{}' arm[{k}].prompt", spec.model),
                                e.to_string(),
                            )
                        })?;
                }
                ids.push(ep.id);
            }
            let old = before
                .iter()
                .find(|(m, _)| *m == spec.model)
                .map(|(_, s)| s);
            if old == Some(spec) {
                out.unchanged.push(spec.model.clone());
                continue;
            }
            let canary_restarts = old.map(|o| &o.canary) != Some(&spec.canary);
            let id = storage::put_route(&mut tx, spec, &ids, i as i64, canary_restarts).await?;
            if canary_restarts {
                if let Some(c) = &spec.canary {
                    storage::insert_event(
                        &mut tx,
                        id,
                        "started",
                        &self.author(),
                        &format!("canary {} against {} ({origin})", c.candidate, c.baseline),
                        None,
                    )
                    .await?;
                }
            }
            out.written.push(spec.model.clone());
        }
        if replace_all {
            let keep: Vec<String> = specs.iter().map(|s| s.model.clone()).collect();
            out.removed = storage::remove_routes_except(&mut tx, &keep).await?;
        }
        db::commit(tx).await?;
        self.gateway_changed();
        if !(out.written.is_empty() && out.removed.is_empty()) {
            self.noted("routes.load", origin).await?;
        }
        Ok(out)
    }

    /// Loads a route file (TOML) into the store: the file is the whole truth.
    pub async fn load_routes_file(&self, path: &std::path::Path) -> Result<RoutesWritten, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(path.display().to_string(), format!("cannot read it: {e}"))
        })?;
        let specs = parse_routes(&text, &path.display().to_string())?;
        self.put_routes(&specs, true, &path.display().to_string())
            .await
    }

    /// Every route as a route file.
    pub async fn export_routes(&self) -> Result<String, Error> {
        let specs: Vec<RouteSpec> = self.routes().await?.into_iter().map(|r| r.spec).collect();
        Ok(routes_toml(&specs))
    }

    /// Sets one arm's weight (the window's slider, `milc routes set-weight`).
    pub async fn set_weight(&self, model: &str, arm: &str, weight: f64) -> Result<Route, Error> {
        if !weight.is_finite() || weight < 0.0 {
            return Err(Error::invalid("weight", "a number from 0"));
        }
        let route = self.route(model).await?;
        if !route.spec.arms.iter().any(|a| a.name == arm) {
            return Err(Error::invalid(
                "arm",
                format!("route '{model}' has no arm '{arm}'"),
            ));
        }
        if route.spec.arms.iter().all(|a| {
            if a.name == arm {
                weight == 0.0
            } else {
                a.weight == 0.0
            }
        }) {
            return Err(Error::invalid(
                "weight",
                "at least one arm needs a weight above 0",
            ));
        }
        let mut tx = self.store.write().await?;
        storage::set_weights(&mut tx, route.id, &[(arm, weight)]).await?;
        storage::insert_event(
            &mut tx,
            route.id,
            "weights",
            &self.author(),
            &format!("{arm} → {weight}"),
            None,
        )
        .await?;
        db::commit(tx).await?;
        self.gateway_changed();
        self.noted("route.weight", &format!("{model} {arm} → {weight}"))
            .await?;
        self.route(model).await
    }

    /// Creates a gateway key: the key is returned once; only its hash is stored.
    /// `daily_budget` is USD as typed (blank: none).
    pub async fn create_gateway_key(
        &self,
        name: &str,
        rate_per_min: Option<u32>,
        daily_budget: Option<&str>,
    ) -> Result<NewKey, Error> {
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "a key needs a name"));
        }
        let daily_budget = Cost::parse_usd_field(daily_budget)
            .map_err(|e| Error::invalid("daily budget", e.to_string()))?
            .map(|pico_usd| Cost {
                pico_usd,
                source: UsageSource::Reported,
            });
        if rate_per_min == Some(0) {
            return Err(Error::invalid("rate", "at least 1 request per minute"));
        }
        let secret = format!("milc-{}", hex(&rand::random::<[u8; 24]>()));
        let key = storage::insert_key(
            &mut self.store.read().await?,
            name,
            &hex(&key_hash(&secret)),
            &secret[..9],
            rate_per_min,
            daily_budget,
        )
        .await?;
        self.gateway_changed();
        self.noted("gateway_key.create", name).await?;
        Ok(NewKey {
            key,
            secret: milc_llm::SecretString::new(secret),
        })
    }

    pub async fn gateway_keys(&self) -> Result<Vec<GatewayKey>, Error> {
        Ok(storage::keys(&mut self.store.read().await?).await?)
    }

    pub async fn revoke_gateway_key(&self, name: &str) -> Result<(), Error> {
        if storage::revoke_key(&mut self.store.read().await?, name).await? {
            self.gateway_changed();
            self.noted("gateway_key.revoke", name).await
        } else {
            Err(Error::invalid(
                "name",
                format!("no active gateway key named '{name}'"),
            ))
        }
    }

    /// Active keys with the SHA-256 the gateway compares (in constant time) with a request's.
    pub async fn gateway_auth_keys(&self) -> Result<Vec<(GatewayKey, [u8; 32])>, Error> {
        let rows = storage::active_key_hashes(&mut self.store.read().await?).await?;
        rows.into_iter()
            .map(|(k, h)| {
                let mut out = [0u8; 32];
                if h.len() != 64 {
                    return Err(
                        StoreError::Corrupt(format!("gateway key '{}': hash", k.name)).into(),
                    );
                }
                for (i, b) in out.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| {
                        StoreError::Corrupt(format!("gateway key '{}': hash", k.name))
                    })?;
                }
                Ok((k, out))
            })
            .collect()
    }

    /// Each key's spend since `since_ms` (for daily budgets), by key id.
    pub async fn gateway_key_spend(&self, since_ms: i64) -> Result<Vec<(i64, Cost)>, Error> {
        Ok(storage::key_spend(&mut self.store.read().await?, since_ms)
            .await?
            .into_iter()
            .map(|(k, p, reported)| {
                let source = if reported {
                    UsageSource::Reported
                } else {
                    UsageSource::Estimated
                };
                (
                    k,
                    Cost {
                        pico_usd: p,
                        source,
                    },
                )
            })
            .collect())
    }

    /// Tells this process's gateways that what they serve changed.
    pub(crate) fn gateway_changed(&self) {
        self.gateway_changed.send_modify(|n| *n += 1);
    }

    /// Wakes on every change to routes, weights or keys made through this console.
    pub fn gateway_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.gateway_changed.subscribe()
    }

    /// Changes whenever what a running gateway serves would change.
    pub async fn gateway_fingerprint(&self) -> Result<String, Error> {
        Ok(storage::fingerprint(&mut self.store.read().await?).await?)
    }

    /// Every route prepared to serve. A route that cannot be (retired endpoint, prompt gone,
    /// keyring error) is listed in `broken` with the reason, and the others still serve.
    pub async fn live_routes(&self) -> Result<LiveRoutes, Error> {
        let mut out = LiveRoutes {
            routes: Vec::new(),
            broken: Vec::new(),
        };
        for r in self.routes().await? {
            match self.live_route(&r).await {
                Ok(live) => out.routes.push(Arc::new(live)),
                Err(e) => out.broken.push((r.spec.model.clone(), e.to_string())),
            }
        }
        Ok(out)
    }

    async fn live_route(&self, r: &Route) -> Result<LiveRoute, Error> {
        let mut arms = Vec::new();
        for a in &r.spec.arms {
            let pin = match &a.prompt {
                Some(p) => match self.resolve_prompt(p).await {
                    Ok(v) => Some(PromptPin {
                        prompt: v.prompt,
                        version: v.version,
                    }),
                    Err(e) => {
                        arms.push(LiveArm {
                            name: a.name.clone(),
                            weight: a.weight,
                            fallback: None,
                            prepared: Err(format!("arm '{}': prompt {p}: {e}", a.name)),
                        });
                        continue;
                    }
                },
                None => None,
            };
            let prepared = self
                .prepare(&a.endpoint, pin.as_ref())
                .await
                .map(|p| p.with_overrides(a.timeout_ms, a.max_retries))
                .map_err(|e| format!("arm '{}' cannot serve: {e}", a.name));
            arms.push(LiveArm {
                name: a.name.clone(),
                weight: a.weight,
                fallback: a
                    .fallback
                    .as_ref()
                    .and_then(|fb| r.spec.arms.iter().position(|x| &x.name == fb)),
                prepared,
            });
        }
        Ok(LiveRoute {
            id: r.id,
            model: r.spec.model.clone(),
            sticky: r
                .spec
                .sticky
                .as_deref()
                .map(Sticky::parse)
                .transpose()
                .map_err(|m| Error::invalid("sticky", m))?,
            arms,
        })
    }

    /// The salted hash of a caller id, as the log keeps it (the salt is this database's
    /// install id, so hashes cannot be matched across databases).
    pub fn caller_hash(&self, caller: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secrets.scope().as_bytes());
        h.update([0]);
        h.update(caller.as_bytes());
        hex(&h.finalize()[..16])
    }

    /// Logs a gateway call in the call log (source `gateway`), costed with the price in force,
    /// with its route, arm, key and caller hash in the same transaction and its bodies where the
    /// arm's policy keeps them (always redacted), and offers it to the exporter. Usage the
    /// upstream did not report is estimated and flagged so.
    pub async fn log_gateway_call(
        &self,
        p: &Prepared,
        g: GatewayCall,
    ) -> Result<(i64, Option<Cost>), Error> {
        let model = &p.target().model;
        let usage = g.usage.or_else(|| {
            (g.error.is_none() || g.deltas > 0).then(|| {
                let messages = request_messages(&g.request);
                let prompt_tokens = if g.embeddings {
                    input_texts(&g.request)
                        .iter()
                        .map(|t| milc_llm::tokens::text_tokens(model, t))
                        .sum()
                } else {
                    milc_llm::tokens::prompt_tokens(model, &messages)
                };
                Usage {
                    prompt_tokens,
                    cached_tokens: 0,
                    completion_tokens: if g.embeddings {
                        0
                    } else if g.stream {
                        g.deltas
                    } else {
                        milc_llm::tokens::text_tokens(model, &g.output)
                    },
                    reasoning_tokens: 0,
                    source: UsageSource::Estimated,
                }
            })
        });
        let (cost, price_id) = p.cost_now(usage);
        let call = milc_api::Call {
            at_ms: now_ms(),
            endpoint_id: Some(p.endpoint().id),
            model: p.endpoint().spec.model.clone(),
            source: CallSource::Gateway,
            outcome: match &g.error {
                None => Outcome::Ok,
                Some(e) if e.kind == ErrorKind::Cancelled => Outcome::Cancelled,
                Some(_) => Outcome::Error,
            },
            http_status: g.status,
            error_kind: g.error.as_ref().map(|e| e.kind),
            latency_ms: g.latency.as_millis() as u64,
            ttft_ms: g.ttft.map(|t| t.as_millis() as u64),
            usage,
            cost,
            prompt: p.pin(),
            price_id,
        };
        let tag = GatewayTag {
            public_id: g.public_id,
            route_id: g.route_id,
            arm: g.arm,
            fallback_for: g.fallback_for,
            key_id: g.key_id,
            caller_hash: g.caller.as_deref().map(|c| self.caller_hash(c)),
        };
        let cost = call.cost;
        let exporting = self.log.tap().is_on();
        let params = (exporting && !g.embeddings).then(|| request_params(&g.request));
        // Kept bodies always pass the redactor, whatever the mode, as a chat call's do.
        let bodies = p.policy().log_bodies.then(|| {
            let mut placeholders = Placeholders::default();
            let mut request = g.request;
            for m in request["messages"].as_array_mut().into_iter().flatten() {
                if let Some(c) = m["content"].as_str() {
                    m["content"] = p.redact_body(c, &mut placeholders).into();
                }
            }
            (request, p.redact_body(&g.output, &mut placeholders))
        });
        let operation = if g.embeddings {
            Operation::Embeddings
        } else {
            Operation::Chat
        };
        let detail = CallDetail {
            response_model: g.response_model,
            finish_reason: g.finish_reason,
            params,
            bodies: bodies.as_ref().filter(|_| exporting).cloned(),
            ..p.detail(operation)
        };
        let call_id = self.log.log_tagged(call, tag, detail).await?;
        if let Some((request, response)) = bodies {
            chat::storage::insert_call_body(
                &mut self.store.read().await?,
                &CallBody {
                    call_id,
                    request,
                    response,
                },
            )
            .await?;
        }
        Ok((call_id, cost))
    }

    /// Records a user's rating of a gateway answer, by the `x-milc-call-id` it came with.
    pub async fn record_feedback(&self, f: &Feedback, key_id: Option<i64>) -> Result<(), Error> {
        if !(0.0..=1.0).contains(&f.score) {
            return Err(Error::invalid("score", "a number from 0 to 1"));
        }
        let mut c = self.store.read().await?;
        let Some(call_id) = storage::call_by_public_id(&mut c, &f.call_id).await? else {
            return Err(Error::invalid(
                "call_id",
                format!("no gateway call '{}'", f.call_id),
            ));
        };
        storage::insert_feedback(&mut c, call_id, f.score, f.comment.as_deref(), key_id).await?;
        Ok(())
    }
}

/// The sampling parameters of a chat body as sent upstream (what the exporter shows of them).
fn request_params(body: &Value) -> milc_api::Params {
    milc_api::Params {
        temperature: body["temperature"].as_f64(),
        top_p: body["top_p"].as_f64(),
        max_tokens: body["max_completion_tokens"]
            .as_u64()
            .or_else(|| body["max_tokens"].as_u64())
            .and_then(|n| u32::try_from(n).ok()),
        stop: match &body["stop"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
        seed: body["seed"].as_i64(),
        response_format: serde_json::from_value(body["response_format"].clone()).ok(),
    }
}

/// The body an arm sends upstream for a client's chat request: the arm's prompt version (if
/// any) rendered with the body's `variables` and put before the client's messages, its
/// parameters as defaults, the endpoint's model, usage always asked for when streaming, and
/// message text redacted when the policy redacts before sending. Returns the body and the
/// placeholders to restore answers with.
pub fn upstream_chat_body(p: &Prepared, mut body: Value) -> Result<(Value, Placeholders), Error> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| Error::invalid("body", "a JSON object"))?;
    let variables: BTreeMap<String, String> = match obj.remove("variables") {
        None | Some(Value::Null) => BTreeMap::new(),
        // Strings as they are; a number or a flag as its JSON text.
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        Some(_) => return Err(Error::invalid("variables", "an object of names to values")),
    };
    let client_messages = match obj.remove("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Error::invalid("messages", "a list of messages")),
    };
    let mut messages: Vec<Value> = Vec::new();
    if let Some(v) = p.pinned() {
        let (rendered, _) = crate::prompts::render(&v.content.messages, &variables)?;
        messages.extend(
            rendered
                .into_iter()
                .map(|m| serde_json::json!({"role": m.role.as_str(), "content": m.content})),
        );
        let defaults = serde_json::to_value(&v.content.params).unwrap_or_default();
        if let Value::Object(d) = defaults {
            for (k, v) in d {
                obj.entry(k).or_insert(v);
            }
        }
    }
    messages.extend(client_messages);
    if messages.is_empty() {
        return Err(Error::invalid(
            "messages",
            "a chat needs at least one message",
        ));
    }
    let mut placeholders = Placeholders::default();
    if p.policy().mode.sending() {
        for m in &mut messages {
            redact_content(p, &mut m["content"], &mut placeholders);
        }
    }
    obj.insert("messages".into(), Value::Array(messages));
    obj.insert("model".into(), p.target().model.clone().into());
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        let so = obj
            .entry("stream_options")
            .or_insert_with(|| serde_json::json!({}));
        if !so.is_object() {
            *so = serde_json::json!({});
        }
        so["include_usage"] = true.into();
    } else {
        // Never send stream_options without stream: vLLM and NVIDIA's API answer 400.
        obj.remove("stream_options");
    }
    Ok((body, placeholders))
}

/// The body an arm sends upstream for an embeddings request.
pub fn upstream_embeddings_body(p: &Prepared, mut body: Value) -> Result<Value, Error> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| Error::invalid("body", "a JSON object"))?;
    if !obj.contains_key("input") {
        return Err(Error::invalid("input", "the text(s) to embed"));
    }
    if p.policy().mode.sending() {
        let mut placeholders = Placeholders::default();
        if let Some(input) = obj.get_mut("input") {
            match input {
                Value::String(s) => *s = p.redact_sending(s, &mut placeholders),
                Value::Array(a) => {
                    for s in a.iter_mut() {
                        if let Value::String(t) = s {
                            *t = p.redact_sending(t, &mut placeholders);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    obj.insert("model".into(), p.target().model.clone().into());
    Ok(body)
}

fn redact_content(p: &Prepared, content: &mut Value, placeholders: &mut Placeholders) {
    match content {
        Value::String(s) => *s = p.redact_sending(s, placeholders),
        Value::Array(parts) => {
            for part in parts {
                if let Some(Value::String(t)) = part.get_mut("text") {
                    *t = p.redact_sending(t, placeholders);
                }
            }
        }
        _ => {}
    }
}

/// The messages of a request body as text (parts joined), for token estimates.
fn request_messages(body: &Value) -> Vec<Message> {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let role = serde_json::from_value::<Role>(m["role"].clone()).unwrap_or(Role::User);
            let content = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            Message::new(role, content)
        })
        .collect()
}

fn input_texts(body: &Value) -> Vec<String> {
    match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
