//! The endpoints table: every SQL statement about endpoints.

use milc_api::{ConnectionTest, Endpoint, EndpointSpec, EndpointStatus, PricePerMillion, Prices};
use sqlx::FromRow;

use crate::db::{self, now_ms, unique_or, DbConn, Json, Result, StoreError};

pub async fn insert_endpoint(c: &mut DbConn, spec: &EndpointSpec) -> Result<Endpoint> {
    let query = db::query(
        "INSERT INTO endpoints (name, base_url, model, headers_json, price_in_micros,
             price_cached_micros, price_out_micros, timeout_ms, max_retries, status,
             redaction_json, lineage_json, created_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    let id = bind_spec(query, spec)
        .bind(now_ms())
        .returning_id(&mut *c)
        .await
        .map_err(|e| unique_violation(e, &spec.name))?
        .unwrap_or_default();
    endpoint(c, id).await
}

pub async fn update_endpoint(c: &mut DbConn, id: i64, spec: &EndpointSpec) -> Result<Endpoint> {
    let query = db::query(
        "UPDATE endpoints SET name = ?, base_url = ?, model = ?, headers_json = ?,
             price_in_micros = ?, price_cached_micros = ?, price_out_micros = ?,
             timeout_ms = ?, max_retries = ?, status = ?, redaction_json = ?, lineage_json = ?
         WHERE id = ?",
    );
    let res = bind_spec(query, spec)
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| unique_violation(e, &spec.name))?;
    if res.rows_affected() == 0 {
        return Err(StoreError::NoSuchEndpoint(format!("#{id}")));
    }
    endpoint(c, id).await
}

