//! The prompt library, redaction policies, structured output and the Playground history, through
//! `Console` on a real SQLite file and the embedded simulator.

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;

use milc_api::prompt::{
    JsonSchemaFormat, NewVersion, PromptContent, PromptPin, RedactMode, RedactionPolicy,
};
use milc_api::{CallSource, ChatRequest, Message, Params, ResponseFormat, Role};
use milc_core::{Console, Error, StoreError, SIMULATOR_ENDPOINT};
use tokio_util::sync::CancellationToken;

async fn console() -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    (dir, c)
}

fn content(system: &str, temperature: f64) -> PromptContent {
    PromptContent {
        messages: vec![
            Message::new(Role::System, system),
            Message::new(Role::User, "Ticket from {{customer}}: {{question}}"),
        ],
        params: Params {
            temperature: Some(temperature),
            max_tokens: Some(40),
            ..Params::default()
        },
        ..PromptContent::default()
    }
}

fn new_version(name: &str, c: PromptContent, note: &str) -> NewVersion {
    NewVersion {
        prompt: name.into(),
        description: Some("support answers".into()),
        content: c,
        note: note.into(),
    }
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn chat(c: &Console, req: &ChatRequest) -> Result<milc_api::ChatResult, Error> {
    c.chat(
        SIMULATOR_ENDPOINT,
        req,
        CallSource::Playground,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await
}

#[tokio::test]
async fn versions_are_numbered_immutable_and_deduplicated() {
    let (_dir, c) = console().await;
    let v1 = c
        .save_prompt(
            new_version("support", content("Be brief.", 0.2), "first"),
            true,
        )
        .await
        .unwrap();
    assert!(v1.created);
    assert_eq!(v1.version.version, 1);
    assert_eq!(v1.version.note, "first");
    assert!(!v1.version.author.is_empty());

    // Same content again: no new version, the existing one comes back.
    let again = c
        .save_prompt(
            new_version("support", content("Be brief.", 0.2), "dup"),
            false,
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.version.version, 1);
    assert_eq!(again.version.note, "first");

    // A parameter change alone is a new version.
    let v2 = c
        .save_prompt(
            new_version("support", content("Be brief.", 0.7), "warmer"),
            false,
        )
        .await
        .unwrap();
    assert_eq!((v2.created, v2.version.version), (true, 2));
    assert_ne!(v1.version.hash, v2.version.hash);

    // Creating an existing prompt, or versioning a missing one, is refused.
    let dup = c
        .save_prompt(new_version("support", content("x", 0.1), ""), true)
        .await
        .unwrap_err();
    assert!(
        matches!(dup, Error::Store(StoreError::DuplicatePrompt(_))),
        "{dup}"
    );
    let missing = c
        .save_prompt(new_version("nope", content("x", 0.1), ""), false)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, Error::Store(StoreError::NoSuchPrompt(_))),
        "{missing}"
    );

    // The database itself refuses to change or drop a stored version.
    let mut conn = c.store().read().await.unwrap();
    let update =
        milc_core::db::query("UPDATE prompt_versions SET note = 'rewritten' WHERE version = 1")
            .execute(&mut conn)
            .await
            .unwrap_err();
    assert!(update.to_string().contains("immutable"), "{update}");
    let delete = milc_core::db::query("DELETE FROM prompt_versions")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("immutable"), "{delete}");
    assert_eq!(c.resolve_prompt("support@1").await.unwrap().note, "first");
}

#[tokio::test]
async fn bad_content_is_refused_with_its_field_and_nothing_is_stored() {
    let (_dir, c) = console().await;
    let mut bad_template = content("Hello {{#if admin}}", 0.2);
    let e = c
        .save_prompt(new_version("p", bad_template.clone(), ""), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("messages[0].content: line 1, column 7"),
        "{e}"
    );

    bad_template.messages[0].content = "fine".into();
    bad_template.params.response_format = Some(ResponseFormat::JsonSchema {
        json_schema: JsonSchemaFormat {
            name: "t".into(),
            schema: serde_json::json!({"type": "objekt"}),
            strict: None,
        },
    });
    let e = c
        .save_prompt(new_version("p", bad_template.clone(), ""), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("params.response_format.json_schema.schema"),
        "{e}"
    );

    bad_template.params.response_format = None;
    bad_template.redaction = Some(RedactionPolicy {
        custom: vec![milc_api::prompt::CustomPattern {
            name: "ticket".into(),
            pattern: "T-(".into(),
        }],
        ..RedactionPolicy::default()
    });
    let e = c
        .save_prompt(new_version("p", bad_template, ""), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("redaction.custom.ticket"), "{e}");
    assert!(c.prompts().await.unwrap().is_empty(), "nothing half-stored");
}

