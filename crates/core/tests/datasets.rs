//! Dataset versions in the store: immutable, named by content, resolved by name or hash prefix.

use milc_api::dataset::DatasetItem;
use milc_core::datasets::parse_jsonl;
use milc_core::Store;

#[tokio::test]
async fn versions_are_immutable_and_resolve_by_name_or_hash_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("milc.db")).await.unwrap();
    let items: Vec<DatasetItem> = parse_jsonl(
        "d.jsonl",
        "{\"q\": \"a\", \"expected\": \"x\"}\n{\"q\": \"b\"}\n",
    )
    .unwrap();
    let v1 = store.import_dataset("d", &items, "d.jsonl").await.unwrap();
    assert!(v1.created);
    assert_eq!(v1.version.items, 2);
    let again = store
        .import_dataset("d", &items, "other.jsonl")
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.version.source, "d.jsonl", "the first import is kept");

    let changed = parse_jsonl("d.jsonl", "{\"q\": \"a\", \"expected\": \"y\"}\n").unwrap();
    let v2 = store
        .import_dataset("d", &changed, "d2.jsonl")
        .await
        .unwrap();
    assert_eq!(
        store.dataset_version("d").await.unwrap().1.hash,
        v2.version.hash
    );
    let prefix = format!("d@{}", &v1.version.hash[..6]);
    assert_eq!(
        store.dataset_version(&prefix).await.unwrap().1.hash,
        v1.version.hash
    );
    assert!(
        store.dataset_version("d@abc").await.is_err(),
        "prefixes are 6+ characters"
    );

    // Importing the first content again makes it the current version of the name.
    let back = store.import_dataset("d", &items, "d.jsonl").await.unwrap();
    assert!(!back.created);
    assert_eq!(
        store.dataset_version("d").await.unwrap().1.hash,
        v1.version.hash
    );

    let e = sqlx::query("UPDATE dataset_items SET item_json = '{}'")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("immutable"), "{e}");
}
