//! Editing and exporting a dataset in the real window (WebDriver under Xvfb, see scripts/test):
//! change, delete and add items across the table, see a bad line named and the edits kept,
//! save them as a new version (the base stays), and export the version to a file.

use milc_e2e::{milc_ok, workspace_bin};
use webdriver::{connect, el, paste_into, select, text_until, Driver};

mod webdriver;

#[tokio::test(flavor = "multi_thread")]
async fn a_dataset_is_edited_into_a_new_version_and_exported_from_the_window() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| milc_ok(&db, args);
    let file = home.path().join("qa.jsonl");
    std::fs::write(
        &file,
        "{\"q\": \"first\", \"expected\": \"one\"}\n{\"q\": \"second\"}\n{\"q\": \"third\"}\n",
    )
    .unwrap();
    milc(&["datasets", "import", file.to_str().unwrap(), "--name", "qa"]);

    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;
    el(&c, "#nav-datasets").await.click().await.unwrap();
    el(&c, "#datasets-table button")
        .await
        .click()
        .await
        .unwrap();
    text_until(&c, "#ds-items", |t| {
        t.to_lowercase().contains("items 1–3 of 3")
    })
    .await;

    // Opens the item editor with `button`, writes `line` there and keeps it.
    let write = |button: &'static str, line: &'static str| {
        let c = &c;
        async move {
            el(c, button).await.click().await.unwrap();
            paste_into(c, "#ds-item-text", line).await;
            el(c, "#ds-item-keep").await.click().await.unwrap();
        }
    };

    // Item 0 opens as its JSONL line; a broken edit is kept, and saving names it.
    el(&c, "#ds-edit-0").await.click().await.unwrap();
    let line = webdriver::value_of(&c, "#ds-item-text").await;
    assert_eq!(line, "{\"vars\":{\"q\":\"first\"},\"expected\":[\"one\"]}");
    write("#ds-edit-0", "{\"q\": \"first, edited\", ").await;
    el(&c, "#ds-del-1").await.click().await.unwrap();
    write("#ds-add", "{\"q\": \"fourth\", \"expected\": \"four\"}").await;
    text_until(&c, "#ds-pending", |t| {
        t == "1 changed · 1 deleted · 1 added"
    })
    .await;
    el(&c, "#ds-save").await.click().await.unwrap();
    let err = text_until(&c, "#ds-edit-error", |t| !t.is_empty()).await;
    assert!(err.contains("item 0:1:"), "{err}");
    let count = |listed: String| {
        serde_json::from_str::<serde_json::Value>(&listed)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        count(milc(&["datasets", "list", "--json"])),
        1,
        "nothing stored"
    );

    // Mend the line; the other edits are still there; save.
    write(
        "#ds-edit-0",
        "{\"q\": \"first, edited\", \"expected\": \"one\"}",
    )
    .await;
    text_until(&c, "#ds-pending", |t| {
        t == "1 changed · 1 deleted · 1 added"
    })
    .await;
    el(&c, "#ds-save").await.click().await.unwrap();
    let saved = text_until(&c, "#ds-saved", |t| !t.is_empty()).await;
    assert!(saved.starts_with("Saved 3 items as version "), "{saved}");
    // The table now shows the new version.
    let page = text_until(&c, "#ds-items", |t| t.contains("first, edited")).await;
    assert!(
        page.contains("fourth") && !page.contains("second"),
        "{page}"
    );
    assert_eq!(
        milc(&["datasets", "export", "qa"]),
        "{\"vars\":{\"q\":\"first, edited\"},\"expected\":[\"one\"]}\n\
         {\"vars\":{\"q\":\"third\"}}\n\
         {\"vars\":{\"q\":\"fourth\"},\"expected\":[\"four\"]}\n"
    );
    assert_eq!(
        count(milc(&["datasets", "list", "--json"])),
        2,
        "the base is kept"
    );

    // Export the new version as CSV to a chosen file.
    let out = home.path().join("qa-export.csv");
    select(&c, "#ds-export-format", "csv").await;
    paste_into(&c, "#ds-export-path", out.to_str().unwrap()).await;
    el(&c, "#ds-export").await.click().await.unwrap();
    let done = text_until(&c, "#ds-exported", |t| !t.is_empty()).await;
    assert_eq!(done, format!("Wrote 3 items to {}", out.display()));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "q,expected\n\"first, edited\",one\nthird,\nfourth,four\n"
    );

    // Unsaved edits belong to their version: browsing another one drops them.
    el(&c, "#ds-del-0").await.click().await.unwrap();
    text_until(&c, "#ds-pending", |t| {
        t == "0 changed · 1 deleted · 0 added"
    })
    .await;
    let listed: serde_json::Value =
        serde_json::from_str(&milc(&["datasets", "list", "--json"])).unwrap();
    let base = listed[1]["hash"].as_str().unwrap();
    el(&c, &format!("#ds-browse-{}", &base[..12]))
        .await
        .click()
        .await
        .unwrap();
    text_until(&c, "#ds-items", |t| t.contains("second")).await;
    assert!(
        c.find(fantoccini::Locator::Css("#ds-pending"))
            .await
            .is_err(),
        "the edits made on the new version are not carried to the base"
    );

    c.close().await.unwrap();
    driver.stop();
}