#[tokio::test]
async fn labels_resolve_and_every_move_is_recorded() {
    let (_dir, c) = console().await;
    for (i, t) in [0.1, 0.2, 0.3].into_iter().enumerate() {
        c.save_prompt(
            new_version("s", content("Be brief.", t), &format!("v{}", i + 1)),
            i == 0,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        c.resolve_prompt("s").await.unwrap().version,
        3,
        "bare name = latest"
    );
    assert_eq!(c.resolve_prompt("s@2").await.unwrap().version, 2);
    assert!(
        c.resolve_prompt("s:production").await.is_err(),
        "no such label yet"
    );

    let first = c.label_prompt("s", 1, "production").await.unwrap().unwrap();
    assert_eq!((first.from, first.to), (None, 1));
    c.label_prompt("s", 3, "candidate").await.unwrap();
    let moved = c.label_prompt("s", 2, "production").await.unwrap().unwrap();
    assert_eq!((moved.from, moved.to), (Some(1), 2));
    assert_eq!(
        c.label_prompt("s", 2, "production").await.unwrap(),
        None,
        "no-op"
    );
    assert!(c.label_prompt("s", 9, "production").await.is_err());
    assert!(c.label_prompt("s", 1, "bad label").await.is_err());

    assert_eq!(c.resolve_prompt("s:production").await.unwrap().version, 2);
    assert_eq!(c.resolve_prompt("s:candidate").await.unwrap().version, 3);

    let d = c.prompt("s").await.unwrap();
    assert_eq!(
        d.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(d.versions[1].labels, ["production"]);
    let moves: Vec<_> = d
        .label_history
        .iter()
        .map(|m| (m.label.as_str(), m.from, m.to))
        .collect();
    assert_eq!(
        moves,
        [
            ("production", Some(1), 2),
            ("candidate", None, 3),
            ("production", None, 1)
        ]
    );
    let list = c.prompts().await.unwrap();
    assert_eq!(list[0].latest, 3);
    assert_eq!(list[0].labels.get("production"), Some(&2));
}

#[tokio::test]
async fn a_labelled_version_runs_with_its_variables_and_lands_in_the_history() {
    let (_dir, c) = console().await;
    c.save_prompt(new_version("s", content("Team {{team}}.", 0.2), ""), true)
        .await
        .unwrap();
    c.label_prompt("s", 1, "production").await.unwrap();

    let (mut req, _) = c
        .prompt_request(
            "s:production",
            vars(&[("team", "ops"), ("customer", "Ann")]),
        )
        .await
        .unwrap();
    let e = chat(&c, &req).await.unwrap_err().to_string();
    assert!(e.contains("missing variable 'question'"), "{e}");
    assert!(
        c.calls(10).await.unwrap().is_empty(),
        "nothing sent or logged"
    );

    req.variables
        .insert("question".into(), "Why is TTFT high?".into());
    req.variables.insert("unused".into(), "x".into());
    let r = chat(&c, &req).await.unwrap();
    assert_eq!(r.unused_variables, ["unused"]);
    let h = c.history("ttft", 10).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, r.history_id.unwrap());
    assert_eq!(
        h[0].prompt,
        Some(PromptPin {
            prompt: "s".into(),
            version: 1
        })
    );
    assert_eq!(
        h[0].messages[1].content,
        "Ticket from {{customer}}: {{question}}"
    );
    assert_eq!(h[0].variables["team"], "ops");
    assert_eq!(h[0].params.temperature, Some(0.2));
    assert_eq!(h[0].output, r.output);
    assert_eq!(h[0].figures.usage, Some(r.usage));
    assert!(c
        .history("ttft nothing-like-this", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.history("", 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn redaction_policies_decide_what_is_sent_and_what_is_stored() {
    let (dir, c) = console().await;
    let email = "ann.lee@example.com";
    let card = "4111 1111 1111 1111";
    let question = format!("Mail {email} about card {card}; again: {email}");
    let req = || {
        let mut r = ChatRequest::new(vec![Message::new(Role::User, "{{q}}")], Params::default());
        r.variables = vars(&[("q", &question)]);
        r
    };
    let set_policy = async |mode: RedactMode, log_bodies: bool| {
        let ep = c.endpoint(SIMULATOR_ENDPOINT).await.unwrap();
        let mut spec = ep.spec;
        spec.redaction = RedactionPolicy {
            mode,
            log_bodies,
            custom: vec![],
        };
        c.update_endpoint(ep.id, spec).await.unwrap();
    };

    // Sending: placeholders go out, stable within the request, and can be restored.
    set_policy(RedactMode::Sending, true).await;
    let r = req();
    let res = chat(&c, &r).await.unwrap();
    let kinds: Vec<_> = res
        .redacted
        .iter()
        .map(|e| e.placeholder.as_str())
        .collect();
    assert_eq!(kinds, ["[EMAIL_1]", "[CARD_1]", "[EMAIL_1]"]);
    let body = c
        .call_body(res.call_id)
        .await
        .unwrap()
        .expect("bodies kept");
    let sent = body.request["messages"][0]["content"].as_str().unwrap();
    assert_eq!(sent, "Mail [EMAIL_1] about card [CARD_1]; again: [EMAIL_1]");

    // Logging: sent as typed (the simulator's token count shows the longer text went out), but
    // the history and the bodies hold placeholders only.
    set_policy(RedactMode::Logging, true).await;
    let r = req();
    let res2 = chat(&c, &r).await.unwrap();
    assert!(res2.redacted.is_empty());
    assert!(
        res2.usage.prompt_tokens > res.usage.prompt_tokens,
        "the original went out"
    );
    let h = c.history("", 1).await.unwrap().remove(0);
    assert_eq!(
        h.variables["q"],
        "Mail [EMAIL_1] about card [CARD_1]; again: [EMAIL_1]"
    );
    assert!(h.redacted);
    let body = c.call_body(res2.call_id).await.unwrap().unwrap();
    assert!(!body.request.to_string().contains(email));

    // Off, without bodies: nothing is redacted and no body is kept.
    set_policy(RedactMode::Off, false).await;
    let r = req();
    let res3 = chat(&c, &r).await.unwrap();
    assert!(c.call_body(res3.call_id).await.unwrap().is_none());
    assert_eq!(c.history("", 1).await.unwrap()[0].variables["q"], question);

    // A prompt version's policy overrides the endpoint's (here: Off → Both).
    let mut pc = content("Be brief.", 0.2);
    pc.redaction = Some(RedactionPolicy {
        mode: RedactMode::Both,
        log_bodies: false,
        custom: vec![],
    });
    c.save_prompt(new_version("strict", pc, ""), true)
        .await
        .unwrap();
    let (req4, _) = c
        .prompt_request("strict", vars(&[("customer", email), ("question", card)]))
        .await
        .unwrap();
    let res4 = chat(&c, &req4).await.unwrap();
    assert_eq!(res4.redacted.len(), 2);
    let h = c.history("", 1).await.unwrap().remove(0);
    assert_eq!(h.variables["customer"], "[EMAIL_1]");

    // Of the four calls, only the one under policy "off" left the address anywhere in the store.
    let store = c.store();
    let like = format!("%{email}%");
    let count = async |sql: &str| -> i64 {
        milc_core::db::query_scalar(sql)
            .bind(&like)
            .fetch_one(&mut store.read().await.unwrap())
            .await
            .unwrap()
    };
    assert_eq!(
        count("SELECT count(*) FROM history WHERE entry_json LIKE ?").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM call_bodies WHERE request_json || response_text LIKE ?").await,
        0
    );
    drop(dir);
}

#[tokio::test]
async fn structured_answers_are_checked_field_by_field() {
    let (_dir, c) = console().await;
    let schema = |extra: serde_json::Value| {
        let mut s = serde_json::json!({
            "type": "object",
            "required": ["title", "priority"],
            "properties": {"title": {"type": "string"}, "priority": {"enum": ["low", "high"]}}
        });
        if let Some(props) = s["properties"].as_object_mut() {
            for (k, v) in extra.as_object().unwrap() {
                props.insert(k.clone(), v.clone());
            }
        }
        ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "ticket".into(),
                schema: s,
                strict: Some(true),
            },
        }
    };
    let ask = |format: ResponseFormat| {
        ChatRequest::new(
            vec![Message::new(Role::User, "File a ticket")],
            Params {
                response_format: Some(format),
                ..Params::default()
            },
        )
    };
    let ok = chat(&c, &ask(schema(serde_json::json!({})))).await.unwrap();
    let check = ok.structured.unwrap();
    assert!(check.valid, "{check:?} for {}", ok.output);
    let v: serde_json::Value = serde_json::from_str(&ok.output).unwrap();
    assert!(["low", "high"].contains(&v["priority"].as_str().unwrap()));

    // The simulator, like a small model, ignores `pattern`: the field is named in the errors.
    let bad = chat(
        &c,
        &ask(schema(
            serde_json::json!({"ref": {"type": "string", "pattern": "^[0-9]+$"}}),
        )),
    )
    .await
    .unwrap();
    let check = bad.structured.unwrap();
    assert!(!check.valid);
    assert_eq!(check.errors.len(), 1, "{check:?}");
    assert_eq!(check.errors[0].path, "/ref");

    let obj = chat(&c, &ask(ResponseFormat::JsonObject)).await.unwrap();
    assert!(obj.structured.unwrap().valid, "{}", obj.output);
    let plain = chat(&c, &ask(ResponseFormat::Text)).await.unwrap();
    assert_eq!(plain.structured, None);
}

#[tokio::test]
async fn the_diff_shows_changed_lines_and_parameters() {
    let (_dir, c) = console().await;
    c.save_prompt(
        new_version("d", content("Be brief.\nUse English.", 0.2), ""),
        true,
    )
    .await
    .unwrap();
    c.save_prompt(
        new_version("d", content("Be brief.\nUse French.", 0.9), ""),
        false,
    )
    .await
    .unwrap();
    let d = c.diff_prompt("d", 1, 2).await.unwrap();
    let sys = &d.messages[0];
    assert_eq!(sys.rows[1].left.as_ref().unwrap().1, "Use English.");
    assert_eq!(sys.rows[1].right.as_ref().unwrap().1, "Use French.");
    assert!(!d.messages[1].changed());
    assert_eq!(d.settings.len(), 1);
    assert_eq!(d.settings[0].field, "temperature");
    assert!(c.diff_prompt("d", 1, 5).await.is_err());
}
