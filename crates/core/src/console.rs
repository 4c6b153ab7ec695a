//! `Console`: the one place shells (the CLI, the desktop window) call. Each method is a whole user
//! action — validate, touch the keyring and the store, call the endpoint, log the call — so every
//! shell behaves the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use milc_api::{
    tokens_per_sec, CallError, CallRecord, CallSource, ChatRequest, ChatResult, ConnectionTest,
    Endpoint, EndpointSpec, EndpointStatus, ErrorKind, Outcome, PricePerMillion, Prices,
    TokenChange,
};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use milc_api::prompt::{
    check_name, CallBody, Figures, HistoryEntry, LabelMove, NewVersion, Pick, PromptDetail,
    PromptDiff, PromptPin, PromptRef, PromptSummary, PromptVersion, RedactMode, Saved,
};
use milc_api::Message;

use milc_api::dataset::{DatasetEdit, DatasetPreview, DatasetVersion, Exported, Imported};

use crate::client::{Client, Target};
use crate::datasets;
use crate::endpoints::{self, EMBEDDED_SIM_URL};
use crate::prompts;
use crate::ratelimit::RateGate;
use crate::redact::{Placeholders, Redactor};
use crate::secrets::{SecretString, Secrets};
use crate::store::{now_ms, Store};
use crate::structured;
use crate::Error;

/// Name of the endpoint a new database starts with.
pub const SIMULATOR_ENDPOINT: &str = "Local simulator";

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
    prices: crate::usage::Timeline,
}

impl Prepared {
    /// The cost of `usage` now, and the dated price it used (`None`: the endpoint's own).
    fn cost_now(&self, usage: Option<milc_api::Usage>) -> (Option<milc_api::Cost>, Option<i64>) {
        let (id, prices) = crate::usage::price_at(&self.prices, now_ms());
        let prices = if self.prices.is_empty() {
            self.ep.spec.prices
        } else {
            prices
        };
        (usage.map(|u| prices.cost(&u)), id)
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

pub struct Console {
    store: Store,
    secrets: Secrets,
    client: Client,
    embedded_sim: OnceCell<milc_sim::SimHandle>,
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "milc", "milc-console")
}

/// Where log files go when `MILC_LOG_DIR` does not say otherwise.
pub fn default_log_dir() -> PathBuf {
    project_dirs().map_or_else(
        || PathBuf::from("logs"),
        |d| d.data_local_dir().join("logs"),
    )
}

/// The database file used when neither `--db` nor `MILC_DB` says otherwise.
pub fn default_db_path() -> PathBuf {
    project_dirs().map_or_else(
        || PathBuf::from("milc.db"),
        |d| d.data_dir().join("milc.db"),
    )
}

impl Console {
    /// Opens (creating if needed) the database at `path`. A new database starts with the
    /// built-in simulator as its endpoint, so a first run works with no credentials.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let store = Store::open(path).await?;
        let scope = store
            .meta_get_or_init("install_id", &format!("{:016x}", rand::random::<u64>()))
            .await?;
        let console = Self {
            store,
            secrets: Secrets::new(scope),
            client: Client::new(),
            embedded_sim: OnceCell::new(),
        };
        console.seed_simulator().await?;
        console.apply_retention().await?;
        Ok(console)
    }

