//! Export files written whole or not at all.

use std::path::{Path, PathBuf};

use crate::Error;

/// An export file written as `NAME.partial` beside its destination and renamed into place by
/// `commit`; dropped before that, it is removed, so a failed export leaves no half-written file
/// (and never touches another file of the user's).
pub struct PartialFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl PartialFile {
    /// `path`, or `default_name` in the user's downloads folder when `path` is empty.
    pub fn create(path: &str, default_name: &str) -> Result<Self, Error> {
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

    /// Where the file goes once committed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn writer(&mut self) -> &mut std::io::BufWriter<std::fs::File> {
        self.out.as_mut().expect("written before commit")
    }

    /// Flushes and renames the file into place; returns its path as shown to the user.
    pub fn commit(mut self) -> Result<String, Error> {
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
