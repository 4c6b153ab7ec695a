//! The prompt library as shells use it: list, show, resolve, save, diff, label, render.

use std::collections::BTreeMap;

use milc_api::prompt::{
    check_name, LabelMove, NewVersion, Pick, PromptDetail, PromptDiff, PromptPin, PromptRef,
    PromptSummary, PromptVersion, Saved,
};
use milc_api::{ChatRequest, Message};

use super::{check_content, check_label, diff, render, storage};
use crate::db;
use crate::{endpoints, Console, Error};

impl Console {
    pub async fn prompts(&self) -> Result<Vec<PromptSummary>, Error> {
        Ok(storage::prompts(&mut self.store.read().await?).await?)
    }

    pub async fn prompt(&self, name: &str) -> Result<PromptDetail, Error> {
        Ok(storage::prompt(&mut self.store.read().await?, name).await?)
    }

    /// The version `NAME`, `NAME@N` or `NAME:LABEL` names.
    pub async fn resolve_prompt(&self, reference: &str) -> Result<PromptVersion, Error> {
        let r = PromptRef::parse(reference).map_err(|e| Error::invalid("prompt", e))?;
        Ok(storage::resolve(&mut self.store.read().await?, &r).await?)
    }

    /// Saves a version after checking it (every template parses, parameters in range, the JSON
    /// Schema compiles, custom patterns compile). `create` makes a new prompt, which must not
    /// exist yet; otherwise the prompt must exist. Identical content stores nothing.
    #[tracing::instrument(skip_all, fields(prompt = %nv.prompt, create), err(level = "info"))]
    pub async fn save_prompt(&self, mut nv: NewVersion, create: bool) -> Result<Saved, Error> {
        nv.prompt = nv.prompt.trim().to_owned();
        check_name("prompt name", &nv.prompt).map_err(|e| Error::invalid("name", e))?;
        check_content(&nv.content)?;
        if let Some(e) = &nv.content.endpoint {
            endpoints::storage::endpoint_by_name(&mut self.store.read().await?, e).await?;
        }
        let mut tx = self.store.write().await?;
        let saved = storage::save_version(&mut tx, &nv, create, &self.author()).await?;
        db::commit(tx).await?;
        if saved.created {
            let v = &saved.version;
            self.noted("prompt.save", &format!("{}@{}", v.prompt, v.version))
                .await?;
        }
        Ok(saved)
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
            storage::resolve(&mut self.store.read().await?, &at(left)).await?,
            storage::resolve(&mut self.store.read().await?, &at(right)).await?,
        );
        Ok(diff(&l, &r))
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
        check_label(label)?;
        let mut tx = self.store.write().await?;
        let moved = storage::set_label(&mut tx, name, version, label, &self.author()).await?;
        db::commit(tx).await?;
        if moved.is_some() {
            self.noted("prompt.label", &format!("{label} → {name}@{version}"))
                .await?;
        }
        Ok(moved)
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
        let (messages, unused) = render(&v.content.messages, variables)?;
        Ok((v, messages, unused))
    }
}
