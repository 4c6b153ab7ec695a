//! The prompt library in the real window (WebDriver under Xvfb, see scripts/test): write a
//! template in the Playground and fill its variables, create the prompt, save version 2 with
//! changed parameters, read the side-by-side diff, move `production` and see its history, run
//! the labelled version with its variables, check a structured answer field by field, and find
//! the call again in the history, stored redacted, and reopen it.

use milc_e2e::{milc_ok, stored_containing, workspace_bin};
use serde_json::Value;
use webdriver::{connect, el, text_until, type_into, value_of, Driver};

mod webdriver;

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_is_versioned_diffed_labelled_and_run_from_the_window() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let app = workspace_bin("milc-desktop");
    let home = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &app).await;

    // A template: its variables become fields as they are typed.
    el(&c, "#nav-playground").await.click().await.unwrap();
    type_into(&c, "#pg-system", "You help the {{team}} team.").await;
    type_into(&c, "#pg-turn-0", "Ticket from {{customer}}: {{question}}").await;
    type_into(&c, "#pg-var-team", "billing").await;
    type_into(&c, "#pg-var-customer", "ann.lee@example.com").await;
    type_into(&c, "#pg-var-question", "Why was my refund late?").await;
    type_into(&c, "#pg-temperature", "0.2").await;

    // Save as a new prompt, then as version 2 with changed parameters and one changed line.
    type_into(&c, "#pg-save-name", "support").await;
    type_into(&c, "#pg-save-note", "first cut").await;
    el(&c, "#pg-save").await.click().await.unwrap();
    text_until(&c, "#pg-save-result", |t| t == "Saved support@1").await;
    text_until(&c, "#pg-origin", |t| {
        t.starts_with("support@1") && !t.contains("edited")
    })
    .await;
    // WebDriver types a new line as the Enter key (U+E007).
    type_into(
        &c,
        "#pg-system",
        "You help the {{team}} team.\u{E007}Answer in two sentences.",
    )
    .await;
    type_into(&c, "#pg-temperature", "0.7").await;
    type_into(&c, "#pg-max-tokens", "60").await;
    text_until(&c, "#pg-origin", |t| t.contains("edited")).await;
    type_into(&c, "#pg-save-note", "shorter, warmer").await;
    el(&c, "#pg-save").await.click().await.unwrap();
    text_until(&c, "#pg-save-result", |t| t == "Saved support@2").await;
    // Saving the same content again adds nothing.
    el(&c, "#pg-save").await.click().await.unwrap();
    text_until(&c, "#pg-save-result", |t| {
        t == "Unchanged: identical to support@2"
    })
    .await;

    // The Prompts page: both versions with their notes, and the diff side by side.
    el(&c, "#nav-prompts").await.click().await.unwrap();
    text_until(&c, "#prompts-list", |t| {
        t.contains("support") && t.contains("v2")
    })
    .await;
    let versions = text_until(&c, "#prompt-versions", |t| t.contains("first cut")).await;
    assert!(versions.contains("shorter, warmer"), "{versions}");
    let diff = text_until(&c, "#prompt-diff", |t| {
        t.contains("Answer in two sentences.")
    })
    .await;
    assert!(diff.contains("You help the {{team}} team."), "{diff}");
    el(&c, "#prompt-diff tr.added").await;
    let settings = text_until(&c, "#prompt-diff-settings", |t| t.contains("temperature")).await;
    assert!(
        settings.contains("0.2") && settings.contains("0.7"),
        "{settings}"
    );
    assert!(
        settings.contains("max_tokens") && settings.contains("(unset)"),
        "{settings}"
    );

    // Move `production` from v1 to v2: both moves are in its history.
    type_into(&c, "#label-name", "production").await;
    el(&c, "#label-version")
        .await
        .select_by_value("1")
        .await
        .unwrap();
    el(&c, "#label-move").await.click().await.unwrap();
    text_until(&c, "#label-history", |t| t.contains("(new) → v1")).await;
    el(&c, "#label-version")
        .await
        .select_by_value("2")
        .await
        .unwrap();
    el(&c, "#label-move").await.click().await.unwrap();
    text_until(&c, "#label-history", |t| t.contains("v1 → v2")).await;
    text_until(&c, "#version-2", |t| t.contains("production")).await;

    // Open v1 from the Prompts page: the editor holds it.
    el(&c, "#open-v1").await.click().await.unwrap();
    text_until(&c, "#pg-origin", |t| t.starts_with("support@1")).await;
    assert_eq!(value_of(&c, "#pg-temperature").await, "0.2");

    // Run the labelled version with the variables filled in.
    el(&c, "#pg-prompt")
        .await
        .select_by_value("support:production")
        .await
        .unwrap();
    text_until(&c, "#pg-origin", |t| {
        t.starts_with("support@2") && !t.contains("edited")
    })
    .await;
    assert_eq!(value_of(&c, "#pg-max-tokens").await, "60");
    assert_eq!(
        value_of(&c, "#pg-var-team").await,
        "billing",
        "typed variables are kept"
    );
    el(&c, "#pg-send").await.click().await.unwrap();
    text_until(&c, "#pg-status", |t| t == "Done").await;
    assert!(!el(&c, "#pg-output").await.text().await.unwrap().is_empty());

    // Structured output: a schema whose `pattern` the simulator ignores is named field by field.
    el(&c, "#pg-format")
        .await
        .select_by_value("json_schema")
        .await
        .unwrap();
    type_into(
        &c,
        "#pg-schema",
        r#"{"type":"object","required":["title","ref"],"properties":{"title":{"type":"string"},"ref":{"type":"string","pattern":"^[0-9]+$"}}}"#,
    )
    .await;
    el(&c, "#pg-send").await.click().await.unwrap();
    text_until(&c, "#pg-status", |t| t == "Done").await;
    let check = text_until(&c, "#pg-structured", |t| t.contains("error")).await;
    assert!(
        check.contains("/ref") && check.contains("^[0-9]+$"),
        "{check}"
    );
    let answer: Value = serde_json::from_str(&el(&c, "#pg-output").await.text().await.unwrap())
        .expect("the answer is JSON");
    assert!(answer["title"].is_string());

    // The history: search, then reopen the labelled run. Its inputs were stored redacted.
    type_into(&c, "#pg-history-search", "refund support@2").await;
    let rows = text_until(&c, "#pg-history", |t| t.contains("support@2")).await;
    assert!(rows.contains("Ticket from"), "{rows}");
    type_into(&c, "#pg-var-question", "something else").await;
    el(&c, "#pg-history tbody tr:last-child button")
        .await
        .click()
        .await
        .unwrap();
    text_until(&c, "#pg-origin", |t| {
        t.starts_with("support@2") && !t.contains("edited")
    })
    .await;
    assert_eq!(
        value_of(&c, "#pg-var-question").await,
        "Why was my refund late?"
    );
    assert_eq!(value_of(&c, "#pg-var-customer").await, "[EMAIL_1]");

    c.close().await.unwrap();
    driver.stop();

    // The same library, headless.
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| -> Value { serde_json::from_str(&milc_ok(&db, args)).unwrap() };
    let v = milc(&["prompts", "show", "support:production", "--json"]);
    assert_eq!(v["version"], 2);
    assert_eq!(v["content"]["params"]["temperature"], 0.7);
    assert_eq!(v["content"]["params"]["max_tokens"], 60);
    assert_eq!(v["content"]["endpoint"], "Local simulator");
    let h = milc(&["history", "--json"]);
    let labelled = h
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["params"]["response_format"].is_null())
        .expect("the run of the labelled version");
    assert_eq!(labelled["prompt"]["version"], 2);
    assert_eq!(labelled["variables"]["customer"], "[EMAIL_1]");
    // Redacted before logging (the default policy): the address is nowhere in the store.
    assert_eq!(
        stored_containing(&db, b"ann.lee@example.com"),
        Vec::<String>::new()
    );
    assert!(
        !stored_containing(&db, b"[EMAIL_1]").is_empty(),
        "the scan reads the store: the redacted form is there"
    );
}
