//! Dataset versions in the store: immutable, named by content, resolved by name or hash prefix.

#[allow(dead_code)]
mod common;

use milc_api::dataset::DatasetItem;
use milc_api::dataset::{DatasetVersion, Imported};
use milc_core::datasets::{parse_jsonl, storage};
use milc_core::Store;

async fn import(store: &Store, name: &str, items: &[DatasetItem], source: &str) -> Imported {
    let mut tx = store.write().await.unwrap();
    let imported = storage::import_dataset(&mut tx, name, items, source)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    imported
}

async fn version(store: &Store, reference: &str) -> Result<DatasetVersion, milc_core::StoreError> {
    storage::dataset_version(&mut store.read().await.unwrap(), reference)
        .await
        .map(|(_, v)| v)
}

#[tokio::test]
async fn versions_are_immutable_and_resolve_by_name_or_hash_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("milc.db")).await.unwrap();
    let items: Vec<DatasetItem> = parse_jsonl(
        "d.jsonl",
        "{\"q\": \"a\", \"expected\": \"x\"}\n{\"q\": \"b\"}\n",
    )
    .unwrap();
    let v1 = import(&store, "d", &items, "d.jsonl").await;
    assert!(v1.created);
    assert_eq!(v1.version.items, 2);
    let again = import(&store, "d", &items, "other.jsonl").await;
    assert!(!again.created);
    assert_eq!(again.version.source, "d.jsonl", "the first import is kept");

    let changed = parse_jsonl("d.jsonl", "{\"q\": \"a\", \"expected\": \"y\"}\n").unwrap();
    let v2 = import(&store, "d", &changed, "d2.jsonl").await;
    assert_eq!(version(&store, "d").await.unwrap().hash, v2.version.hash);
    let prefix = format!("d@{}", &v1.version.hash[..6]);
    assert_eq!(
        version(&store, &prefix).await.unwrap().hash,
        v1.version.hash
    );
    assert!(
        version(&store, "d@abc").await.is_err(),
        "prefixes are 6+ characters"
    );

    // Importing the first content again makes it the current version of the name.
    let back = import(&store, "d", &items, "d.jsonl").await;
    assert!(!back.created);
    assert_eq!(version(&store, "d").await.unwrap().hash, v1.version.hash);

    let e = milc_core::db::query("UPDATE dataset_items SET item_json = '{}'")
        .execute(&mut store.read().await.unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("immutable"), "{e}");
}

#[tokio::test]
async fn an_edit_stores_a_new_version_and_leaves_the_base_as_it_was() {
    use milc_api::dataset::DatasetEdit;
    use milc_core::datasets::Format;

    let dir = tempfile::tempdir().unwrap();
    let console = common::open(&dir.path().join("milc.db")).await.unwrap();
    let text = "{\"q\": \"a\", \"expected\": \"x\"}\n{\"q\": \"b\"}\n{\"q\": \"c\"}\n";
    let base = console
        .import_dataset_text("d", "d.jsonl", Format::Jsonl, text)
        .await
        .unwrap()
        .version;
    let reference = format!("d@{}", base.hash);

    // A bad line is refused with the item named, and nothing new is stored.
    let bad = DatasetEdit {
        base: reference.clone(),
        set: [(1, "{\"q\": }".to_owned())].into(),
        ..DatasetEdit::default()
    };
    let e = console.edit_dataset(&bad).await.unwrap_err().to_string();
    assert!(e.starts_with("item 1:1:"), "{e}");
    let out_of_range = DatasetEdit {
        base: reference.clone(),
        delete: [7].into(),
        ..DatasetEdit::default()
    };
    let e = console
        .edit_dataset(&out_of_range)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("item 7") && e.contains("items 0 to 2"), "{e}");
    assert_eq!(console.datasets().await.unwrap().len(), 1);

    let edit = DatasetEdit {
        base: reference.clone(),
        set: [(
            0,
            "{\"q\": \"a2\", \"expected\": [\"x\", \"y\"]}".to_owned(),
        )]
        .into(),
        delete: [1].into(),
        add: vec!["{\"vars\": {\"q\": \"d\"}, \"metadata\": {\"topic\": \"new\"}}".to_owned()],
    };
    let edited = console.edit_dataset(&edit).await.unwrap();
    assert!(edited.created);
    assert_eq!(edited.version.items, 3);
    assert_eq!(
        edited.version.source,
        format!("edit of d@{}", &base.hash[..12])
    );
    assert_eq!(console.datasets().await.unwrap().len(), 2);

    // The new version is current; both export as written, through a file.
    let new = console
        .export_dataset_file(
            "d",
            Format::Jsonl,
            dir.path().join("new.jsonl").to_str().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(new.source, format!("d@{}", &edited.version.hash[..12]));
    assert_eq!(new.records, 3);
    assert_eq!(
        std::fs::read_to_string(&new.path).unwrap(),
        "{\"vars\":{\"q\":\"a2\"},\"expected\":[\"x\",\"y\"]}\n\
         {\"vars\":{\"q\":\"c\"}}\n\
         {\"vars\":{\"q\":\"d\"},\"metadata\":{\"topic\":\"new\"}}\n"
    );
    let old = console
        .export_dataset_file(
            &reference,
            Format::Csv,
            dir.path().join("old.csv").to_str().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&old.path).unwrap(),
        "q,expected\na,x\nb,\nc,\n"
    );

    // A path that cannot be written is an error naming it, and leaves nothing behind.
    let nowhere = dir.path().join("missing-dir/x.csv");
    let e = console
        .export_dataset_file("d", Format::Csv, nowhere.to_str().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing-dir/x.csv") && e.contains("cannot write"),
        "{e}"
    );
    assert!(!dir.path().join("missing-dir").exists());
    let partials = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "partial")
        })
        .count();
    assert_eq!(partials, 0);
}
