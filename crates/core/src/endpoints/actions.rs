//! Endpoints as a person adds, edits, tests and removes them; tokens go to the OS keyring.

use milc_api::{
    CallError, ConnectionTest, Endpoint, EndpointSpec, EndpointStatus, ErrorKind, PricePerMillion,
    Prices, TokenChange,
};
use milc_llm::SecretString;

use super::{storage, validate, EMBEDDED_SIM_URL};
use crate::console::SIMULATOR_ENDPOINT;
use crate::db::{self, now_ms, StoreError};
use crate::{Console, Error};

impl Console {
    pub(crate) async fn seed_simulator(&self) -> Result<(), Error> {
        if db::meta(&mut self.store.read().await?, "seeded")
            .await?
            .is_some()
        {
            return Ok(());
        }
        if storage::endpoints(&mut self.store.read().await?)
            .await?
            .is_empty()
        {
            let mut spec = EndpointSpec::new(SIMULATOR_ENDPOINT, EMBEDDED_SIM_URL, "milc-sim");
            // Demo prices, so cost figures show up; the endpoint is labelled as a simulator.
            spec.prices = Prices {
                input: PricePerMillion::from_micros(500_000),
                cached_input: Some(PricePerMillion::from_micros(250_000)),
                output: PricePerMillion::from_micros(1_500_000),
            };
            match storage::insert_endpoint(&mut self.store.read().await?, &spec).await {
                Ok(_) | Err(crate::StoreError::DuplicateName(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        db::meta_get_or_init(&mut self.store.read().await?, "seeded", "1").await?;
        Ok(())
    }

    pub async fn endpoints(&self) -> Result<Vec<Endpoint>, Error> {
        Ok(storage::endpoints(&mut self.store.read().await?).await?)
    }

    pub async fn endpoint(&self, name: &str) -> Result<Endpoint, Error> {
        Ok(storage::endpoint_by_name(&mut self.store.read().await?, name).await?)
    }

    /// Adds an endpoint and stores its token in the OS keyring. All or nothing: if the keyring
    /// refuses the token, the endpoint is not added.
    #[tracing::instrument(skip_all, fields(name = %spec.name), err(level = "info"))]
    pub async fn add_endpoint(
        &self,
        spec: EndpointSpec,
        token: Option<SecretString>,
    ) -> Result<Endpoint, Error> {
        let spec = validate(spec)?;
        if spec.status != EndpointStatus::Active {
            return Err(Error::invalid(
                "status",
                format!(
                    "a new endpoint starts active; deprecate or retire it afterwards (milc endpoints status {} …)",
                    spec.name
                ),
            ));
        }
        let mut c = self.store.read().await?;
        let ep = storage::insert_endpoint(&mut c, &spec).await?;
        if let Some(token) = token {
            if let Err(e) = self.secrets.set(ep.id, &token).await {
                storage::delete_endpoint(&mut c, ep.id).await?;
                return Err(e.into());
            }
            storage::set_has_token(&mut c, ep.id, true).await?;
            drop(c);
            self.noted("endpoint.add", &ep.spec.name).await?;
            return Ok(storage::endpoint(&mut self.store.read().await?, ep.id).await?);
        }
        drop(c);
        self.noted("endpoint.add", &ep.spec.name).await?;
        Ok(ep)
    }

    /// Edits an endpoint. Its lifecycle status is not changed here: that is
    /// [`Console::set_lifecycle`]'s, which checks what still uses the endpoint.
    #[tracing::instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn update_endpoint(&self, id: i64, spec: EndpointSpec) -> Result<Endpoint, Error> {
        let spec = validate(spec)?;
        let mut tx = self.store.write().await?;
        let now = storage::endpoint(&mut tx, id).await?;
        if spec.status != now.spec.status {
            return Err(Error::invalid(
                "status",
                format!(
                    "'{}' is {}: change its lifecycle with `milc endpoints status {} {}` (set_lifecycle), which checks what still uses it",
                    now.spec.name,
                    now.spec.status.as_str(),
                    now.spec.name,
                    spec.status.as_str()
                ),
            ));
        }
        let ep = storage::update_endpoint(&mut tx, id, &spec).await?;
        db::commit(tx).await?;
        self.noted("endpoint.edit", &ep.spec.name).await?;
        Ok(ep)
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
        let mut c = self.store.read().await?;
        storage::endpoint(&mut c, id).await?;
        match &token {
            Some(t) => self.secrets.set(id, t).await?,
            None => self.secrets.delete(id).await?,
        }
        storage::set_has_token(&mut c, id, token.is_some()).await?;
        let ep = storage::endpoint(&mut c, id).await?;
        drop(c);
        let what = if token.is_some() {
            "endpoint.token.set"
        } else {
            "endpoint.token.remove"
        };
        self.noted(what, &ep.spec.name).await?;
        Ok(ep)
    }

    /// Deletes an endpoint and its token. Its calls stay in the log.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn remove_endpoint(&self, name: &str) -> Result<(), Error> {
        let ep = storage::endpoint_by_name(&mut self.store.read().await?, name).await?;
        // The row first: an endpoint a gateway route still uses stays, token and all.
        storage::delete_endpoint(&mut self.store.read().await?, ep.id)
            .await
            .map_err(|e| match e {
                // SQLite reports it as 787, or 1811 when a RESTRICT action fires it;
                // PostgreSQL as 23503.
                StoreError::Sql(sqlx::Error::Database(d))
                    if d.is_foreign_key_violation()
                        || d.message().contains("FOREIGN KEY constraint failed") =>
                {
                    Error::invalid(
                        "endpoint",
                        format!("'{name}' is still an arm of a gateway route: take it out of the route first (milc routes list)"),
                    )
                }
                e => e.into(),
            })?;
        if ep.has_token {
            self.secrets.delete(ep.id).await?;
        }
        self.log.endpoint_deleted(ep.id).await?;
        self.noted("endpoint.remove", name).await?;
        Ok(())
    }

    /// `GET /models`: latency and served models, or what is wrong; the result is kept with the
    /// endpoint. A model missing from the list is an error, since every call would fail.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn test_endpoint(&self, name: &str) -> Result<ConnectionTest, Error> {
        let ep = storage::endpoint_by_name(&mut self.store.read().await?, name).await?;
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
        // A member whose role may not change endpoints still sees the result; it is not kept.
        let mut c = self.store.read().await?;
        match storage::record_test(&mut c, ep.id, &test).await {
            Err(crate::db::StoreError::Denied(_)) | Ok(()) => Ok(test),
            Err(e) => Err(e.into()),
        }
    }
}
