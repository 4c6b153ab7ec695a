//! `milc` end to end, as a script or CI uses it: real processes, a real simulator process on
//! 127.0.0.1, a real SQLite file, the real keyring (scripts/test provides the Secret Service).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ChildStdout, Command, Output, Stdio};

use milc_e2e::{contains, files_containing, milc_bin, pico, wait_output, SimProcess};
use serde_json::Value;

const CANARY: &str = "CANARY_nvapi_e2e_8c41b7d2e9";

/// A request whose answer (two long sentences of it, as the simulator extracts them) streams for
/// seconds at a slow pace.
const STORY: &str = "Tell me a long story about a lighthouse keeper who finds a map in a bottle on a stormy night and follows it across the sea to an island nobody has charted. The keeper packs bread and a lamp and rows out before dawn while the gulls circle overhead.";

struct Db {
    dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("milc.db")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(milc_bin());
        c.args(milc_e2e::db_args(&self.path())).args(args);
        c
    }

    /// Runs `milc` to completion (30 s at most), feeding `stdin`.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = wait_output(child);
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !contains(stream, CANARY.as_bytes()),
                "milc {args:?} printed the token"
            );
        }
        out
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "milc {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes `text` to `name` beside the database and returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    }

    /// Adds endpoint `name` for the simulator at `url` (model `milc-sim`), with `extra` options.
    fn add_sim_endpoint(&self, name: &str, url: &str, extra: &[&str]) {
        let mut args = vec![
            "endpoints",
            "add",
            name,
            "--url",
            url,
            "--model",
            "milc-sim",
        ];
        args.extend(extra);
        self.ok(&args, "");
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args, "")).unwrap()
    }
}