    async fn seed_simulator(&self) -> Result<(), Error> {
        if self.store.meta("seeded").await?.is_some() {
            return Ok(());
        }
        if self.store.endpoints().await?.is_empty() {
            let mut spec = EndpointSpec::new(SIMULATOR_ENDPOINT, EMBEDDED_SIM_URL, "milc-sim");
            // Demo prices, so cost figures show up; the endpoint is labelled as a simulator.
            spec.prices = Prices {
                input: PricePerMillion::from_micros(500_000),
                cached_input: Some(PricePerMillion::from_micros(250_000)),
                output: PricePerMillion::from_micros(1_500_000),
            };
            match self.store.insert_endpoint(&spec).await {
                Ok(_) | Err(crate::StoreError::DuplicateName(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.store.meta_get_or_init("seeded", "1").await?;
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub async fn endpoints(&self) -> Result<Vec<Endpoint>, Error> {
        Ok(self.store.endpoints().await?)
    }

    pub async fn endpoint(&self, name: &str) -> Result<Endpoint, Error> {
        Ok(self.store.endpoint_by_name(name).await?)
    }

    /// Adds an endpoint and stores its token in the OS keyring. All or nothing: if the keyring
    /// refuses the token, the endpoint is not added.
    #[tracing::instrument(skip_all, fields(name = %spec.name), err(level = "info"))]
    pub async fn add_endpoint(
        &self,
        spec: EndpointSpec,
        token: Option<SecretString>,
    ) -> Result<Endpoint, Error> {
        let spec = endpoints::validate(spec)?;
        let ep = self.store.insert_endpoint(&spec).await?;
        if let Some(token) = token {
            if let Err(e) = self.secrets.set(ep.id, &token).await {
                self.store.delete_endpoint(ep.id).await?;
                return Err(e.into());
            }
            self.store.set_has_token(ep.id, true).await?;
            return Ok(self.store.endpoint(ep.id).await?);
        }
        Ok(ep)
    }

    #[tracing::instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn update_endpoint(&self, id: i64, spec: EndpointSpec) -> Result<Endpoint, Error> {
        let spec = endpoints::validate(spec)?;
        Ok(self.store.update_endpoint(id, &spec).await?)
    }

    /// Saves an endpoint from a form: adds it when `id` is `None`, else updates it; then applies
    /// the token change.
    pub async fn save_endpoint(
        &self,
        id: Option<i64>,
        spec: EndpointSpec,
        token: TokenChange,
    ) -> Result<Endpoint, Error> {
        let token = match token {
            TokenChange::Keep => None,
            TokenChange::Replace(t) => Some(Some(SecretString::new(t))),
            TokenChange::Remove => Some(None),
        };
        match id {
            None => self.add_endpoint(spec, token.flatten()).await,
            Some(id) => {
                let ep = self.update_endpoint(id, spec).await?;
                match token {
                    Some(t) => self.set_token(id, t).await,
                    None => Ok(ep),
                }
            }
        }
    }

    /// Replaces (`Some`) or removes (`None`) an endpoint's token.
    #[tracing::instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn set_token(&self, id: i64, token: Option<SecretString>) -> Result<Endpoint, Error> {
        self.store.endpoint(id).await?;
        match &token {
            Some(t) => self.secrets.set(id, t).await?,
            None => self.secrets.delete(id).await?,
        }
        self.store.set_has_token(id, token.is_some()).await?;
        Ok(self.store.endpoint(id).await?)
    }

    /// Deletes an endpoint and its token. Its calls stay in the log.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn remove_endpoint(&self, name: &str) -> Result<(), Error> {
        let ep = self.store.endpoint_by_name(name).await?;
        if ep.has_token {
            self.secrets.delete(ep.id).await?;
        }
        self.store.delete_endpoint(ep.id).await?;
        Ok(())
    }

    /// `GET /models`: latency and served models, or what is wrong; the result is kept with the
    /// endpoint. A model missing from the list is an error, since every call would fail.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn test_endpoint(&self, name: &str) -> Result<ConnectionTest, Error> {
        let ep = self.store.endpoint_by_name(name).await?;
        let target = self.target(&ep).await?;
        let start = std::time::Instant::now();
        let result = self.client.models(&target).await;
        let latency_ms = start.elapsed().as_millis() as u64;
        let test = match result {
            Ok(models) => {
                let error = (!models.contains(&ep.spec.model)).then(|| CallError {
                    kind: ErrorKind::NotFound,
                    message: format!(
                        "model '{}' is not served here; the endpoint lists: {}",
                        ep.spec.model,
                        if models.is_empty() {
                            "nothing".to_owned()
                        } else {
                            models.join(", ")
                        }
                    ),
                    status: None,
                });
                ConnectionTest {
                    at_ms: now_ms(),
                    ok: error.is_none(),
                    latency_ms: Some(latency_ms),
                    models,
                    error,
                }
            }
            Err(e) => ConnectionTest {
                at_ms: now_ms(),
                ok: false,
                latency_ms: None,
                models: vec![],
                error: Some(e),
            },
        };
        self.store.record_test(ep.id, &test).await?;
        Ok(test)
    }

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
    /// retired one refuses), the pinned version, the redaction policy and its compiled patterns,
    /// and the request target with the token read from the keyring. The run engine prepares once
    /// per run instead of once per item.
    pub async fn prepare(&self, name: &str, pin: Option<&PromptPin>) -> Result<Prepared, Error> {
        let ep = self.store.endpoint_by_name(name).await?;
        if ep.spec.status == EndpointStatus::Retired {
            return Err(Error::invalid(
                "endpoint",
                format!("'{name}' is retired and takes no new calls"),
            ));
        }
        if ep.spec.status == EndpointStatus::Deprecated {
            tracing::warn!(endpoint = name, "calling a deprecated endpoint");
        }
        let pinned = match pin {
            Some(pin) => Some(self.store.resolve(&pin_ref(pin)).await?),
            None => None,
        };
        let policy = pinned
            .as_ref()
            .and_then(|v| v.content.redaction.clone())
            .unwrap_or_else(|| ep.spec.redaction.clone());
        let redactor = Redactor::for_policy(&policy, "redaction")?;
        let target = self.target(&ep).await?;
        let prices = self.store.timeline(ep.id).await?;
        Ok(Prepared {
            ep,
            pinned,
            policy,
            redactor,
            target,
            gate: RateGate::default(),
            prices,
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
                    .map(|i| crate::tokens::text_tokens(&p.target.model, i))
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
        let call_id = self.store.insert_call(&call).await?;
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
                    error: crate::client::cancelled(),
                    call_id: None,
                    partial: String::new(),
                })
            }
        };
        let ex = self.client.chat(&p.target, &wire, on_delta, cancel).await;
        if let Some(r) = &ex.rate_limit {
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
        let call_id = self.store.insert_call(&call).await?;
        let figures = Figures {
            ttft_ms: call.ttft_ms,
            latency_ms: call.latency_ms,
            usage: ex.usage,
            cost,
            tokens_per_sec: ex
                .usage
                .and_then(|u| tokens_per_sec(u.completion_tokens, call.latency_ms, call.ttft_ms)),
        };

        // What is stored: bodies (only where the policy allows, always redacted) and history.
        let mut store_text = |text: &str, redact: bool| {
            if redact {
                redactor.redact(text, &mut placeholders).text
            } else {
                text.to_owned()
            }
        };
        if policy.log_bodies {
            let mut request = crate::client::request_body(&ep.spec.model, &wire);
            for m in request["messages"].as_array_mut().into_iter().flatten() {
                if let Some(c) = m["content"].as_str() {
                    m["content"] = store_text(c, true).into();
                }
            }
            let response = store_text(&ex.output, true);
            self.store
                .insert_call_body(&CallBody {
                    call_id,
                    request,
                    response,
                })
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
                Some(v) => self.store.version_id(&v.prompt, v.version).await?,
                None => None,
            };
            Some(self.store.insert_history(&entry, version_id).await?)
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

    // ---- prompt library ----------------------------------------------------------------------

    pub async fn prompts(&self) -> Result<Vec<PromptSummary>, Error> {
        Ok(self.store.prompts().await?)
    }

    pub async fn prompt(&self, name: &str) -> Result<PromptDetail, Error> {
        Ok(self.store.prompt(name).await?)
    }

    /// The version `NAME`, `NAME@N` or `NAME:LABEL` names.
    pub async fn resolve_prompt(&self, reference: &str) -> Result<PromptVersion, Error> {
        let r = PromptRef::parse(reference).map_err(|e| Error::invalid("prompt", e))?;
        Ok(self.store.resolve(&r).await?)
    }

    /// Saves a version after checking it (every template parses, parameters in range, the JSON
    /// Schema compiles, custom patterns compile). `create` makes a new prompt, which must not
    /// exist yet; otherwise the prompt must exist. Identical content stores nothing.
    #[tracing::instrument(skip_all, fields(prompt = %nv.prompt, create), err(level = "info"))]
    pub async fn save_prompt(&self, mut nv: NewVersion, create: bool) -> Result<Saved, Error> {
        nv.prompt = nv.prompt.trim().to_owned();
        check_name("prompt name", &nv.prompt).map_err(|e| Error::invalid("name", e))?;
        prompts::check_content(&nv.content)?;
        if let Some(e) = &nv.content.endpoint {
            self.store.endpoint_by_name(e).await?;
        }
        Ok(self.store.save_version(&nv, create).await?)
    }

    pub async fn diff_prompt(
        &self,
        name: &str,
        left: u32,
        right: u32,
    ) -> Result<PromptDiff, Error> {
        let at = |v: u32| PromptRef {
            name: name.to_owned(),
            pick: Pick::Version(v),
        };
        let (l, r) = (
            self.store.resolve(&at(left)).await?,
            self.store.resolve(&at(right)).await?,
        );
        Ok(prompts::diff(&l, &r))
    }

    /// Points `label` at `name@version`, recording who moved it from where. `None` when it
    /// already pointed there.
    #[tracing::instrument(skip_all, fields(prompt = name, version, label), err(level = "info"))]
    pub async fn label_prompt(
        &self,
        name: &str,
        version: u32,
        label: &str,
    ) -> Result<Option<LabelMove>, Error> {
        prompts::check_label(label)?;
        Ok(self.store.set_label(name, version, label).await?)
    }

    /// A chat request from a prompt version and its variables (rendered when sent), and the
    /// version's default endpoint.
    pub async fn prompt_request(
        &self,
        reference: &str,
        variables: BTreeMap<String, String>,
    ) -> Result<(ChatRequest, Option<String>), Error> {
        let v = self.resolve_prompt(reference).await?;
        let mut req = ChatRequest::new(v.content.messages, v.content.params);
        req.variables = variables;
        req.prompt = Some(PromptPin {
            prompt: v.prompt,
            version: v.version,
        });
        Ok((req, v.content.endpoint))
    }

    /// The messages of a prompt version rendered with `variables`, and the variables no
    /// message used.
    pub async fn render_prompt(
        &self,
        reference: &str,
        variables: &BTreeMap<String, String>,
    ) -> Result<(PromptVersion, Vec<Message>, Vec<String>), Error> {
        let v = self.resolve_prompt(reference).await?;
        let (messages, unused) = prompts::render(&v.content.messages, variables)?;
        Ok((v, messages, unused))
    }

    // ---- datasets ------------------------------------------------------------------------------

    /// Parses a CSV or JSONL file whole and stores it as a version of dataset `name`; nothing is
    /// stored when any line is bad. Importing the same content again adds no version.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn import_dataset(&self, path: &Path, name: &str) -> Result<Imported, Error> {
        check_name("dataset name", name).map_err(|e| Error::invalid("name", e))?;
        let items = datasets::read_file(path)?;
        let source = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(self.store.import_dataset(name, &items, &source).await?)
    }

