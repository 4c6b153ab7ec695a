//! Budgets, alert settings, alerts and the call list as a person or a script reads and changes
//! them (the tables are the call log's; see `calllog::storage`).

use milc_api::usage::{Alert, AlertSettings, Budget, CallDetail};
use milc_api::{CallRecord, Cost};

use crate::calllog::storage;
use crate::db::StoreError;
use crate::{Console, Error};

impl Console {
    /// Alerts, newest first.
    pub async fn alerts(&self, limit: u32) -> Result<Vec<Alert>, Error> {
        Ok(storage::alerts(&mut self.store.read().await?, limit).await?)
    }

    /// Marks alert `id` seen.
    pub async fn ack_alert(&self, id: i64) -> Result<(), Error> {
        if storage::ack_alert(&mut self.store.read().await?, id).await? {
            Ok(())
        } else {
            Err(Error::invalid("alert", format!("no alert {id}")))
        }
    }

    pub async fn alert_settings(&self) -> Result<AlertSettings, Error> {
        Ok(storage::alert_settings(&mut self.store.read().await?).await?)
    }

    /// Changes when alerts fire: a spike factor above 1, an error rate within 0..1.
    pub async fn set_alert_settings(&self, s: &AlertSettings) -> Result<AlertSettings, Error> {
        if !(s.spike_factor > 1.0 && s.spike_factor.is_finite()) {
            return Err(Error::invalid("spike_factor", "more than 1"));
        }
        if !(0.0..=1.0).contains(&s.error_rate) {
            return Err(Error::invalid("error_rate", "between 0 and 1"));
        }
        storage::set_alert_settings(&mut self.store.read().await?, s).await?;
        self.noted("alert_settings.set", "alerts").await?;
        Ok(s.clone())
    }

    pub async fn budgets(&self) -> Result<Vec<Budget>, Error> {
        Ok(storage::budgets(&mut self.store.read().await?).await?)
    }

    /// Sets the daily and monthly budget (USD as typed; blank: none; both none: removed) of
    /// `endpoint` (`None`: everything), and evaluates it at once: it may already be crossed.
    pub async fn set_budget(
        &self,
        endpoint: Option<&str>,
        daily: Option<&str>,
        monthly: Option<&str>,
    ) -> Result<Vec<Budget>, Error> {
        let usd = |v, field| Cost::parse_usd_field(v).map_err(|e| Error::invalid(field, e.0));
        let (daily, monthly) = (usd(daily, "daily")?, usd(monthly, "monthly")?);
        let id = match endpoint {
            Some(name) => self.endpoint(name).await?.id,
            None => 0,
        };
        let mut c = self.store.read().await?;
        storage::set_budget(&mut c, id, daily, monthly).await?;
        self.log.touched(vec![id]);
        self.log.flush().await;
        let budgets = storage::budgets(&mut c).await?;
        drop(c);
        self.noted("budget.set", endpoint.unwrap_or("all endpoints"))
            .await?;
        Ok(budgets)
    }

    /// Waits until every call logged so far has been evaluated for alerts.
    pub async fn flush_alerts(&self) {
        self.log.flush().await;
    }

    /// New alerts as they fire (the desktop shows them as notifications).
    pub fn subscribe_alerts(&self) -> tokio::sync::broadcast::Receiver<Alert> {
        self.log.subscribe()
    }

    /// The newest `limit` calls, newest first.
    pub async fn calls(&self, limit: u32) -> Result<Vec<CallRecord>, Error> {
        Ok(storage::calls(&mut self.store.read().await?, limit).await?)
    }

    /// A call with its kept bodies and what made it (run item, comparison, gateway route).
    pub async fn call_detail(&self, id: i64) -> Result<CallDetail, Error> {
        let mut c = self.store.read().await?;
        let record = storage::call(&mut c, id)
            .await?
            .ok_or(StoreError::NoSuchCall(id))?;
        let (run, comparison, route) = storage::call_origin(&mut c, id).await?;
        drop(c);
        Ok(CallDetail {
            record,
            body: self.call_body(id).await?,
            run,
            comparison,
            route,
        })
    }
}
