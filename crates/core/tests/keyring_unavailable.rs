//! With no reachable keyring, adding an endpoint with a token fails with an error that says what
//! to do, and nothing is half-written. Its own test binary: it points D-Bus at nowhere.

#[allow(dead_code)]
mod common;

use milc_api::EndpointSpec;
use milc_core::{Error, SecretString};

#[tokio::test]
async fn without_a_keyring_an_endpoint_with_a_token_is_not_added() {
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/milc-test-bus",
    );
    let dir = tempfile::tempdir().unwrap();
    let console = common::open(&dir.path().join("milc.db")).await.unwrap();
    let before = console.endpoints().await.unwrap();
    let spec = EndpointSpec::new(
        "remote",
        "https://integrate.api.nvidia.com/v1",
        "meta/llama-3.3-70b-instruct",
    );
    let err = console
        .add_endpoint(spec, Some(SecretString::new("canary-unavailable")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Secret(_)), "{err:?}");
    assert!(err.to_string().contains("keyring"), "{err}");
    assert_eq!(
        console.endpoints().await.unwrap(),
        before,
        "nothing half-added"
    );
}