    /// Imports a text the window holds (pasted or read from a chosen file) in `format`.
    pub async fn import_dataset_text(
        &self,
        name: &str,
        file: &str,
        format: datasets::Format,
        text: &str,
    ) -> Result<Imported, Error> {
        check_name("dataset name", name).map_err(|e| Error::invalid("name", e))?;
        let items = datasets::parse(file, format, text)?;
        Ok(self.store.import_dataset(name, &items, file).await?)
    }

    /// What importing a text would store.
    pub fn preview_dataset_text(
        &self,
        file: &str,
        format: datasets::Format,
        text: &str,
    ) -> Result<DatasetPreview, Error> {
        Ok(datasets::preview(&datasets::parse(file, format, text)?, 20))
    }

    /// What importing `path` would store: counts, variables, the first items and the hash.
    pub fn preview_dataset(&self, path: &Path, first: usize) -> Result<DatasetPreview, Error> {
        Ok(datasets::preview(&datasets::read_file(path)?, first))
    }

    /// Every dataset version, newest first.
    pub async fn datasets(&self) -> Result<Vec<DatasetVersion>, Error> {
        Ok(self.store.dataset_versions().await?)
    }

    /// A page of a dataset version's items (`NAME` or `NAME@HASH`).
    pub async fn dataset_items(
        &self,
        reference: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(DatasetVersion, Vec<milc_api::dataset::DatasetItem>), Error> {
        Ok(self.store.dataset_items(reference, offset, limit).await?)
    }

    pub async fn export_dataset(
        &self,
        reference: &str,
        format: datasets::Format,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<DatasetVersion, Error> {
        self.store.export_dataset(reference, format, out).await
    }

    /// Applies `edit` to its base version and stores the result as a new version of the same
    /// dataset; the base is untouched. A bad line is refused before anything is stored.
    pub async fn edit_dataset(&self, edit: &DatasetEdit) -> Result<Imported, Error> {
        let (id, base) = self.store.dataset_version(&edit.base).await?;
        let items = datasets::apply_edit(self.store.version_items(id, 0, u64::MAX).await?, edit)?;
        let source = format!("edit of {}@{}", base.dataset, &base.hash[..12]);
        Ok(self
            .store
            .import_dataset(&base.dataset, &items, &source)
            .await?)
    }

    /// Writes a version to `path` (empty: `NAME-HASH.EXT` in the user's downloads folder) by way
    /// of a temporary file beside it, so a failed export leaves no half-written file.
    pub async fn export_dataset_file(
        &self,
        reference: &str,
        format: datasets::Format,
        path: &str,
    ) -> Result<Exported, Error> {
        let (_, v) = self.store.dataset_version(reference).await?;
        let default = format!("{}-{}.{}", v.dataset, &v.hash[..12], format.extension());
        let mut file = PartialFile::create(path, &default)?;
        let version = self
            .export_dataset(reference, format, file.writer())
            .await?;
        Ok(Exported {
            version,
            path: file.commit()?,
        })
    }

    /// The history, newest first, filtered to entries holding every word of `search`.
    pub async fn history(&self, search: &str, limit: u32) -> Result<Vec<HistoryEntry>, Error> {
        Ok(self.store.history(search, limit).await?)
    }

    /// The bodies kept with a call, if its policy kept any.
    pub async fn call_body(&self, call_id: i64) -> Result<Option<CallBody>, Error> {
        Ok(self.store.call_body(call_id).await?)
    }

    pub async fn calls(&self, limit: u32) -> Result<Vec<CallRecord>, Error> {
        Ok(self.store.calls(limit).await?)
    }

    async fn target(&self, ep: &Endpoint) -> Result<Target, Error> {
        let base_url = if ep.simulator {
            self.embedded_sim_url().await?
        } else {
            ep.spec.base_url.clone()
        };
        let token = if ep.has_token {
            self.secrets.get(ep.id).await?
        } else {
            None
        };
        Ok(Target {
            base_url,
            model: ep.spec.model.clone(),
            token,
            headers: ep.spec.headers.clone(),
            timeout: Duration::from_millis(ep.spec.timeout_ms),
            max_retries: ep.spec.max_retries,
        })
    }

    /// Starts the built-in simulator on a free loopback port the first time it is needed.
    async fn embedded_sim_url(&self) -> Result<String, Error> {
        let sim = self
            .embedded_sim
            .get_or_try_init(|| async {
                milc_sim::start(([127, 0, 0, 1], 0).into(), milc_sim::SimConfig::default()).await
            })
            .await
            .map_err(|e| {
                Error::invalid(
                    "endpoint",
                    format!("cannot start the built-in simulator: {e}"),
                )
            })?;
        Ok(sim.base_url())
    }
}

fn pin_ref(pin: &PromptPin) -> PromptRef {
    PromptRef {
        name: pin.prompt.clone(),
        pick: Pick::Version(pin.version),
    }
}

/// An export file written as `NAME.partial` beside its destination and renamed into place by
/// `commit`; dropped before that, it is removed, so a failed export leaves no half-written file
/// (and never touches another file of the user's).
pub(crate) struct PartialFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl PartialFile {
    /// `path`, or `default_name` in the user's downloads folder when `path` is empty.
    pub(crate) fn create(path: &str, default_name: &str) -> Result<Self, Error> {
        let path = if path.trim().is_empty() {
            directories::UserDirs::new()
                .and_then(|u| u.download_dir().map(Path::to_path_buf))
                .or_else(|| directories::UserDirs::new().map(|u| u.home_dir().to_path_buf()))
                .unwrap_or_else(|| PathBuf::from("."))
                .join(default_name)
        } else {
            PathBuf::from(path.trim())
        };
        let mut tmp = path.clone().into_os_string();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let file = std::fs::File::create(&tmp).map_err(|e| Self::fail(&path, e))?;
        Ok(Self {
            path,
            tmp,
            out: Some(std::io::BufWriter::new(file)),
        })
    }

    fn fail(path: &Path, e: std::io::Error) -> Error {
        Error::invalid(path.display().to_string(), format!("cannot write: {e}"))
    }

    pub(crate) fn writer(&mut self) -> &mut std::io::BufWriter<std::fs::File> {
        self.out.as_mut().expect("written before commit")
    }

    /// Flushes and renames the file into place; returns its path as shown to the user.
    pub(crate) fn commit(mut self) -> Result<String, Error> {
        let out = self.out.take().expect("committed once");
        out.into_inner()
            .map_err(|e| Self::fail(&self.path, e.into_error()))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Self::fail(&self.path, e))?;
        Ok(self.path.display().to_string())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