pub async fn set_has_token(c: &mut DbConn, id: i64, has_token: bool) -> Result<()> {
    db::query("UPDATE endpoints SET has_token = ? WHERE id = ?")
        .bind(has_token)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn record_test(c: &mut DbConn, id: i64, test: &ConnectionTest) -> Result<()> {
    db::query("UPDATE endpoints SET test_at_ms = ?, test_json = ? WHERE id = ?")
        .bind(test.at_ms)
        .bind(Json(test))
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Deletes an endpoint; its calls stay in the log, unlinked.
pub async fn delete_endpoint(c: &mut DbConn, id: i64) -> Result<()> {
    db::query("DELETE FROM endpoints WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Every column of an endpoint, and its replacement's name.
const ENDPOINT_SELECT: &str = "SELECT e.*, r.name AS replacement FROM endpoints e
     LEFT JOIN endpoints r ON r.id = e.replacement_id";

pub async fn endpoint(c: &mut DbConn, id: i64) -> Result<Endpoint> {
    db::query_as::<EndpointRow>(&format!("{ENDPOINT_SELECT} WHERE e.id = ?"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NoSuchEndpoint(format!("#{id}")))?
        .into_endpoint()
}

pub async fn endpoint_by_name(c: &mut DbConn, name: &str) -> Result<Endpoint> {
    db::query_as::<EndpointRow>(&format!("{ENDPOINT_SELECT} WHERE e.name = ?"))
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NoSuchEndpoint(name.to_owned()))?
        .into_endpoint()
}

pub async fn endpoints(c: &mut DbConn) -> Result<Vec<Endpoint>> {
    db::query_as::<EndpointRow>(&format!("{ENDPOINT_SELECT} ORDER BY e.name"))
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(EndpointRow::into_endpoint)
        .collect()
}

/// Sets an endpoint's lifecycle: status, sunset date and replacement (by id).
pub async fn set_lifecycle(
    c: &mut DbConn,
    id: i64,
    status: EndpointStatus,
    sunset_ms: Option<i64>,
    replacement_id: Option<i64>,
) -> Result<Endpoint> {
    db::query("UPDATE endpoints SET status = ?, sunset_ms = ?, replacement_id = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(sunset_ms)
        .bind(replacement_id)
        .bind(id)
        .execute(&mut *c)
        .await?;
    endpoint(c, id).await
}

type Query<'q> = db::sql::Query<'q>;

/// Binds an endpoint's twelve editable columns, in the order both endpoint statements list them.
fn bind_spec<'q>(query: Query<'q>, spec: &'q EndpointSpec) -> Query<'q> {
    query
        .bind(&spec.name)
        .bind(&spec.base_url)
        .bind(&spec.model)
        .bind(Json(&spec.headers))
        .bind(spec.prices.input.micros())
        .bind(spec.prices.cached_input.map(PricePerMillion::micros))
        .bind(spec.prices.output.micros())
        .bind(spec.timeout_ms as i64)
        .bind(spec.max_retries as i64)
        .bind(spec.status.as_str())
        .bind(Json(&spec.redaction))
        .bind(spec.lineage.as_ref().map(Json))
}

fn unique_violation(e: StoreError, name: &str) -> StoreError {
    unique_or(e, || StoreError::DuplicateName(name.to_owned()))
}

#[derive(FromRow)]
struct EndpointRow {
    id: i64,
    name: String,
    base_url: String,
    model: String,
    headers_json: String,
    price_in_micros: i64,
    price_cached_micros: Option<i64>,
    price_out_micros: i64,
    timeout_ms: i64,
    max_retries: i64,
    status: String,
    has_token: bool,
    test_json: Option<String>,
    redaction_json: Option<String>,
    lineage_json: Option<Json<milc_api::Lineage>>,
    sunset_ms: Option<i64>,
    replacement: Option<String>,
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<Endpoint> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("endpoint '{}': {what}", self.name));
        let headers = serde_json::from_str(&self.headers_json).map_err(|_| corrupt("headers"))?;
        let status = EndpointStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?;
        let redaction = match &self.redaction_json {
            Some(j) => serde_json::from_str(j).map_err(|_| corrupt("redaction policy"))?,
            None => Default::default(),
        };
        let last_test = match &self.test_json {
            Some(j) => Some(serde_json::from_str(j).map_err(|_| corrupt("last test"))?),
            None => None,
        };
        // What an endpoint is follows from where it points: no flag to keep in step.
        let simulator = self.base_url == super::EMBEDDED_SIM_URL;
        Ok(Endpoint {
            id: self.id,
            spec: EndpointSpec {
                name: self.name,
                base_url: self.base_url,
                model: self.model,
                headers,
                prices: Prices {
                    input: PricePerMillion::from_micros(self.price_in_micros),
                    cached_input: self.price_cached_micros.map(PricePerMillion::from_micros),
                    output: PricePerMillion::from_micros(self.price_out_micros),
                },
                timeout_ms: self.timeout_ms as u64,
                max_retries: self.max_retries as u32,
                status,
                redaction,
                lineage: self.lineage_json.map(|j| j.0),
            },
            has_token: self.has_token,
            simulator,
            last_test,
            sunset_ms: self.sunset_ms,
            replacement: self.replacement,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calllog::{storage as calls, CallLog};
    use crate::db::Store;
    use milc_api::{Call, CallSource, ErrorKind, Outcome, Usage, UsageSource};

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/milc.db")).await.unwrap();
        (dir, store)
    }

    async fn conn(store: &Store) -> crate::db::Conn {
        store.read().await.unwrap()
    }

    fn spec(name: &str) -> EndpointSpec {
        let mut s = EndpointSpec::new(name, "http://127.0.0.1:9/v1", "m");
        s.prices.input = "0.15".parse().unwrap();
        s.prices.cached_input = Some("0.075".parse().unwrap());
        s.prices.output = "0.6".parse().unwrap();
        s.headers.insert("x-team".into(), "blue".into());
        s
    }

    #[tokio::test]
    async fn endpoints_round_trip_through_a_file() {
        let (dir, store) = temp_store().await;
        let e = insert_endpoint(&mut conn(&store).await, &spec("a"))
            .await
            .unwrap();
        assert_eq!(e.spec, spec("a"));
        store.close().await;

        // Reopen the same file: the data and the schema are still there.
        let store = Store::open(&dir.path().join("sub/milc.db")).await.unwrap();
        let again = endpoint_by_name(&mut conn(&store).await, "a")
            .await
            .unwrap();
        assert_eq!(again, e);

        let mut changed = spec("b");
        changed.status = EndpointStatus::Deprecated;
        changed.max_retries = 5;
        let upd = update_endpoint(&mut conn(&store).await, e.id, &changed)
            .await
            .unwrap();
        assert_eq!(upd.spec, changed);
        assert!(matches!(
            endpoint_by_name(&mut conn(&store).await, "a").await,
            Err(StoreError::NoSuchEndpoint(_))
        ));
    }

    #[tokio::test]
    async fn duplicate_names_are_refused_and_nothing_changes() {
        let (_dir, store) = temp_store().await;
        insert_endpoint(&mut conn(&store).await, &spec("a"))
            .await
            .unwrap();
        let err = insert_endpoint(&mut conn(&store).await, &spec("a"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateName(ref n) if n == "a"),
            "{err}"
        );
        assert_eq!(endpoints(&mut conn(&store).await).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn calls_round_trip_newest_first_and_survive_endpoint_deletion() {
        let (_dir, store) = temp_store().await;
        let log = CallLog::start(&store).await.unwrap();
        let e = insert_endpoint(&mut conn(&store).await, &spec("a"))
            .await
            .unwrap();
        let usage = Usage {
            prompt_tokens: 100,
            cached_tokens: 40,
            completion_tokens: 20,
            reasoning_tokens: 5,
            source: UsageSource::Reported,
        };
        let ok = Call {
            at_ms: 1_000,
            endpoint_id: Some(e.id),
            model: "m".into(),
            source: CallSource::Cli,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error_kind: None,
            latency_ms: 120,
            ttft_ms: Some(30),
            usage: Some(usage),
            cost: Some(e.spec.prices.cost(&usage)),
            prompt: None,
            price_id: None,
        };
        let failed = Call {
            at_ms: 2_000,
            outcome: Outcome::Error,
            http_status: Some(429),
            error_kind: Some(ErrorKind::RateLimit),
            ttft_ms: None,
            usage: None,
            cost: None,
            ..ok.clone()
        };
        log.log(&ok).await.unwrap();
        log.log(&failed).await.unwrap();
        let calls = calls::calls(&mut conn(&store).await, 10).await.unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].call.error_kind, Some(ErrorKind::RateLimit));
        assert_eq!(calls[0].call.usage, None);
        assert_eq!(calls[1].call.usage, Some(usage));
        assert_eq!(calls[1].call.cost.unwrap().usd(), "0.000024"); // 60·0.15 + 40·0.075 + 20·0.6 µ$
        assert_eq!(calls[1].endpoint.as_deref(), Some("a"));

        delete_endpoint(&mut conn(&store).await, e.id)
            .await
            .unwrap();
        let calls = calls::calls(&mut conn(&store).await, 1).await.unwrap();
        assert_eq!(
            calls[0].call.endpoint_id, None,
            "the log keeps the call, unlinked"
        );
        assert_eq!(calls[0].call.model, "m");
    }
}
