//! Helpers for the end-to-end tests in `tests/`: the binaries cargo built, simulator processes on
//! 127.0.0.1, and a scan of the files an app wrote.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary of this workspace, built by `cargo test --workspace` next to the test executables.
pub fn workspace_bin(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (scripts/test)",
        bin.display()
    );
    bin
}

pub fn milc_bin() -> PathBuf {
    workspace_bin("milc")
}

/// Whether this run puts the tests' databases on PostgreSQL (`MILC_TEST_ENGINE=postgres`, on
/// the server `MILC_TEST_PG` names; scripts/test runs the suites once per engine).
pub fn on_postgres() -> bool {
    std::env::var("MILC_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

/// How `milc` is told to open a test's database `db`: `--db PATH`, or on PostgreSQL the server
/// and a workspace of the test's own, named after the path and created on its first use (so
/// the same path is the same store). A URL is passed as it is.
pub fn db_args(db: &Path) -> Vec<std::ffi::OsString> {
    if !on_postgres() || db.to_string_lossy().starts_with("postgres") {
        return vec!["--db".into(), db.into()];
    }
    let (url, name) = pg_workspace_for(db);
    vec!["--db".into(), url.into(), "--workspace".into(), name.into()]
}

/// On PostgreSQL, the server's URL and the workspace that stands for the test's database path
/// `db` (named after the path, created on its first use).
pub fn pg_workspace_for(db: &Path) -> (String, String) {
    use std::hash::{Hash, Hasher};
    let url = std::env::var("MILC_TEST_PG").expect("MILC_TEST_ENGINE=postgres needs MILC_TEST_PG");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    db.hash(&mut h);
    let name = format!("e{:016x}", h.finish());
    static READY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if !ready.contains(&name) {
        let out = Command::new(milc_bin())
            .args(["--db", &url, "--workspace", &name, "workspace", "init"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "workspace init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ready.push(name.clone());
    }
    (url, name)
}

/// Where the test's database `db` keeps `needle`: the SQLite file's own files (the database,
/// its journal and WAL) that hold it, or on PostgreSQL the tables of its workspace whose rows
/// do, read with the server's own `pg_dump`.
pub fn stored_containing(db: &Path, needle: &[u8]) -> Vec<String> {
    if !on_postgres() {
        let base = db.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir(db.parent().unwrap()) else {
            return Vec::new();
        };
        return entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&base))
            .filter(|e| std::fs::read(e.path()).is_ok_and(|b| contains(&b, needle)))
            .map(|e| e.path().display().to_string())
            .collect();
    }
    let (url, name) = pg_workspace_for(db);
    let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries (scripts/setup installs them)")
        .flatten()
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .max()
        .expect("pg_dump");
    // A workspace's tables are in schema `milc_NAME` (see `milc workspace init`).
    let schema = format!("milc_{name}");
    let out = Command::new(pg_dump)
        .args(["--data-only", "--schema", &schema, "--dbname", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        contains(&out.stdout, b"COPY "),
        "pg_dump of schema {schema} dumped no table"
    );
    let (mut table, mut hits) = (String::new(), Vec::new());
    for line in out.stdout.split(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"COPY ") {
            let rest = String::from_utf8_lossy(rest);
            table = rest.split_whitespace().next().unwrap_or("").to_owned();
        } else if contains(line, needle) && !hits.contains(&table) {
            hits.push(table.clone());
        }
    }
    hits
}

/// A `milc sim` process on a free port, killed when dropped. `SIM_KEY` is set to `api_key` so
/// `--api-key-env SIM_KEY` can require it.
pub struct SimProcess {
    child: Child,
    pub url: String,
}

impl SimProcess {
    pub fn start(args: &[&str], api_key: &str) -> Self {
        let (child, url) = serving(
            Command::new(milc_bin())
                .args(["sim", "--port", "0"])
                .args(args)
                .env("SIM_KEY", api_key)
                .stderr(Stdio::inherit()),
        );
        Self { child, url }
    }
}

/// Starts `cmd`, a server that prints a line ending in its base URL once it serves on
/// 127.0.0.1, and returns it with that URL.
pub fn serving(cmd: &mut Command) -> (Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.rsplit(' ').next().unwrap().trim().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
        "{line}"
    );
    (child, url)
}

/// A `milc --db DB gateway --listen 127.0.0.1:0 --config ROUTES` process and its base URL (from
/// the line it prints once serving). Stop it with SIGTERM (`kill -TERM`) to see it drain.
pub fn gateway_process(db: &Path, routes: &Path) -> (Child, String) {
    gateway_process_on(&db_args(db), routes)
}

/// [`gateway_process`] on the store that `db_args` name (`--db URL --workspace NAME`).
pub fn gateway_process_on(db_args: &[std::ffi::OsString], routes: &Path) -> (Child, String) {
    serving(
        Command::new(milc_bin())
            .args(db_args)
            .args(["gateway", "--listen", "127.0.0.1:0", "--config"])
            .arg(routes)
            .stderr(Stdio::piped()),
    )
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `milc --db DB ARGS…` to completion, whatever its exit code.
pub fn milc_run(db: &Path, args: &[&str]) -> Output {
    Command::new(milc_bin())
        .args(db_args(db))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `milc --db DB ARGS…` to completion and returns its stdout; a non-zero exit fails the
/// test with its stderr.
pub fn milc_ok(db: &Path, args: &[&str]) -> String {
    let out = milc_run(db, args);
    assert!(
        out.status.success(),
        "milc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small project on the database `db` (files in `dir`): prompt `qa` (one user message,
/// `{{q}}`, 16 tokens at most), dataset `tickets` of `items` tickets with references, and per
/// `(name, url)` an endpoint on that simulator with one finished `milc eval` run over the
/// tickets scored with rouge1 (runs numbered in that order).
pub fn tickets_project(db: &Path, dir: &Path, items: usize, endpoints: &[(&str, &str)]) {
    let prompt = dir.join("qa.yaml");
    std::fs::write(
        &prompt,
        "messages:\n  - role: user\n    content: \"{{q}}\"\nparams:\n  max_tokens: 16\n",
    )
    .unwrap();
    milc_ok(
        db,
        &[
            "prompts",
            "create",
            "qa",
            "--file",
            prompt.to_str().unwrap(),
        ],
    );
    let data = dir.join("tickets.jsonl");
    let lines: String = (0..items)
        .map(|i| format!("{{\"q\": \"Summarize ticket {i} about a refund\", \"expected\": \"ticket {i} asks for a refund\"}}\n"))
        .collect();
    std::fs::write(&data, lines).unwrap();
    milc_ok(
        db,
        &[
            "datasets",
            "import",
            data.to_str().unwrap(),
            "--name",
            "tickets",
        ],
    );
    for (name, url) in endpoints {
        milc_ok(
            db,
            &[
                "endpoints",
                "add",
                name,
                "--url",
                url,
                "--model",
                "milc-sim",
            ],
        );
        milc_ok(
            db,
            &[
                "eval",
                "--prompt",
                "qa",
                "--endpoint",
                name,
                "--dataset",
                "tickets",
                "--scorers",
                "rouge1",
            ],
        );
    }
}

/// Waits for a child to finish (30 s at most) and collects its output. Both pipes are drained
/// while it runs, so a child that prints more than a pipe buffer holds cannot block on them.
/// Sends SIGTERM to `child` (a gateway drains, a window closes), as systemd and `kill` do.
pub fn sigterm(child: &Child) {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
}

pub fn wait_output(mut child: Child) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file below `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if meta.is_file() && std::fs::read(&path).is_ok_and(|b| contains(&b, needle)) {
            hits.push(path.display().to_string());
        }
    }
    hits
}

/// Every file below `dir`, for the report when a scan finds nothing to scan.
pub fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// "0.000123" → 123_000_000 pico-dollars, an independent reading of the app's money strings.
pub fn pico(usd: &str) -> i64 {
    let usd = usd.trim().trim_start_matches('$');
    let (int, frac) = usd.split_once('.').unwrap_or((usd, ""));
    int.parse::<i64>().unwrap() * 1_000_000_000_000 + format!("{frac:0<12}").parse::<i64>().unwrap()
}

/// The environment that puts everything the desktop app writes under `home`: database, logs,
/// window state, WebKit data. Tests scan `home` afterwards; benchmarks start from nothing. On
/// PostgreSQL (`MILC_TEST_ENGINE=postgres`) the database is the workspace that stands for
/// `home/milc.db` instead, as [`db_args`] opens it for `milc`.
pub fn desktop_env(home: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    let db = home.join("milc.db");
    let mut env = vec![
        ("MILC_LOG_DIR", home.join("logs").into()),
        ("XDG_CONFIG_HOME", home.join("config").into()),
        ("XDG_CACHE_HOME", home.join("cache").into()),
        ("XDG_DATA_HOME", home.join("data").into()),
        ("NO_AT_BRIDGE", "1".into()),
    ];
    if on_postgres() {
        let (url, name) = pg_workspace_for(&db);
        env.push(("MILC_DB", url.into()));
        env.push(("MILC_WORKSPACE", name.into()));
    } else {
        env.push(("MILC_DB", db.into()));
    }
    env
}

/// Waits until the app's UI reports itself interactive through MILC_READY_FILE.
pub fn wait_ready(file: &Path, since: Instant) {
    while !file.exists() {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the app never became interactive"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A free TCP port on 127.0.0.1 (for servers that cannot report the port they bound).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A rubric prompt file for the LLM judge scorer: the answer rated 1–5 against the reference,
/// as JSON that follows a schema.
pub const RUBRIC: &str = r#"messages:
  - role: system
    content: Rate the answer from 1 to 5 against the reference. Answer as JSON.
  - role: user
    content: "Question: {{input}}\nAnswer: {{output}}\nReference: {{expected}}"
params:
  response_format:
    type: json_schema
    json_schema:
      name: verdict
      schema: {type: object, required: [score, reason], properties: {score: {type: integer, minimum: 1, maximum: 5}, reason: {type: string}}}
"#;
