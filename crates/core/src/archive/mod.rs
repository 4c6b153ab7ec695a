//! Compliance archives: everything an endpoint, a prompt or a use case touched (settings without
//! secrets, prompt versions and label moves, datasets, runs, comparisons and votes, load tests,
//! use cases, the call log with its kept bodies and gateway tags) as one `.tar.zst` of JSONL
//! members and a manifest of their SHA-256s; verifying one; and purging the archived calls from
//! the log while the usage rollups keep their figures.
//!
//! Layout, in this order: `manifest.json` (a [`Manifest`]), `manifest.sha256` (its SHA-256 in
//! `sha256sum` format, so `sha256sum -c` checks it once extracted), then one member per
//! [`Member`], always all of them (an empty one has zero rows). Members are written to
//! temporary files beside the archive first (their size goes before their bytes in a tar), so
//! memory stays flat whatever the number of calls; the archive itself goes through a
//! [`PartialFile`] and is there whole or not at all.

pub mod storage;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use milc_api::lifecycle::{ArchiveMember, ArchiveReport, ArchiveScope, Manifest, Purged};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::db::{self, hex, now_ms, PartialFile, StoreError};
use crate::{calllog, Console, Error};
pub use storage::Member;
use storage::Subject;

/// The archive layout's version, in every manifest.
pub const FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const MANIFEST_SHA256: &str = "manifest.sha256";
/// Rows between two progress reports.
const PROGRESS_EVERY: u64 = 1_000;
/// The largest manifest read back (a manifest lists 22 members: a few KiB).
const MANIFEST_MAX: u64 = 1 << 20;

fn subject(scope: &ArchiveScope) -> (Subject, &str) {
    match scope {
        ArchiveScope::Endpoint(n) => (Subject::Endpoint, n),
        ArchiveScope::Prompt(n) => (Subject::Prompt, n),
        ArchiveScope::Usecase(n) => (Subject::Usecase, n),
    }
}

/// A member being written: a temporary file beside the archive (removed when dropped), hashed
/// and counted as it grows.
struct Spool {
    out: BufWriter<File>,
    sha: Sha256,
    rows: u64,
    bytes: u64,
}

impl Spool {
    fn new(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::new(tempfile::tempfile_in(dir)?),
            sha: Sha256::new(),
            rows: 0,
            bytes: 0,
        })
    }

    fn line(&mut self, row: &Map<String, Value>) -> io::Result<()> {
        let mut line = serde_json::to_vec(row)?;
        line.push(b'\n');
        self.sha.update(&line);
        self.out.write_all(&line)?;
        self.rows += 1;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// The file rewound to its start, its size and its SHA-256.
    fn finish(self) -> io::Result<(File, u64, String)> {
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok((file, self.bytes, hex(&self.sha.finalize())))
    }
}

