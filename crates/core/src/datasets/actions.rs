//! Datasets as shells use them: import (file or text), preview, browse, edit, export.

use std::path::Path;

use milc_api::dataset::{DatasetEdit, DatasetItem, DatasetPreview, DatasetVersion, Imported};
use milc_api::export::Exported;
use milc_api::prompt::check_name;

use super::{apply_edit, parse, preview, read_file, storage, Format};
use crate::db::{self, PartialFile};
use crate::{Console, Error};

impl Console {
    /// Parses a CSV or JSONL file whole and stores it as a version of dataset `name`; nothing is
    /// stored when any line is bad. Importing the same content again adds no version.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn import_dataset(&self, path: &Path, name: &str) -> Result<Imported, Error> {
        check_name("dataset name", name).map_err(|e| Error::invalid("name", e))?;
        let items = read_file(path)?;
        let source = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.import_items(name, &items, &source).await
    }

    /// Imports a text the window holds (pasted or read from a chosen file) in `format`.
    pub async fn import_dataset_text(
        &self,
        name: &str,
        file: &str,
        format: Format,
        text: &str,
    ) -> Result<Imported, Error> {
        check_name("dataset name", name).map_err(|e| Error::invalid("name", e))?;
        let items = parse(file, format, text)?;
        self.import_items(name, &items, file).await
    }

    /// What importing a text would store.
    pub fn preview_dataset_text(
        &self,
        file: &str,
        format: Format,
        text: &str,
    ) -> Result<DatasetPreview, Error> {
        Ok(preview(&parse(file, format, text)?, 20))
    }

    /// What importing `path` would store: counts, variables, the first items and the hash.
    pub fn preview_dataset(&self, path: &Path, first: usize) -> Result<DatasetPreview, Error> {
        Ok(preview(&read_file(path)?, first))
    }

    /// Every dataset version, newest first.
    pub async fn datasets(&self) -> Result<Vec<DatasetVersion>, Error> {
        Ok(storage::dataset_versions(&mut self.store.read().await?).await?)
    }

    /// A page of a dataset version's items (`NAME` or `NAME@HASH`).
    pub async fn dataset_items(
        &self,
        reference: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(DatasetVersion, Vec<milc_api::dataset::DatasetItem>), Error> {
        Ok(storage::dataset_items(&mut self.store.read().await?, reference, offset, limit).await?)
    }

    pub async fn export_dataset(
        &self,
        reference: &str,
        format: Format,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<DatasetVersion, Error> {
        storage::export_dataset(&mut self.store.read().await?, reference, format, out).await
    }

    /// Applies `edit` to its base version and stores the result as a new version of the same
    /// dataset; the base is untouched. A bad line is refused before anything is stored.
    pub async fn edit_dataset(&self, edit: &DatasetEdit) -> Result<Imported, Error> {
        let (id, base) =
            storage::dataset_version(&mut self.store.read().await?, &edit.base).await?;
        let items = apply_edit(
            storage::version_items(&mut self.store.read().await?, id, 0, u64::MAX).await?,
            edit,
        )?;
        let source = format!("edit of {}@{}", base.dataset, &base.hash[..12]);
        self.import_items(&base.dataset, &items, &source).await
    }

    /// Writes a version to `path` (empty: `NAME-HASH.EXT` in the user's downloads folder) by way
    /// of a temporary file beside it, so a failed export leaves no half-written file.
    pub async fn export_dataset_file(
        &self,
        reference: &str,
        format: Format,
        path: &str,
    ) -> Result<Exported, Error> {
        let format = format
            .one_of("a dataset", &super::FORMATS)
            .map_err(|e| Error::invalid("format", e))?;
        let (_, v) = storage::dataset_version(&mut self.store.read().await?, reference).await?;
        let default = format!("{}-{}.{}", v.dataset, &v.hash[..12], format.extension());
        let mut file = PartialFile::create(path, &default)?;
        let v = self
            .export_dataset(reference, format, file.writer())
            .await?;
        Ok(Exported {
            source: format!("{}@{}", v.dataset, &v.hash[..12]),
            path: file.commit()?,
            format,
            records: v.items,
        })
    }

    /// Stores `items` as a version of dataset `name`, in one transaction.
    pub async fn import_items(
        &self,
        name: &str,
        items: &[DatasetItem],
        source: &str,
    ) -> Result<Imported, Error> {
        let mut tx = self.store.write().await?;
        let imported = storage::import_dataset(&mut tx, name, items, source).await?;
        db::commit(tx).await?;
        if imported.created {
            let v = &imported.version;
            let short = &v.hash[..v.hash.len().min(12)];
            self.noted("dataset.version", &format!("{} {short}", v.dataset))
                .await?;
        }
        Ok(imported)
    }
}