/// Reads from a child's stdout until something arrives.
fn first_bytes(stdout: &mut ChildStdout) -> String {
    let mut buf = [0u8; 64];
    let n = stdout.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_fresh_install_chats_with_the_builtin_simulator_without_credentials() {
    let db = Db::new();
    let eps = db.json(&["endpoints", "list", "--json"]);
    assert_eq!(eps.as_array().unwrap().len(), 1);
    assert_eq!(eps[0]["name"], "Local simulator");
    assert_eq!(eps[0]["simulator"], true);
    assert!(
        db.ok(&["endpoints", "list"], "").contains("simulator"),
        "labelled in the table too"
    );

    let out = db.run(&["chat", "hello there"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).trim().len() > 10);
    let figures = String::from_utf8_lossy(&out.stderr);
    assert!(
        figures.contains("ttft") && figures.contains("reported"),
        "{figures}"
    );
    assert!(db
        .ok(&["endpoints", "test", "Local simulator"], "")
        .contains("milc-sim"));
}

#[test]
fn chat_with_a_keyring_token_is_logged_with_the_right_cost_and_the_token_stays_secret() {
    let sim = SimProcess::start(&["--api-key-env", "SIM_KEY"], CANARY);
    let db = Db::new();
    let added = db.run(
        &[
            "endpoints",
            "add",
            "ccluster",
            "--url",
            &sim.url,
            "--model",
            "milc-sim",
            "--token-stdin",
            "--price-in",
            "0.5",
            "--price-cached",
            "0.25",
            "--price-out",
            "1.5",
        ],
        &format!("{CANARY}\n"),
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let eps = db.json(&["endpoints", "list", "--json"]);
    let ep = eps
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "ccluster")
        .unwrap();
    assert_eq!(ep["has_token"], true);
    assert_eq!(ep["prices"]["cached_input"], "0.25");
    assert!(db
        .ok(&["endpoints", "test", "ccluster"], "")
        .contains("ok in"));

    let args = [
        "chat",
        "--endpoint",
        "ccluster",
        "--system",
        "Answer in one paragraph.",
        "Why log every call?",
    ];
    let streamed = db.ok(&args, "");
    let r: Value = serde_json::from_str(&db.ok(&[&args[..], &["--json"]].concat(), "")).unwrap();
    assert_eq!(
        streamed.trim_end(),
        r["output"].as_str().unwrap(),
        "stdout carries the answer"
    );
    let u = &r["usage"];
    assert_eq!(u["source"], "reported");
    let (p, c, o) = (
        u["prompt_tokens"].as_i64().unwrap(),
        u["cached_tokens"].as_i64().unwrap(),
        u["completion_tokens"].as_i64().unwrap(),
    );
    assert!(
        c > 0,
        "the system prompt is served from the simulator's cache"
    );
    let expected = (p - c) * 500_000 + c * 250_000 + o * 1_500_000;
    assert_eq!(pico(r["cost"]["usd"].as_str().unwrap()), expected);
    assert_eq!(r["cost"]["source"], "reported");
    assert!(r["ttft_ms"].as_u64().unwrap() <= r["latency_ms"].as_u64().unwrap());

    let calls = db.json(&["calls", "--json", "--limit", "5"]);
    let newest = &calls[0];
    assert_eq!(
        calls.as_array().unwrap().len(),
        2,
        "two chats are two calls; a connection test is not a call"
    );
    assert_eq!(newest["id"], r["call_id"]);
    assert_eq!(
        (newest["endpoint"].as_str(), newest["outcome"].as_str()),
        (Some("ccluster"), Some("ok"))
    );
    assert_eq!(newest["source"], "cli");
    assert_eq!(newest["cost"], r["cost"]);
    assert_eq!(newest["usage"], r["usage"]);
    assert!(db.ok(&["calls"], "").contains("ccluster"));

    assert_eq!(
        files_containing(db.dir.path(), CANARY.as_bytes()),
        Vec::<String>::new()
    );
}

#[test]
fn the_answer_streams_to_stdout_while_it_is_generated_and_ctrl_c_cancels() {
    let sim = SimProcess::start(&["--tokens-per-sec", "10"], CANARY);
    let db = Db::new();
    db.add_sim_endpoint("slow", &sim.url, &[]);
    let mut child = db
        .cmd(&["chat", "--endpoint", "slow", STORY])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let first = first_bytes(&mut stdout);
    assert!(!first.trim().is_empty());
    assert!(
        child.try_wait().unwrap().is_none(),
        "text arrived while the answer was still being generated"
    );

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = wait_output(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled"));
    let calls = db.json(&["calls", "--json"]);
    assert_eq!(calls[0]["outcome"], "cancelled");
    assert_eq!(
        calls[0]["usage"]["source"], "estimated",
        "tokens already streamed are counted"
    );
}

#[test]
fn failures_say_what_is_wrong_on_stderr_exit_nonzero_and_are_logged() {
    let sim = SimProcess::start(&[], CANARY);
    let db = Db::new();

    let bad_url = db.run(
        &[
            "endpoints",
            "add",
            "x",
            "--url",
            "localhost:8000",
            "--model",
            "m",
        ],
        "",
    );
    assert!(!bad_url.status.success());
    assert!(String::from_utf8_lossy(&bad_url.stderr).contains("base_url"));
    let bad_price = db.run(
        &[
            "endpoints",
            "add",
            "x",
            "--url",
            &sim.url,
            "--model",
            "m",
            "--price-in",
            "cheap",
        ],
        "",
    );
    assert!(!bad_price.status.success());
    assert!(String::from_utf8_lossy(&bad_price.stderr).contains("--price-in"));

    db.ok(
        &[
            "endpoints",
            "add",
            "wrong-model",
            "--url",
            &sim.url,
            "--model",
            "gpt-nope",
        ],
        "",
    );
    let dup = db.run(
        &[
            "endpoints",
            "add",
            "wrong-model",
            "--url",
            &sim.url,
            "--model",
            "m",
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let test = db.run(&["endpoints", "test", "wrong-model"], "");
    assert!(!test.status.success());
    let said = String::from_utf8_lossy(&test.stdout);
    assert!(
        said.contains("gpt-nope") && said.contains("milc-sim"),
        "names the model and what is served: {said}"
    );

    let chat = db.run(&["chat", "--endpoint", "wrong-model", "hi"], "");
    assert_eq!(chat.status.code(), Some(1));
    let err = String::from_utf8_lossy(&chat.stderr);
    assert!(
        err.contains("not_found") && err.contains("gpt-nope"),
        "{err}"
    );
    let calls = db.json(&["calls", "--json"]);
    assert_eq!(
        (
            calls[0]["outcome"].as_str(),
            calls[0]["http_status"].as_u64()
        ),
        (Some("error"), Some(404))
    );
    assert_eq!(calls[0]["error_kind"], "not_found");

    db.ok(&["endpoints", "status", "wrong-model", "retired"], "");
    let retired = db.run(&["chat", "--endpoint", "wrong-model", "hi"], "");
    assert!(String::from_utf8_lossy(&retired.stderr).contains("retired"));

    db.ok(&["endpoints", "rm", "wrong-model"], "");
    let gone = db.run(&["chat", "--endpoint", "wrong-model", "hi"], "");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no endpoint named 'wrong-model'"));
    let calls = db.json(&["calls", "--json"]);
    assert_eq!(
        calls[0]["endpoint"],
        Value::Null,
        "the log keeps calls of deleted endpoints"
    );
}

#[test]
fn the_simulator_injects_faults_the_client_survives() {
    // Every other request fails with 429; the client retries after the server's Retry-After.
    let sim = SimProcess::start(&["--fault", "rate_limit:0.5", "--seed", "3"], CANARY);
    let db = Db::new();
    db.add_sim_endpoint("flaky", &sim.url, &["--max-retries", "8"]);
    let mut retried = false;
    for i in 0..6 {
        let r: Value = serde_json::from_str(&db.ok(
            &[
                "chat",
                "--endpoint",
                "flaky",
                "--json",
                &format!("question {i}"),
            ],
            "",
        ))
        .unwrap();
        retried |= r["attempts"].as_u64().unwrap() > 1;
    }
    assert!(retried, "some calls needed a retry and still succeeded");
    let bad = db.run(&["sim", "--fault", "explode:0.5"], "");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("rate_limit"),
        "lists the valid kinds"
    );
}

#[test]
fn redact_reads_stdin_and_reports_what_it_replaced() {
    let db = Db::new();
    let text = "Ask ann@x.io (or ANN@X.IO) about IBAN DE89 3704 0044 0532 0130 00.";
    assert_eq!(
        db.ok(&["redact"], text),
        "Ask [EMAIL_1] (or [EMAIL_1]) about IBAN [IBAN_1]."
    );
    let v: Value = serde_json::from_str(&db.ok(
        &["redact", "--json", "--custom", "ticket=TCK-[0-9]+"],
        "see TCK-42, 4111 1111 1111 1111",
    ))
    .unwrap();
    assert_eq!(v["text"], "see [TICKET_1], [CARD_1]");
    assert_eq!(v["entities"][1]["kind"], "card");
    assert_eq!(
        (
            v["entities"][1]["start"].as_u64(),
            v["entities"][1]["end"].as_u64()
        ),
        (Some(12), Some(31))
    );
    let bad = db.run(&["redact", "--custom", "ticket"], "x");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NAME=REGEX"));
}

#[test]
fn the_prompt_library_works_headless() {
    let db = Db::new();
    let file = |name: &str, text: &str| db.file(name, text);
    let v1 = file(
        "v1.yaml",
        "description: Answers support tickets\nnote: first cut\nmessages:\n  - role: system\n    content: You help the {{team}} team.\n  - role: user\n    content: \"Ticket from {{customer}}: {{question}}\"\nparams:\n  temperature: 0.2\n",
    );
    let v2 = file(
        "v2.json",
        r#"{"messages": [
             {"role": "system", "content": "You help the {{team}} team.\nAnswer as JSON."},
             {"role": "user", "content": "Ticket from {{customer}}: {{question}}"}],
           "params": {"temperature": 0.7, "max_tokens": 80,
             "response_format": {"type": "json_schema", "json_schema": {"name": "ticket",
               "schema": {"type": "object", "required": ["title", "priority"],
                 "properties": {"title": {"type": "string"}, "priority": {"enum": ["low", "high"]}}}}}},
           "endpoint": "Local simulator"}"#,
    );

    let out = db.run(&["prompts", "create", "support", "--file", &v1], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("version 1") && said.contains("variables: team, customer, question"),
        "{said}"
    );
    db.ok(
        &[
            "prompts",
            "version",
            "support",
            "--file",
            &v2,
            "--note",
            "JSON answers",
        ],
        "",
    );
    let again = db.run(
        &[
            "prompts", "version", "support", "--file", &v2, "--note", "x",
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("unchanged"));

    // Bad files are refused with the file, line and column, and nothing is stored.
    let typo = file(
        "typo.yaml",
        "messages:\n  - role: user\n    content: hi\nparams:\n  temprature: 0.5\n",
    );
    let out = db.run(&["prompts", "version", "support", "--file", &typo], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("typo.yaml:5:") && err.contains("temprature"),
        "{err}"
    );
    let broken = file(
        "broken.json",
        "{\"messages\": [\n  {\"role\": \"user\",, }\n]}",
    );
    let err = String::from_utf8_lossy(
        &db.run(&["prompts", "create", "b", "--file", &broken], "")
            .stderr,
    )
    .into_owned();
    assert!(err.contains("broken.json:2:"), "{err}");
    let bad_template = file(
        "t.yaml",
        "messages:\n  - role: user\n    content: \"hi {{ name\"\n",
    );
    let err = String::from_utf8_lossy(
        &db.run(&["prompts", "create", "t", "--file", &bad_template], "")
            .stderr,
    )
    .into_owned();
    assert!(
        err.contains("messages[0].content: line 1, column 4"),
        "{err}"
    );
    let list = db.json(&["prompts", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["latest"], 2);

    // Labels move and keep their history; references resolve.
    db.ok(&["prompts", "label", "support", "1", "production"], "");
    db.ok(&["prompts", "label", "support", "2", "production"], "");
    db.ok(&["prompts", "label", "support", "1", "candidate"], "");
    assert_eq!(
        db.json(&["prompts", "show", "support:production", "--json"])["version"],
        2
    );
    assert_eq!(
        db.json(&["prompts", "show", "support:candidate", "--json"])["version"],
        1
    );
    assert_eq!(
        db.json(&["prompts", "show", "support@1", "--json"])["content"]["params"]["temperature"],
        0.2
    );
    assert_eq!(
        db.json(&["prompts", "show", "support", "--json"])["version"],
        2
    );
    let detail = db.json(&["prompts", "show", "support", "--history", "--json"]);
    let moves: Vec<(Value, Value)> = detail["label_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["label"] == "production")
        .map(|m| (m["from"].clone(), m["to"].clone()))
        .collect();
    assert_eq!(moves, [(1.into(), 2.into()), (Value::Null, 1.into())]);
    let history_text = db.ok(&["prompts", "show", "support", "--history"], "");
    assert!(
        history_text.contains("v1 → v2") && history_text.contains("JSON answers"),
        "{history_text}"
    );

    // The diff: the changed line side by side, and the changed settings.
    let diff = db.ok(&["prompts", "diff", "support", "1", "2"], "");
    assert!(
        diff.contains("+") && diff.contains("Answer as JSON."),
        "{diff}"
    );
    assert!(diff.contains("temperature      0.2 → 0.7"), "{diff}");
    let d = db.json(&["prompts", "diff", "support", "1", "2", "--json"]);
    let fields: Vec<&str> = d["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["endpoint", "max_tokens", "response_format", "temperature"]
    );

    // Rendering is strict.
    let vars = [
        "--var",
        "team=billing",
        "--var",
        "customer=Ann",
        "--var",
        "question=Where is my refund?",
    ];
    let rendered: Value =
        serde_json::from_str(&db.ok(&[&["render", "support:production"][..], &vars].concat(), ""))
            .unwrap();
    assert_eq!(
        rendered[1]["content"],
        "Ticket from Ann: Where is my refund?"
    );
    let out = db.run(&["render", "support", "--var", "team=x"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing variable 'customer'"));

    // A labelled version runs with its variables; the JSON answer is checked against its schema.
    let r = db.json(
        &[
            &["chat", "--prompt", "support:production", "--json"][..],
            &vars,
        ]
        .concat(),
    );
    assert_eq!(r["structured"]["valid"], true, "{r}");
    let answer: Value = serde_json::from_str(r["output"].as_str().unwrap()).unwrap();
    assert!(answer["title"].is_string());
    let h = db.json(&["history", "--json", "--search", "refund"]);
    assert_eq!(h[0]["prompt"]["prompt"], "support");
    assert_eq!(h[0]["prompt"]["version"], 2);
    assert_eq!(h[0]["params"]["temperature"], 0.7);

    // Redaction before sending, with bodies kept: the body holds placeholders only, and the
    // answer can be restored.
    db.ok(
        &[
            "endpoints",
            "redaction",
            "Local simulator",
            "--redact",
            "both",
            "--log-bodies",
            "--redact-custom",
            "TICKET=T-\\d{5}",
        ],
        "",
    );
    let r = db.json(&[
        "chat",
        "--json",
        "Mail ann.lee@example.com about T-12345 and ann.lee@example.com",
    ]);
    let placeholders: Vec<&str> = r["redacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["placeholder"].as_str().unwrap())
        .collect();
    assert_eq!(placeholders, ["[EMAIL_1]", "[TICKET_1]", "[EMAIL_1]"]);
    let body = db.json(&["calls", "--body", &r["call_id"].to_string()]);
    assert_eq!(
        body["request"]["messages"][0]["content"],
        "Mail [EMAIL_1] about [TICKET_1] and [EMAIL_1]"
    );
    let policy = &db.json(&["endpoints", "list", "--json"])[0]["redaction"];
    assert_eq!(policy["mode"], "both");
    assert!(!files_containing(db.dir.path(), b"ann.lee@example.com")
        .iter()
        .any(|f| f.contains("milc.db")));
}

#[test]
fn score_prints_one_line_of_reference_exact_scores_per_pair() {
    let db = Db::new();
    let input = concat!(
        r#"{"prediction": "testing", "reference": "testing one two"}"#,
        "\n\n",
        r#"{"prediction": "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", "references": ["w1 w2 w3 w4 w5"]}"#,
        "\n",
        r#"{"prediction": "The dog bit the man.", "reference": ["The dog bit the man.", "The dog had bit the man."]}"#,
        "\n",
    );
    let out = db.ok(&["score", "--metrics", "rouge1,rougeLsum,bleu"], input);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one line per pair: {out}");
    assert_eq!(lines[0]["rouge1"]["precision"], 1.0);
    assert_eq!(lines[0]["rouge1"]["fmeasure"], 0.5);
    assert_eq!(lines[1]["rougeLsum"]["recall"], 0.8);
    assert_eq!(lines[1]["rougeLsum"]["precision"], 0.4);
    // exp(mean(ln 100)), exactly as sacrebleu computes it: 100.00000000000004.
    assert!((lines[2]["bleu"].as_f64().unwrap() - 100.0).abs() < 1e-9);

    let stemmed = db.ok(
        &["score", "--metrics", "rouge1", "--stem"],
        r#"{"prediction": "running dogs", "reference": "the dog runs"}"#,
    );
    let v: Value = serde_json::from_str(stemmed.trim()).unwrap();
    assert!(
        (v["rouge1"]["recall"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12,
        "{v}"
    );

    let out = db.run(
        &["score"],
        "{\"prediction\": \"a\", \"reference\": \"a\"}\n{\"prediction\": 3}\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin line 2"), "{err}");
    let bad = db.run(&["score", "--metrics", "rouge-l"], "");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'rouge-l' is not a metric"));
}

#[test]
fn stats_reads_votes_and_prints_win_rates_and_the_leaderboard() {
    let db = Db::new();
    let votes = db.file(
        "votes.jsonl",
        "{\"a\": \"A\", \"b\": \"B\", \"winner\": \"a\"}\n\
         {\"a\": \"A\", \"b\": \"B\", \"winner\": \"a\"}\n\
         {\"a\": \"B\", \"b\": \"A\", \"winner\": \"b\"}\n\
         {\"a\": \"B\", \"b\": \"A\", \"winner\": \"a\"}\n",
    );
    let s = db.json(&["stats", "--input", &votes, "--json", "--seed", "3"]);
    assert_eq!(s["votes"], 4);
    let r = &s["ratings"];
    assert_eq!(
        (r[0]["variant"].as_str(), r[1]["variant"].as_str()),
        (Some("A"), Some("B"))
    );
    assert!(
        (r[0]["rating"].as_f64().unwrap() - 1095.424).abs() < 5e-4,
        "{r}"
    );
    assert!(
        (r[1]["rating"].as_f64().unwrap() - 904.576).abs() < 5e-4,
        "{r}"
    );
    let p = &s["pairs"][0];
    assert_eq!(
        (p["first_wins"].as_u64(), p["second_wins"].as_u64()),
        (Some(3), Some(1))
    );
    assert!((p["win_rate"].as_f64().unwrap() - 0.75).abs() < 1e-12);
    // Seeded: the same votes and seed give the same intervals.
    assert_eq!(
        db.json(&["stats", "--input", &votes, "--json", "--seed", "3"]),
        s
    );

    let bad = db.file(
        "bad.jsonl",
        "{\"a\": \"A\", \"b\": \"B\", \"winner\": \"a\"}\n{\"a\": \"A\", \"b\": \"B\"}\n",
    );
    let out = db.run(&["stats", "--input", &bad], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2:") && err.contains("winner"),
        "{err}"
    );
}

#[test]
fn datasets_edit_stores_a_new_version_and_export_writes_a_file() {
    let db = Db::new();
    let ds = db.file("d.jsonl", "{\"q\": \"a\"}\n{\"q\": \"b\"}\n");
    db.ok(&["datasets", "import", &ds, "--name", "d"], "");

    // A bad line names the item, fails, and stores nothing.
    let out = db.run(&["datasets", "edit", "d", "--set", "1={\"q\": "], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("item 1:1:"), "{err}");
    assert_eq!(
        db.json(&["datasets", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let said = db.ok(
        &[
            "datasets",
            "edit",
            "d",
            "--set",
            "0={\"q\": \"A\", \"expected\": \"x\"}",
            "--delete",
            "1",
            "--add",
            "{\"q\": \"c\"}",
        ],
        "",
    );
    assert!(said.starts_with("stored 2 items as version "), "{said}");
    let versions = db.json(&["datasets", "list", "--json"]);
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert!(
        versions[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("edit of d@"),
        "{versions}"
    );

    let path = db.dir.path().join("out.csv");
    db.ok(
        &[
            "datasets",
            "export",
            "d",
            "--format",
            "csv",
            "--out",
            path.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "q,expected\nA,x\nc,\n"
    );
}

#[test]
fn datasets_import_whole_or_not_at_all_are_versioned_by_content_and_round_trip() {
    let db = Db::new();
    let file = |name: &str, text: &str| db.file(name, text);
    let csv = file(
        "qa.csv",
        "question,team,expected_1,expected_2,meta.source\n\"Why, exactly?\",ops,Because,As designed,faq\nHow?,billing,Like this,,chat\n",
    );
    let preview = db.json(&[
        "datasets",
        "import",
        &csv,
        "--name",
        "qa",
        "--preview",
        "--json",
    ]);
    assert_eq!(preview["items"], 2);
    assert_eq!(
        preview["variables"],
        serde_json::json!(["question", "team"])
    );
    assert_eq!(
        db.json(&["datasets", "list", "--json"]),
        serde_json::json!([]),
        "a preview stores nothing"
    );

    let v1 = db.json(&["datasets", "import", &csv, "--name", "qa", "--json"]);
    assert_eq!(v1["created"], true);
    let hash = v1["version"]["hash"].as_str().unwrap().to_owned();

    // A bad line anywhere refuses the whole file, naming the line; nothing new is stored.
    let mut long = String::from("{\"question\": \"fine\", \"expected\": \"ok\"}\n");
    for i in 0..500 {
        long.push_str(&format!(
            "{{\"question\": \"q{i}\", \"expected\": \"a{i}\"}}\n"
        ));
    }
    long.push_str("{\"question\": \"broken\", \"expected\": 7}\n");
    let bad = file("bad.jsonl", &long);
    let out = db.run(&["datasets", "import", &bad, "--name", "qa"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:502") && err.contains("'expected'"),
        "{err}"
    );
    let list = db.json(&["datasets", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Export and re-import in the other shape: same content, same version.
    let jsonl = db.ok(&["datasets", "export", "qa", "--format", "jsonl"], "");
    let again = file("qa.jsonl", &jsonl);
    let v = db.json(&["datasets", "import", &again, "--name", "qa", "--json"]);
    assert_eq!(
        (v["created"].clone(), v["version"]["hash"].clone()),
        (false.into(), hash.clone().into())
    );
    let exported_csv = db.ok(
        &[
            "datasets",
            "export",
            &format!("qa@{}", &hash[..8]),
            "--format",
            "csv",
        ],
        "",
    );
    assert!(
        exported_csv.starts_with("question,team,expected_1,expected_2,metadata\n"),
        "{exported_csv}"
    );
    assert!(
        exported_csv.contains("\"Why, exactly?\",ops,Because,As designed,"),
        "{exported_csv}"
    );

    // Editing makes a new version; both stay addressable.
    let edited = file("qa2.jsonl", &jsonl.replace("Like this", "Like that"));
    let v2 = db.json(&["datasets", "import", &edited, "--name", "qa", "--json"]);
    assert_eq!(v2["created"], true);
    assert_ne!(v2["version"]["hash"], hash.as_str());
    assert!(db
        .ok(&["datasets", "export", "qa"], "")
        .contains("Like that"));
    assert!(db
        .ok(&["datasets", "export", &format!("qa@{}", &hash[..6])], "")
        .contains("Like this"));
    let err =
        String::from_utf8_lossy(&db.run(&["datasets", "export", "nope"], "").stderr).into_owned();
    assert!(err.contains("no dataset 'nope'"), "{err}");
}

/// A prompt over `{{question}}` and a dataset of `n` questions with one reference each.
fn eval_fixture(db: &Db, n: usize) {
    let prompt = db.file(
        "p.yaml",
        "messages:\n  - role: user\n    content: \"{{question}}\"\nparams:\n  max_tokens: 20\n",
    );
    db.ok(&["prompts", "create", "qa", "--file", &prompt], "");
    let data: String = (0..n)
        .map(|i| format!("{{\"question\": \"question {i} about latency. It matters for the model release.\", \"expected\": \"the latency of the model\"}}\n"))
        .collect();
    let ds = db.file("ds.jsonl", &data);
    db.ok(&["datasets", "import", &ds, "--name", "ds"], "");
}

#[test]
fn eval_keeps_within_announced_rate_limits_instead_of_collecting_429s() {
    let db = Db::new();
    eval_fixture(&db, 30);
    // 10 requests per 400 ms, announced in x-ratelimit-* headers; the 11th in a window is a 429.
    let sim = SimProcess::start(&["--rate-limit", "10/400ms"], CANARY);
    db.add_sim_endpoint("limited", &sim.url, &["--max-retries", "0"]);
    let report = db.dir.path().join("summary.json");
    let out = db.run(
        &[
            "eval",
            "--prompt",
            "qa",
            "--endpoint",
            "limited",
            "--dataset",
            "ds",
            "--scorers",
            "rouge1",
            "--concurrency",
            "4",
            "--json",
            report.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(s["items"], 30);
    assert_eq!(s["errors"], 0, "{s}");
    // Three windows' worth of requests, and not one sent over the budget the server announced.
    assert_eq!(
        s["retries"], 0,
        "requests were sent into a spent window: {s}"
    );
    let calls = db.json(&["calls", "--json", "--limit", "100"]);
    let statuses: Vec<&Value> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["http_status"])
        .collect();
    assert_eq!(statuses.len(), 30, "{calls}");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[test]
fn eval_completes_every_item_through_rate_limits_and_server_errors_and_gates_the_exit_code() {
    let db = Db::new();
    eval_fixture(&db, 200);
    let sim = SimProcess::start(
        &[
            "--fault",
            "rate_limit:0.1",
            "--fault",
            "server_error:0.05",
            "--seed",
            "11",
            "--latency-ms",
            "5",
        ],
        CANARY,
    );
    db.add_sim_endpoint("flaky", &sim.url, &["--max-retries", "1"]);
    let report = db.dir.path().join("summary.json");
    let junit = db.dir.path().join("junit.xml");
    let out = db.run(
        &[
            "eval",
            "--prompt",
            "qa",
            "--endpoint",
            "flaky",
            "--dataset",
            "ds",
            "--scorers",
            "rouge1,rougeL:0.01,bleu",
            "--concurrency",
            "16",
            "--gate",
            "rouge1>=0.0",
            "--gate",
            "pass_rate>=0.0",
            "--json",
            report.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("run 1\n"), "{stdout}");
    assert!(stdout.contains("gate rouge1>=0.0: passed"), "{stdout}");
    let s: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(s["items"], 200, "every item has a result");
    assert_eq!(s["run"]["status"], "finished");
    assert!(
        s["retries"].as_u64().unwrap() >= 15,
        "429s and 500s were retried: {}",
        s["retries"]
    );
    // A 500 twice in a row (or a 429 after the engine's re-sends ran out) is recorded as a
    // failed item, never lost: results + errors account for every item.
    let results = db.json(&["runs", "show", "1", "--results"]);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 200);
    let failed = results.iter().filter(|r| !r["error"].is_null()).count() as u64;
    assert_eq!(failed, s["errors"].as_u64().unwrap());
    assert!(failed <= 10, "{failed} items failed");
    let lo = s["scores"]["rouge1"]["low"].as_f64().unwrap();
    let hi = s["scores"]["rouge1"]["high"].as_f64().unwrap();
    let mean = s["scores"]["rouge1"]["mean"].as_f64().unwrap();
    assert!(lo <= mean && mean <= hi && mean > 0.0, "{}", s["scores"]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 200);
    let failures = xml.matches("<failure ").count();
    assert!(
        xml.contains(&format!("tests=\"200\" failures=\"{failures}\"")),
        "{}",
        &xml[..300]
    );

    // A failing gate is exit code 3; a gate on something not measured is an error.
    let out = db.run(&["eval", "--resume", "1", "--gate", "rouge1>=0.99"], "");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = db.run(&["eval", "--resume", "1", "--gate", "meteor>=0.1"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("'meteor' is not measured"));
    let runs = db.json(&["runs", "list", "--json"]);
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "resuming a finished run adds nothing"
    );

    // A second run with shorter answers, compared item by item with the first.
    let out = db.run(
        &[
            "eval",
            "--prompt",
            "qa",
            "--endpoint",
            "flaky",
            "--dataset",
            "ds",
            "--scorers",
            "rouge1,bleu",
            "--max-tokens",
            "3",
            "--scorer",
            "length=1..200",
            "--scorer",
            "regex=^[a-z0-9]+( [a-z0-9]+)*$",
            "--concurrency",
            "16",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s2 = db.json(&["runs", "show", "2", "--json"]);
    assert_eq!(s2["scores"]["length"]["mean"], 1.0, "{}", s2["scores"]);
    assert_eq!(
        s2["scores"]["regex"]["mean"], 1.0,
        "three lower-case words or numbers: {}",
        s2["scores"]
    );
    let c = db.json(&["runs", "compare", "1", "2", "--json"]);
    assert_eq!(c["primary"], "rouge1");
    let paired = c["paired"].as_u64().unwrap();
    assert_eq!(c["items"].as_array().unwrap().len() as u64, paired.min(200));
    assert!(paired >= 180, "{paired} items paired");
    assert!(paired + c["unpaired"].as_u64().unwrap() >= 200);
    // Regressions first, then improvements, then unchanged items.
    let groups: Vec<u8> = c["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let d = i["deltas"]["rouge1"].as_f64().unwrap();
            if d < 0.0 {
                0
            } else if d > 0.0 {
                1
            } else {
                2
            }
        })
        .collect();
    assert!(groups.windows(2).all(|w| w[0] <= w[1]), "{groups:?}");
    assert_eq!(
        groups.iter().filter(|g| **g == 0).count() as u64,
        c["regressions"].as_u64().unwrap()
    );
    let d = &c["deltas"]["rouge1"];
    assert!(d["low"].as_f64().unwrap() <= d["mean"].as_f64().unwrap());
    assert!(d["mean"].as_f64().unwrap() <= d["high"].as_f64().unwrap());
    assert!(
        c["deltas"].get("rougeL").is_none(),
        "only scores both runs have"
    );
    let text = db.ok(&["runs", "compare", "1", "2"], "");
    assert!(
        text.contains("MEAN B − A") && text.contains("rouge1"),
        "{text}"
    );
}

#[test]
fn an_eval_killed_mid_run_resumes_with_only_the_missing_items() {
    let db = Db::new();
    eval_fixture(&db, 40);
    let sim = SimProcess::start(&["--latency-ms", "150"], CANARY);
    db.add_sim_endpoint("slow", &sim.url, &[]);
    let mut child = db
        .cmd(&[
            "eval",
            "--prompt",
            "qa",
            "--endpoint",
            "slow",
            "--dataset",
            "ds",
            "--scorers",
            "rouge1",
            "--concurrency",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some results are committed, then kill -9: no chance to clean up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let done = db
            .json(&["runs", "list", "--json"])
            .get(0)
            .and_then(|r| r["done"].as_u64())
            .unwrap_or(0);
        if done >= 8 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = db.json(&["runs", "list", "--json"])[0]["done"]
        .as_u64()
        .unwrap();
    assert!(
        (8..40).contains(&before),
        "killed mid-run: {before} of 40 done"
    );
    let calls_before = run_calls(&db);

    let out = db.ok(&["eval", "--resume", "1"], "");
    assert!(out.contains("finished · 40/40 items"), "{out}");
    let results = db.json(&["runs", "show", "1", "--results"]);
    let mut keys: Vec<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_u64().unwrap())
        .collect();
    keys.dedup();
    assert_eq!(keys, (0..40).collect::<Vec<_>>(), "every item exactly once");
    // Only the missing items were sent again (plus at most the 4 that were in flight).
    let sent_on_resume = run_calls(&db) - calls_before;
    assert_eq!(
        sent_on_resume,
        40 - before,
        "resume sent only what had no result"
    );
}

/// Calls the run engine made, from the call log.
fn run_calls(db: &Db) -> u64 {
    db.json(&["calls", "--json", "--limit", "10000"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "run")
        .count() as u64
}

#[test]
fn an_llm_judge_scores_each_item_and_its_calls_are_logged_and_costed() {
    let db = Db::new();
    eval_fixture(&db, 10);
    let rubric = db.dir.path().join("rubric.yaml");
    std::fs::write(&rubric, milc_e2e::RUBRIC).unwrap();
    db.ok(
        &[
            "prompts",
            "create",
            "rubric",
            "--file",
            rubric.to_str().unwrap(),
        ],
        "",
    );
    let out = db.run(
        &[
            "eval",
            "--prompt",
            "qa",
            "--endpoint",
            "Local simulator",
            "--dataset",
            "ds",
            "--scorer",
            "judge=rubric@Local simulator",
            "--scorers",
            "rouge1",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = db.json(&["runs", "show", "1", "--results"]);
    for r in results.as_array().unwrap() {
        let score = r["scores"]["judge"].as_f64().unwrap_or(f64::NAN);
        assert!((1.0..=5.0).contains(&score), "{r}");
        assert!(!r["notes"]["judge"].as_str().unwrap().is_empty(), "{r}");
    }
    let s = db.json(&["runs", "show", "1", "--json"]);
    let judge = s["scores"]["judge"]["mean"].as_f64().unwrap();
    // The rubric is pinned to its version when the run is created.
    let runs = db.json(&["runs", "list", "--json"]);
    assert_eq!(
        runs[0]["spec"]["scorers"][1]["arg"], "rubric@1@Local simulator",
        "{runs}"
    );
    assert!((1.0..=5.0).contains(&judge));
    // Ten answers and ten verdicts, each logged with its cost.
    let calls = db.json(&["calls", "--json", "--limit", "100"]);
    let run_calls: Vec<&Value> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "run")
        .collect();
    assert_eq!(run_calls.len(), 20);
    assert!(
        run_calls
            .iter()
            .all(|c| pico(c["cost"]["usd"].as_str().unwrap()) > 0
                && c["cost"]["source"] == "reported"),
        "{run_calls:?}"
    );
    // Semantic similarity: embeddings of the output and the reference, one logged call each.
    let out = db.run(
        &[
            "eval",
            "--prompt",
            "qa",
            "--endpoint",
            "Local simulator",
            "--dataset",
            "ds",
            "--scorer",
            "similarity=Local simulator",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = db.json(&["runs", "show", "2", "--results"]);
    for r in results.as_array().unwrap() {
        let s = r["scores"]["similarity"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&s), "{r}");
    }
    let calls = db.json(&["calls", "--json", "--limit", "100"]);
    let run_calls = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "run")
        .count();
    assert_eq!(
        run_calls, 40,
        "10 answers + 10 verdicts, then 10 answers + 10 embeddings"
    );
    // A judge that names a missing endpoint is refused before anything runs.
    let err = db.run(
        &[
            "eval",
            "--prompt",
            "qa",
            "--endpoint",
            "Local simulator",
            "--dataset",
            "ds",
            "--scorer",
            "judge=rubric@nope",
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&err.stderr).contains("no endpoint named 'nope'"));
}

/// Two versions of `qa` over 10 items, version 1 already evaluated (run 1), and comparison `ab`
/// of the two created with seed 7.
fn comparison_fixture(db: &Db) {
    eval_fixture(db, 10);
    let v2 = db.file(
        "p2.yaml",
        "messages:\n  - role: system\n    content: Be brief.\n  - role: user\n    content: \"{{question}}\"\nparams:\n  max_tokens: 30\n",
    );
    db.ok(&["prompts", "version", "qa", "--file", &v2], "");
    db.ok(
        &[
            "eval",
            "--prompt",
            "qa@1",
            "--endpoint",
            "Local simulator",
            "--dataset",
            "ds",
            "--scorers",
            "rouge1",
        ],
        "",
    );
    db.ok(
        &[
            "compare",
            "create",
            "--name",
            "ab",
            "--dataset",
            "ds",
            "--variant",
            "qa@1@Local simulator",
            "--variant",
            "qa@2@Local simulator",
            "--scorers",
            "rouge1",
            "--criterion",
            "clarity",
            "--seed",
            "7",
        ],
        "",
    );
}

/// The outputs of a run by item.
fn outputs(db: &Db, run: i64) -> Vec<String> {
    let results = db.json(&["runs", "show", &run.to_string(), "--results"]);
    let mut out = vec![String::new(); results.as_array().unwrap().len()];
    for r in results.as_array().unwrap() {
        out[r["item"].as_u64().unwrap() as usize] = r["output"].as_str().unwrap().to_owned();
    }
    out
}

/// Rater `rater` prefers variant 2 (run `run_b`) on every task, whichever side it is shown on,
/// except a tie on the tasks in `ties`; returns how often variant 2 was on the left.
fn rate_all(db: &Db, rater: &str, run_b: i64, ties: &[u64]) -> u64 {
    let b = outputs(db, run_b);
    let mut b_left = 0;
    for index in 0.. {
        let task = db.run(
            &[
                "compare",
                "task",
                "ab",
                "--rater",
                rater,
                "--index",
                &index.to_string(),
            ],
            "",
        );
        if !task.status.success() {
            assert!(String::from_utf8_lossy(&task.stderr).contains("past the last task"));
            break;
        }
        let text = String::from_utf8(task.stdout).unwrap();
        assert!(!text.contains("qa@"), "a task names no variant: {text}");
        let t: Value = serde_json::from_str(&text).unwrap();
        let item = t["item"].as_u64().unwrap() as usize;
        let left_is_b = t["left"] == b[item].as_str();
        assert!(left_is_b || t["right"] == b[item].as_str(), "{t}");
        b_left += u64::from(left_is_b);
        let verdict = if ties.contains(&(index as u64)) {
            "tie"
        } else if left_is_b {
            "left"
        } else {
            "right"
        };
        db.ok(
            &[
                "compare",
                "vote",
                "ab",
                "--rater",
                rater,
                "--index",
                &index.to_string(),
                verdict,
            ],
            "",
        );
    }
    b_left
}

#[test]
fn a_comparison_reuses_finished_runs_and_tallies_blind_votes_with_sides_undone() {
    let db = Db::new();
    comparison_fixture(&db);
    // Nothing to rate before the variants have answered.
    let early = db.run(&["compare", "task", "ab", "--rater", "alice"], "");
    assert!(String::from_utf8_lossy(&early.stderr).contains("run it first"));

    db.ok(&["compare", "run", "ab"], "");
    let c = &db.json(&["compare", "list", "--json"])[0];
    assert_eq!(
        c["variants"][0]["run_id"], 1,
        "the finished run of version 1 is reused: {c}"
    );
    assert_eq!(c["variants"][1]["run_id"], 2);
    assert_eq!(
        db.json(&["runs", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A rater sees no result before finishing.
    let gated = db.run(&["compare", "results", "ab", "--rater", "alice"], "");
    assert!(String::from_utf8_lossy(&gated.stderr).contains("rate every pair first (0 of 10"));

    let b_left = rate_all(&db, "alice", 2, &[]);
    assert!(
        (1..10).contains(&b_left),
        "sides are randomized: B was left {b_left} times of 10"
    );
    rate_all(&db, "bob", 2, &[0]);

    let r = db.json(&["compare", "results", "ab", "--rater", "alice", "--json"]);
    let pair = &r["human"]["pairs"][0];
    assert_eq!(pair["first"], "qa@1 · Local simulator");
    assert_eq!(
        (
            pair["first_wins"].as_u64(),
            pair["second_wins"].as_u64(),
            pair["ties"].as_u64()
        ),
        (Some(0), Some(19), Some(1))
    );
    // 0.5 of 20 → Wilson interval around 0.025.
    assert!(
        (pair["win_rate"].as_f64().unwrap() - 0.025).abs() < 1e-9,
        "{pair}"
    );
    assert!(pair["high"].as_f64().unwrap() < 0.25);
    let top = &r["human"]["ratings"][0];
    assert_eq!(top["variant"], "qa@2 · Local simulator");
    assert!(top["low"].as_f64().unwrap() <= top["rating"].as_f64().unwrap());
    assert_eq!(r["human"]["agreement"]["method"], "cohen");
    assert_eq!(r["human"]["agreement"]["items"], 10);
    // Position bias: decisive votes won by the left side = times B was shown left, per rater.
    let bias = &r["position_bias"];
    assert_eq!(bias["decisive"], 19);
    assert!(bias["left_wins"].as_u64().unwrap() >= 2 * b_left - 1);
    assert!(r["variants"][0]["scores"]["rouge1"]["mean"].is_number());

    // Fine-tuning data: the preferred answers, in the target formats.
    let b = outputs(&db, 2);
    let finetune = db.ok(&["compare", "export", "ab", "--format", "finetune"], "");
    let lines: Vec<Value> = finetune
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Item 0 split between B (alice) and a tie (bob): no preference there.
    assert_eq!(lines.len(), 9);
    for l in &lines {
        let m = l["messages"].as_array().unwrap();
        assert_eq!(m[0]["role"], "system", "version 2's prompt: {l}");
        assert_eq!(m.last().unwrap()["role"], "assistant");
        assert!(b.contains(&m.last().unwrap()["content"].as_str().unwrap().to_owned()));
    }
    let dpo = db.ok(&["compare", "export", "ab", "--format", "dpo"], "");
    for l in dpo.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["prompt"][1]["role"], "user");
        assert_eq!(v["chosen"][0]["role"], "assistant");
        assert!(b.contains(&v["chosen"][0]["content"].as_str().unwrap().to_owned()));
        assert!(!b.contains(&v["rejected"][0]["content"].as_str().unwrap().to_owned()));
    }
    assert_eq!(dpo.lines().count(), 9);
    // Rubric scores per side and a comment, on alice's first pair (variant 2 shown where it was).
    let t = db.json(&["compare", "task", "ab", "--rater", "alice", "--index", "0"]);
    let b_is_left = t["left"] == b[t["item"].as_u64().unwrap() as usize].as_str();
    let (verdict, scores) = if b_is_left {
        ("left", "clarity=5,2")
    } else {
        ("right", "clarity=2,5")
    };
    db.ok(
        &[
            "compare",
            "vote",
            "ab",
            "--rater",
            "alice",
            "--index",
            "0",
            verdict,
            "--comment",
            "crisper",
            "--score",
            scores,
        ],
        "",
    );
    let bad = db.run(
        &[
            "compare", "vote", "ab", "--rater", "alice", "--index", "0", verdict, "--score",
            "tone=3,3",
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("criteria.tone: not a criterion of this comparison (clarity)"));
    let r = db.json(&["compare", "results", "ab", "--json"]);
    assert_eq!(r["variants"][0]["criteria"]["clarity"], 2.0);
    assert_eq!(r["variants"][1]["criteria"]["clarity"], 5.0);
    let out = db.dir.path().join("ratings.csv");
    db.ok(
        &[
            "compare",
            "export",
            "ab",
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    );
    let mut csv = csv::Reader::from_path(&out).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 20);
    assert_eq!(&csv.headers().unwrap()[4], "winner");
    assert!(rows
        .iter()
        .filter(|r| &r[3] != "tie")
        .all(|r| &r[4] == "qa@2 · Local simulator"));

    // A rater is a person: without --rater, the vote is recorded as whoever is acting (--as).
    db.ok(
        &[
            "--as", "carol", "compare", "vote", "ab", "--index", "0", "tie",
        ],
        "",
    );
    let r = db.json(&["compare", "results", "ab", "--json"]);
    assert!(
        r["raters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["rater"] == "carol" && p["rated"] == 1),
        "{}",
        r["raters"]
    );
}

#[test]
fn a_judge_votes_on_every_pair_in_both_orders_and_imported_votes_are_all_or_nothing() {
    let db = Db::new();
    comparison_fixture(&db);
    db.ok(&["compare", "run", "ab"], "");
    let rubric = db.file(
        "pairwise.yaml",
        r#"messages:
  - role: system
    content: Compare two answers to the question. Answer as JSON.
  - role: user
    content: "Question: {{input}}\n[A]\n{{output_a}}\n[B]\n{{output_b}}"
params:
  response_format:
    type: json_schema
    json_schema:
      name: verdict
      schema: {type: object, required: [winner, reason], properties: {winner: {enum: [A, B, tie, both_bad]}, reason: {type: string}}}
"#,
    );
    db.ok(&["prompts", "create", "pairwise", "--file", &rubric], "");
    let calls_before = db
        .json(&["calls", "--json", "--limit", "1000"])
        .as_array()
        .unwrap()
        .len();
    let run = db.json(&[
        "compare",
        "judge",
        "ab",
        "--judge",
        "pairwise@Local simulator",
        "--json",
    ]);
    assert_eq!(run["failed"], 0, "{run}");
    let j = &run["result"];
    assert_eq!(j["judge"], "judge:pairwise@1@Local simulator");
    assert_eq!(j["pairs"], 10, "each pair judged in both orders");
    assert_eq!(j["standings"]["votes"], 20);
    let inconsistent = j["inconsistent"].as_u64().unwrap();
    assert_eq!(
        j["inconsistent_items"].as_array().unwrap().len() as u64,
        inconsistent
    );
    let calls_after = db
        .json(&["calls", "--json", "--limit", "1000"])
        .as_array()
        .unwrap()
        .len();
    assert_eq!(calls_after - calls_before, 20, "every judge call is logged");
    // Judged again: nothing new is sent.
    db.ok(
        &[
            "compare",
            "judge",
            "ab",
            "--judge",
            "pairwise@Local simulator",
        ],
        "",
    );
    assert_eq!(
        db.json(&["calls", "--json", "--limit", "1000"])
            .as_array()
            .unwrap()
            .len(),
        calls_after
    );

    // Votes from elsewhere: by label or number; a bad line stores nothing and is named.
    let bad = db.file(
        "votes.jsonl",
        "{\"item\": 0, \"left\": 1, \"right\": 2, \"vote\": \"left\", \"rater\": \"carol\"}\n{\"item\": 1, \"left\": 1, \"right\": 2, \"vote\": \"sideways\", \"rater\": \"carol\"}\n",
    );
    let out = db.run(&["votes", "import", "ab", &bad], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("votes.jsonl:2: vote"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = db.json(&["compare", "results", "ab", "--json"]);
    assert_eq!(r["human"]["votes"], 0, "nothing of a bad file is stored");
    let good = db.file(
        "good.jsonl",
        "{\"item\": 0, \"left\": 1, \"right\": 2, \"vote\": \"left\", \"rater\": \"carol\"}\n{\"item\": 1, \"left\": \"qa@2 · Local simulator\", \"right\": \"qa@1 · Local simulator\", \"vote\": \"right\", \"rater\": \"carol\"}\n{\"item\": 2, \"left\": 2, \"right\": 1, \"vote\": \"both_bad\", \"rater\": \"carol\"}\n",
    );
    assert!(db
        .ok(&["votes", "import", "ab", &good], "")
        .contains("3 votes imported"));
    // Both are changes someone made, in the activity log.
    let noted: Vec<String> = db
        .json(&["activity", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["action"].as_str().unwrap(),
                a["subject"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        noted
            .iter()
            .any(|a| a.starts_with("comparison.import_votes ab: 3 votes from "))
            && noted.contains(&"comparison.judge ab by pairwise@Local simulator".to_owned()),
        "{noted:?}"
    );
    let r = db.json(&["compare", "results", "ab", "--json"]);
    let pair = &r["human"]["pairs"][0];
    assert_eq!(
        (pair["first_wins"].as_u64(), pair["both_bad"].as_u64()),
        (Some(2), Some(1)),
        "{pair}"
    );
    assert_eq!(r["judges"].as_array().unwrap().len(), 1);
    assert!(
        r["judges"][0]["agreement_with_humans"]["items"]
            .as_u64()
            .unwrap()
            >= 2
    );
    let text = db.ok(&["compare", "results", "ab"], "");
    assert!(
        text.contains("judge judge:pairwise@1@Local simulator: 10 pairs judged in both orders"),
        "{text}"
    );
}

#[test]
fn a_comparison_of_ad_hoc_inputs_shows_answers_side_by_side() {
    let db = Db::new();
    let prompt = db.file(
        "p.yaml",
        "messages:\n  - role: user\n    content: \"{{input}}\"\n",
    );
    db.ok(&["prompts", "create", "chat", "--file", &prompt], "");
    db.ok(
        &[
            "compare",
            "create",
            "--name",
            "quick",
            "--input",
            "hello there",
            "--input",
            "what is latency",
            "--variant",
            "chat@Local simulator",
            "--variant",
            "chat@Local simulator",
            "--params",
            "2={\"temperature\": 0.2}",
        ],
        "",
    );
    let same = db.run(
        &[
            "compare",
            "create",
            "--name",
            "same",
            "--input",
            "x",
            "--variant",
            "chat@Local simulator",
            "--variant",
            "chat@1@Local simulator",
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&same.stderr).contains("variants[2]: the same as variant 1"));
    db.ok(&["compare", "run", "quick"], "");
    let s = db.json(&["compare", "show", "quick", "--by-gap", "--json"]);
    assert_eq!(s["total"], 2);
    assert_eq!(s["b"], "chat@1 · Local simulator {\"temperature\":0.2}");
    let rows = s["rows"].as_array().unwrap();
    assert!(
        rows[0]["gap"].as_f64() >= rows[1]["gap"].as_f64(),
        "largest gap first"
    );
    for r in rows {
        let joined: String = r["a"]["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            joined,
            r["a"]["output"].as_str().unwrap(),
            "the diff covers the whole answer"
        );
        assert!(["hello there", "what is latency"].contains(&r["input"].as_str().unwrap()));
    }
}

#[test]
fn usage_is_reported_exported_repriced_and_budgeted_from_the_cli() {
    let db = Db::new();
    for i in 0..4 {
        db.ok(&["chat", &format!("hello {i}")], "");
    }
    let calls = db.json(&["calls", "--json"]);
    let logged: i64 = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| pico(c["cost"]["usd"].as_str().unwrap()))
        .sum();
    let r = db.json(&[
        "usage",
        "--since",
        "1d",
        "--group-by",
        "day,endpoint,source",
        "--json",
    ]);
    assert_eq!(r["totals"]["calls"], 4);
    assert_eq!(pico(r["totals"]["cost"]["usd"].as_str().unwrap()), logged);
    assert_eq!(r["totals"]["cost"]["source"], "reported");
    assert_eq!(r["rows"][0]["endpoint"], "Local simulator");
    assert_eq!(r["rows"][0]["source"], "cli");
    let bad = db.run(&["usage", "--since", "last tuesday"], "");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since 'last tuesday'"));

    // The log as BigQuery NDJSON, every line with exactly the schema's columns.
    let schema = db.dir.path().join("schema.json");
    let ndjson = db.ok(
        &[
            "usage",
            "export",
            "--since",
            "1d",
            "--schema",
            schema.to_str().unwrap(),
        ],
        "",
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&schema).unwrap()).unwrap();
    let columns: Vec<&str> = schema
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for l in &lines {
        let mut keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = columns.clone();
        keys.sort();
        want.sort();
        assert_eq!(keys, want);
        assert!(l["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(l["usage_source"], "reported");
    }
    let csv_text = db.ok(&["usage", "export", "--since", "1d", "--format", "csv"], "");
    let mut csv = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(csv.headers().unwrap().iter().collect::<Vec<_>>(), columns);
    assert_eq!(csv.records().count(), 4);

    // A corrected price from yesterday on: past calls are re-costed on request, and logged.
    db.ok(
        &[
            "prices",
            "set",
            "Local simulator",
            "--from",
            "1d",
            "--in",
            "2",
            "--out",
            "4",
        ],
        "",
    );
    let list = db.json(&["prices", "list", "Local simulator", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let cost_before = db.json(&["usage", "--json"])["totals"]["cost"].clone();
    let preview = db.json(&[
        "prices",
        "recompute",
        "--since",
        "2d",
        "--preview",
        "--json",
    ]);
    assert_eq!(preview["calls_changed"], 4);
    assert!(preview["id"].is_null(), "{preview}");
    assert_eq!(
        db.json(&["usage", "--json"])["totals"]["cost"],
        cost_before,
        "a preview writes nothing"
    );
    // A range that ends before the calls changes none of them.
    let none = db.json(&[
        "prices",
        "recompute",
        "--since",
        "2d",
        "--until",
        "1d",
        "--preview",
        "--json",
    ]);
    assert_eq!(none["calls_checked"], 0, "{none}");
    let re = db.json(&["prices", "recompute", "--since", "2d", "--json"]);
    assert_eq!(re["calls_changed"], 4);
    assert_eq!(re["after"], preview["after"], "as the preview announced");
    let repriced: i64 = lines
        .iter()
        .map(|l| {
            l["prompt_tokens"].as_i64().unwrap() * 2_000_000
                + l["completion_tokens"].as_i64().unwrap() * 4_000_000
        })
        .sum();
    assert_eq!(pico(re["after"]["usd"].as_str().unwrap()), repriced);
    let r = db.json(&["usage", "--json"]);
    assert_eq!(
        pico(r["totals"]["cost"]["usd"].as_str().unwrap()),
        repriced,
        "rollups follow"
    );

    // A budget already crossed alerts once; acknowledging keeps it listed.
    db.ok(
        &["budgets", "set", "Local simulator", "--daily", "0.000001"],
        "",
    );
    db.ok(&["chat", "one more"], "");
    let alerts = db.json(&["alerts", "--json"]);
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts[0]["kind"], "budget_daily");
    let id = alerts[0]["id"].as_i64().unwrap().to_string();
    db.ok(&["alerts", "ack", &id], "");
    assert!(db.json(&["alerts", "--json"])[0]["acked_ms"].is_number());

    // A streamed answer whose usage chunk never came is costed from an estimate, not $0, and
    // flagged as estimated in the report.
    let sim = SimProcess::start(&["--fault", "no_usage:1"], CANARY);
    db.add_sim_endpoint(
        "no-usage",
        &sim.url,
        &["--price-in", "1", "--price-out", "2"],
    );
    db.ok(
        &["chat", "--endpoint", "no-usage", "tell me about cost"],
        "",
    );
    let r = db.json(&["usage", "--group-by", "endpoint", "--json"]);
    let row = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["endpoint"] == "no-usage")
        .unwrap()
        .clone();
    assert_eq!(row["cost"]["source"], "estimated", "{row}");
    assert_eq!(row["estimated_calls"], 1);
    assert!(pico(row["cost"]["usd"].as_str().unwrap()) > 0, "{row}");
    assert_eq!(r["totals"]["cost"]["source"], "estimated");

    // Retention drops bodies, never figures.
    assert!(db.ok(&["retention"], "").contains("kept for ever"));
    assert!(db
        .ok(&["retention", "--bodies-days", "0"], "")
        .contains("6 history entries emptied"));
    assert!(db.ok(&["retention"], "").contains("kept 0 days"));
    assert_eq!(db.json(&["usage", "--json"])["totals"]["calls"], 6);
    let h = db.json(&["history", "--json"]);
    assert_eq!(h[0]["output"], "");
}

#[test]
fn calls_are_filtered_and_shown_with_what_made_them() {
    let db = Db::new();
    db.ok(&["demo", "load"], "");
    db.ok(
        &[
            "chat",
            "--endpoint",
            "Local simulator",
            "a question without a prompt version",
        ],
        "",
    );
    let all = db.json(&["calls", "--json", "--limit", "5000"]);
    let all = all.as_array().unwrap();
    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|c| f(c)).count();
    let runs = db.json(&["calls", "--source", "run", "--json", "--limit", "5000"]);
    assert_eq!(
        runs.as_array().unwrap().len(),
        count(&|c| c["source"] == "run")
    );
    assert!(runs
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["source"] == "run"));
    let errors = db.json(&["calls", "--status", "error", "--json", "--limit", "5000"]);
    assert_eq!(
        errors.as_array().unwrap().len(),
        count(&|c| c["outcome"] == "error")
    );
    let none = db.json(&[
        "calls",
        "--prompt",
        "(no prompt version)",
        "--since",
        "1h",
        "--json",
    ]);
    let none = none.as_array().unwrap();
    assert!(none.iter().all(|c| c.get("prompt").is_none()), "{none:?}");
    assert!(
        none.iter()
            .any(|c| c["endpoint"] == "Local simulator" && c["source"] == "cli"),
        "{none:?}"
    );
    let bad = db.run(&["calls", "--status", "fine"], "");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'fine' is not a status"));

    // A run's call names its run item and the comparison that run answered.
    let linked = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|c| db.json(&["calls", "--show", &c["id"].to_string()]))
        .find(|d| d["comparison"].is_string())
        .expect("a comparison's call");
    assert_eq!(linked["comparison"], "sample-production-vs-candidate");
    assert!(linked["run"]["run_id"].is_i64(), "{linked}");
    assert_eq!(
        linked["record"]["prompt"]["prompt"],
        "sample-ticket-summary"
    );
    let missing = db.run(&["calls", "--show", "999999"], "");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no call #999999"));
}

#[test]
fn a_fine_tuned_endpoint_names_its_base_model_and_comparisons_show_it() {
    let db = Db::new();
    comparison_fixture(&db);
    db.ok(
        &[
            "endpoints",
            "lineage",
            "Local simulator",
            "--base-model",
            "meta/llama-3.1-8b-instruct",
            "--tuned-on",
            "ds",
        ],
        "",
    );
    let eps = db.json(&["endpoints", "list", "--json"]);
    assert_eq!(
        eps[0]["lineage"]["base_model"],
        "meta/llama-3.1-8b-instruct"
    );
    let shown = db.ok(&["compare", "results", "ab"], "");
    assert!(
        shown.contains("Local simulator (tuned from meta/llama-3.1-8b-instruct on ds)"),
        "{shown}"
    );
    let results = db.json(&["compare", "results", "ab", "--json"]);
    assert_eq!(
        results["comparison"]["variants"][0]["lineage"]["tuned_on"], "ds",
        "{results}"
    );
    let bad = db.run(
        &[
            "endpoints",
            "lineage",
            "Local simulator",
            "--base-model",
            " ",
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lineage.base_model"));
    db.ok(&["endpoints", "lineage", "Local simulator", "--clear"], "");
    assert!(db.json(&["endpoints", "list", "--json"])[0]["lineage"].is_null());
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly_as_unix_tools_do() {
    let db = Db::new();
    db.ok(&["demo", "load"], "");
    // Thousands of calls as JSON into `head`, which stops after a few bytes.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' {} calls --json --limit 3000 | head -c 100 > /dev/null; echo \"${{PIPESTATUS[0]}}\"",
            milc_bin().display(),
            milc_e2e::db_args(&db.path())
                .iter()
                .map(|a| format!("'{}'", a.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    // Ended by SIGPIPE, as `yes | head` is: 128 + 13.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "141");
}

/// What the test collector received: the `authorization` header and the spans of each request.
type Inbox = std::sync::Arc<
    std::sync::Mutex<Vec<(String, Vec<opentelemetry_proto::tonic::trace::v1::Span>)>>,
>;

/// An OTLP/HTTP traces receiver on a free loopback port, on a runtime of its own.
fn collector() -> (tokio::runtime::Runtime, String, Inbox) {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message as _;
    async fn traces(
        axum::extract::State(inbox): axum::extract::State<Inbox>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> Vec<u8> {
        let req = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
        let auth = headers
            .get("authorization")
            .map_or(String::new(), |v| v.to_str().unwrap().to_owned());
        let spans = req
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect();
        inbox.lock().unwrap().push((auth, spans));
        ExportTraceServiceResponse::default().encode_to_vec()
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let inbox: Inbox = Default::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(inbox.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (rt, url, inbox)
}

#[test]
fn otel_set_keeps_the_header_in_the_keyring_and_a_chat_has_sent_its_span_when_it_exits() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    use prost::Message as _;
    const SECRET: &str = "Bearer e2e-collector-secret-71c2";
    let (_rt, url, inbox) = collector();
    let sim = SimProcess::start(&["--api-key-env", "SIM_KEY"], CANARY);
    let db = Db::new();
    let add = [
        "endpoints",
        "add",
        "ccluster",
        "--url",
        &sim.url,
        "--model",
        "milc-sim",
        "--token-stdin",
    ];
    db.ok(&add, &format!("{CANARY}\n"));
    let set: Value = serde_json::from_str(&db.ok(
        &[
            "otel",
            "set",
            "--endpoint",
            &url,
            "--header-stdin",
            "Authorization",
            "--json",
        ],
        &format!("{SECRET}\n"),
    ))
    .unwrap();
    assert_eq!(set["traces_url"], format!("{url}/v1/traces"));
    assert_eq!(set["headers"], serde_json::json!(["authorization"]));
    // The header is written to stdin, never to argv: what `ps` shows holds no value.
    let shown = db.ok(&["otel", "show"], "");
    assert!(
        shown.contains("authorization") && !shown.contains("e2e-collector"),
        "{shown}"
    );

    let r = db.json(&[
        "chat",
        "--endpoint",
        "ccluster",
        "--json",
        "Why log every call?",
    ]);
    // The process has exited: its span was sent before it did.
    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one request");
    let (auth, spans) = &got[0];
    assert_eq!(auth, SECRET);
    assert_eq!(spans.len(), 1);
    let attr = |k: &str| {
        spans[0]
            .attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone()?.value)
    };
    assert_eq!(spans[0].name, "chat milc-sim");
    assert_eq!(
        attr("milc.call_id"),
        Some(V::IntValue(r["call_id"].as_i64().unwrap()))
    );
    assert_eq!(attr("milc.source"), Some(V::StringValue("cli".into())));
    assert_eq!(
        attr("milc.endpoint"),
        Some(V::StringValue("ccluster".into()))
    );
    let encoded: Vec<u8> = spans.iter().flat_map(|s| s.encode_to_vec()).collect();
    assert!(!contains(&encoded, CANARY.as_bytes()), "the token left");

    let status = db.json(&["otel", "status", "--json"]);
    assert_eq!(
        status["settings"]["headers"],
        serde_json::json!(["authorization"])
    );
    db.ok(&["otel", "clear"], "");
    assert_eq!(db.json(&["otel", "show", "--json"]), Value::Null);
    assert_eq!(
        files_containing(db.dir.path(), b"e2e-collector-secret"),
        Vec::<String>::new()
    );
}

#[test]
fn retiring_an_endpoint_in_use_lists_what_breaks_and_exits_nonzero_until_forced() {
    let db = Db::new();
    for name in ["old", "new"] {
        db.add_sim_endpoint(name, "sim://embedded", &[]);
    }
    let prompt = db.file(
        "p.yaml",
        "endpoint: old\nmessages:\n  - role: user\n    content: \"{{input}}\"\n",
    );
    db.ok(&["prompts", "create", "summarize", "--file", &prompt], "");
    db.ok(&["prompts", "label", "summarize", "1", "production"], "");
    db.ok(
        &[
            "compare",
            "create",
            "--name",
            "cmp",
            "--input",
            "hi",
            "--variant",
            "summarize@old",
            "--variant",
            "summarize@new",
        ],
        "",
    );
    db.ok(&["chat", "--endpoint", "old", "hi"], "");

    // Deprecated: listed with its sunset and replacement; a chat still answers, with a warning.
    db.ok(
        &[
            "endpoints",
            "status",
            "old",
            "deprecated",
            "--sunset",
            "2027-01-31",
            "--replacement",
            "new",
        ],
        "",
    );
    let list = db.ok(&["endpoints", "list"], "");
    assert!(
        list.contains("deprecated (sunset 2027-01-31, replaced by 'new')"),
        "{list}"
    );
    let chat = db.run(&["chat", "--endpoint", "old", "hi"], "");
    assert!(chat.status.success());
    let warned = String::from_utf8_lossy(&chat.stderr);
    assert!(
        warned.contains(
            "warning: endpoint 'old' is deprecated (sunset 2027-01-31): use 'new' instead"
        ),
        "{warned}"
    );

    // What still uses it, for a script and for a person.
    let used = db.json(&["endpoints", "used-by", "old", "--json"]);
    assert_eq!(used["prompt_versions"], serde_json::json!(["summarize@1"]));
    assert_eq!(
        used["labels"],
        serde_json::json!(["summarize:production → summarize@1"])
    );
    assert_eq!(used["comparisons"].as_array().unwrap().len(), 1);
    assert_eq!(used["calls_7d"]["cli"], 2);
    let text = db.ok(&["endpoints", "used-by", "old"], "");
    assert!(
        text.contains("endpoint 'old' is still used by 3 references")
            && text.contains("prompt version: summarize@1")
            && text.contains("calls in the last 7 days: 2 (cli 2)"),
        "{text}"
    );
    let prompt = db.json(&["prompts", "used-by", "summarize:production", "--json"]);
    assert_eq!(prompt["subject"], "prompt summarize@1");
    assert_eq!(prompt["comparisons"].as_array().unwrap().len(), 2);

    // Retiring it is refused, listing what would break, with a non-zero exit; nothing changes.
    let refused = db.run(&["endpoints", "status", "old", "retired"], "");
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    for what in [
        "prompt version: summarize@1",
        "label: summarize:production → summarize@1",
        "comparison: cmp / ",
        "--force",
    ] {
        assert!(said.contains(what), "'{what}' missing from: {said}");
    }
    let eps = db.json(&["endpoints", "list", "--json"]);
    let old = eps
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "old")
        .unwrap();
    assert_eq!(old["status"], "deprecated");
    assert_eq!(old["replacement"], "new");

    // Forced: retired; a chat is refused naming the replacement, and nothing is sent.
    let forced = db.run(&["endpoints", "status", "old", "retired", "--force"], "");
    assert!(forced.status.success());
    assert!(String::from_utf8_lossy(&forced.stderr).contains("no longer work"));
    let chat = db.run(&["chat", "--endpoint", "old", "hi"], "");
    assert_eq!(chat.status.code(), Some(1));
    let err = String::from_utf8_lossy(&chat.stderr);
    assert!(
        err.contains("'old' is retired") && err.contains("use 'new' instead"),
        "{err}"
    );
    let page = db.json(&["retirement", "--json"]);
    assert_eq!(page[0]["endpoint"], "old");
    assert_eq!(page[0]["lifecycle"]["status"], "retired");
    assert_eq!(
        (page[0]["calls_7d"].as_u64(), page[0]["references"].as_u64()),
        (Some(2), Some(3))
    );
    let table = db.ok(&["retirement"], "");
    assert!(
        table.contains("2027-01-31") && table.contains("new"),
        "{table}"
    );

    // Back from retired takes --force.
    let back = db.run(&["endpoints", "status", "old", "active"], "");
    assert_eq!(back.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&back.stderr).contains("--force"));
    db.ok(&["endpoints", "status", "old", "active", "--force"], "");
    assert!(db
        .ok(&["retirement"], "")
        .contains("no endpoint is deprecated or retired"));
}