impl Console {
    /// Writes the archive of `scope` to `path` (empty: `milc-archive.tar.zst` in the downloads
    /// folder): what it covers is in [`storage::resolve`]; `since_ms` / `until_ms` bound its
    /// calls, runs, load tests and comparisons by when they were made. Read as one snapshot of
    /// the database; tokens are never read. `progress(done, total)` counts rows (plus one for
    /// the file itself).
    #[tracing::instrument(skip_all, fields(scope = %scope), err(level = "info"))]
    pub async fn archive_create(
        &self,
        scope: &ArchiveScope,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        path: &str,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<ArchiveReport, Error> {
        if let (Some(s), Some(u)) = (since_ms, until_ms) {
            if u <= s {
                return Err(Error::invalid("until", "must be after since"));
            }
        }
        let (subject, name) = subject(scope);
        let file = PartialFile::create(path, "milc-archive.tar.zst")?;
        let dir = match file.path().parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |e: io::Error| Error::invalid(file.path().display().to_string(), e.to_string());

        let mut tx = self.store.snapshot().await?;
        let id = storage::subject_id(&mut tx, subject, name)
            .await?
            .ok_or_else(|| match subject {
                Subject::Endpoint => StoreError::NoSuchEndpoint(name.to_owned()).into(),
                Subject::Prompt => StoreError::NoSuchPrompt(name.to_owned()).into(),
                Subject::Usecase => Error::invalid("usecase", format!("no use case '{name}'")),
            })?;
        let schema_version = storage::schema_version(&mut tx).await?;
        let database = db::meta(&mut tx, "install_id").await?.unwrap_or_default();
        let (since, until) = (since_ms.unwrap_or(i64::MIN), until_ms.unwrap_or(i64::MAX));
        let resolved = storage::resolve(&mut tx, subject, id, name, since, until).await?;

        let mut total = 1;
        for m in Member::ALL {
            total += storage::count(&mut tx, m, &resolved).await?;
        }
        progress(0, total);
        let mut done = 0u64;
        let mut spools = Vec::with_capacity(Member::ALL.len());
        for m in Member::ALL {
            let mut spool = Spool::new(&dir).map_err(io)?;
            storage::each_row(&mut tx, m, &resolved, |row| -> Result<(), Error> {
                spool.line(&row).map_err(io)?;
                done += 1;
                if done.is_multiple_of(PROGRESS_EVERY) {
                    progress(done, total);
                }
                Ok(())
            })
            .await?;
            progress(done, total);
            spools.push((m, spool));
        }
        // A read transaction: nothing to commit.
        drop(tx);

        let mut members = Vec::with_capacity(spools.len());
        let mut calls = 0;
        let mut files = Vec::with_capacity(spools.len());
        for (m, spool) in spools {
            let rows = spool.rows;
            let (f, bytes, sha256) = spool.finish().map_err(io)?;
            if m == Member::Calls {
                calls = rows;
            }
            members.push(ArchiveMember {
                name: m.file_name().to_owned(),
                sha256,
                rows,
            });
            files.push((m.file_name(), f, bytes));
        }
        let manifest = Manifest {
            format: FORMAT,
            schema_version,
            created_ms: now_ms(),
            scope: scope.clone(),
            since_ms,
            until_ms,
            members,
            calls,
            database,
        };
        let mut manifest_json =
            serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        manifest_json.push(b'\n');
        let manifest_sha256 = hex(&Sha256::digest(&manifest_json));
        let mtime = (manifest.created_ms / 1000).max(0) as u64;
        let sha_line = format!("{manifest_sha256}  {MANIFEST}\n");
        let path = tokio::task::spawn_blocking(move || {
            write_archive(file, &manifest_json, sha_line.as_bytes(), files, mtime)
        })
        .await
        .map_err(|e| Error::invalid("archive", format!("writing stopped: {e}")))??;
        progress(total, total);
        Ok(ArchiveReport {
            path,
            manifest,
            manifest_sha256,
            verified: true,
            damaged: Vec::new(),
        })
    }

    /// Deletes from the log the calls archive `path` holds, once the archive verifies and only
    /// if it was made from this database: each call it lists by id that is still the same call
    /// (same time), with its kept bodies, gateway tag and feedback, in one transaction. The
    /// usage rollups keep every figure: whatever was not rolled up yet is folded in first, in
    /// the same transaction, and they are never rebuilt from the log here (a later rebuild over
    /// the purged range, by a price recomputation or an endpoint's deletion, would count only
    /// the calls left).
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn archive_purge(&self, path: &str) -> Result<Purged, Error> {
        let file = PathBuf::from(path);
        let (report, calls) = tokio::task::spawn_blocking(move || read_archive(&file, true))
            .await
            .map_err(|e| Error::invalid(path, format!("reading stopped: {e}")))??;
        if !report.damaged.is_empty() {
            return Err(Error::invalid(
                path,
                format!(
                    "{} changed since the archive was written: nothing deleted",
                    report.damaged.join(", ")
                ),
            ));
        }
        let database = db::meta(&mut self.store.read().await?, "install_id")
            .await?
            .unwrap_or_default();
        if report.manifest.database != database {
            return Err(Error::invalid(
                path,
                "was made from another database: nothing deleted",
            ));
        }
        // This process's calls first (the writer rolls them up), then, in the purge's own
        // transaction, whatever another process or a crash left above the marker.
        self.log.rolled_up().await;
        let mut tx = self.store.write().await?;
        self.log.rollups_rewritten();
        let touched = calllog::storage::catch_up(&mut tx).await?;
        let (deleted, bodies) = storage::purge(&mut tx, &calls).await?;
        db::commit(tx).await?;
        if !touched.is_empty() {
            self.log.touched(touched);
        }
        self.noted("archive.purge", path).await?;
        Ok(Purged {
            calls: deleted,
            bodies,
            skipped: (calls.len() as u64).saturating_sub(deleted),
        })
    }
}

/// Reads archive `path` whole, recomputing every member's SHA-256 and the manifest's: the
/// report names each member that changed, is missing or was added (`damaged`).
pub fn verify(path: &Path) -> Result<ArchiveReport, Error> {
    Ok(read_archive(path, true)?.0)
}

/// Reads only archive `path`'s manifest (and checks it against `manifest.sha256`), without
/// hashing the members: quick, and `verified` is false.
pub fn manifest(path: &Path) -> Result<ArchiveReport, Error> {
    Ok(read_archive(path, false)?.0)
}

fn write_archive(
    mut file: PartialFile,
    manifest: &[u8],
    manifest_sha256: &[u8],
    members: Vec<(&'static str, File, u64)>,
    mtime: u64,
) -> Result<String, Error> {
    let shown = file.path().display().to_string();
    let io = |e: io::Error| Error::invalid(shown.clone(), format!("cannot write: {e}"));
    let header = |size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h
    };
    let mut tar = tar::Builder::new(zstd::Encoder::new(file.writer(), 0).map_err(io)?);
    tar.append_data(&mut header(manifest.len() as u64), MANIFEST, manifest)
        .map_err(io)?;
    tar.append_data(
        &mut header(manifest_sha256.len() as u64),
        MANIFEST_SHA256,
        manifest_sha256,
    )
    .map_err(io)?;
    for (name, f, size) in members {
        tar.append_data(&mut header(size), name, f).map_err(io)?;
    }
    tar.into_inner().and_then(|z| z.finish()).map_err(io)?;
    file.commit()
}

/// Hashes whatever is read through it.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// What a purge needs of a call line.
#[derive(serde::Deserialize)]
struct CallKey {
    id: i64,
    at_ms: i64,
}

/// Reads archive `path`: its manifest, checked against `manifest.sha256`, and, when `full`,
/// every member hashed against the manifest and the calls' `(id, at_ms)`.
fn read_archive(path: &Path, full: bool) -> Result<(ArchiveReport, Vec<(i64, i64)>), Error> {
    let shown = path.display().to_string();
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::invalid(shown.clone(), format!("not a readable archive: {e}"))
    };
    let f =
        File::open(path).map_err(|e| Error::invalid(shown.clone(), format!("cannot read: {e}")))?;
    let mut tar = tar::Archive::new(zstd::Decoder::new(f).map_err(|e| unreadable(&e))?);
    let (mut manifest_json, mut manifest_sha) = (None::<Vec<u8>>, None::<String>);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut damaged = Vec::new();
    let mut calls = Vec::new();
    for entry in tar.entries().map_err(|e| unreadable(&e))? {
        let entry = entry.map_err(|e| unreadable(&e))?;
        let name = entry
            .path()
            .map_err(|e| unreadable(&e))?
            .to_string_lossy()
            .into_owned();
        if name == MANIFEST || name == MANIFEST_SHA256 {
            let mut bytes = Vec::new();
            entry
                .take(MANIFEST_MAX)
                .read_to_end(&mut bytes)
                .map_err(|e| unreadable(&e))?;
            match name.as_str() {
                MANIFEST => manifest_json = Some(bytes),
                _ => manifest_sha = Some(String::from_utf8_lossy(&bytes).into_owned()),
            }
            if !full && manifest_json.is_some() && manifest_sha.is_some() {
                break;
            }
            continue;
        }
        if !full {
            continue;
        }
        let mut r = Hashing {
            inner: entry,
            sha: Sha256::new(),
        };
        if name == Member::Calls.file_name() {
            let mut lines = BufReader::new(&mut r);
            let mut line = Vec::new();
            let mut n = 0usize;
            loop {
                line.clear();
                if lines
                    .read_until(b'\n', &mut line)
                    .map_err(|e| unreadable(&e))?
                    == 0
                {
                    break;
                }
                n += 1;
                // A line that is not a call is caught by its hash; it is never purged.
                if let Ok(k) = serde_json::from_slice::<CallKey>(&line) {
                    calls.push((k.id, k.at_ms));
                } else {
                    tracing::debug!(line = n, "calls.jsonl: not a call");
                }
            }
        } else {
            io::copy(&mut r, &mut io::sink()).map_err(|e| unreadable(&e))?;
        }
        if seen.insert(name.clone(), hex(&r.sha.finalize())).is_some() {
            damaged.push(name);
        }
    }
    let manifest_json = manifest_json.ok_or_else(|| {
        Error::invalid(
            shown.clone(),
            format!("holds no {MANIFEST}: not an archive written by milc archive create"),
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&manifest_json)
        .map_err(|e| Error::invalid(shown.clone(), format!("{MANIFEST} is damaged: {e}")))?;
    let manifest_sha256 = hex(&Sha256::digest(&manifest_json));
    match manifest_sha
        .as_deref()
        .and_then(|s| s.split_whitespace().next())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        None => damaged.push(MANIFEST_SHA256.to_owned()),
        Some(h) if !h.eq_ignore_ascii_case(&manifest_sha256) => damaged.push(MANIFEST.to_owned()),
        Some(_) => {}
    }
    if full {
        for m in &manifest.members {
            if seen.remove(&m.name).as_deref() != Some(m.sha256.as_str()) {
                damaged.push(m.name.clone());
            }
        }
        // Members the manifest does not list.
        damaged.extend(seen.into_keys());
        damaged.sort();
        damaged.dedup();
    }
    Ok((
        ArchiveReport {
            path: shown,
            manifest,
            manifest_sha256,
            verified: full,
            damaged,
        },
        calls,
    ))
}
