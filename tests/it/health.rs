//! `/healthz` and `/readyz` on the admin listener.

use http::StatusCode;

use crate::support::sidecar::Sidecar;

#[tokio::test]
async fn ready_while_the_store_is_open() {
    let mut sidecar = Sidecar::start("").await;
    assert_eq!(
        sidecar.http.get(&format!("{}/healthz", sidecar.admin)).await.status,
        StatusCode::OK
    );
    let ready = sidecar.http.get(&format!("{}/readyz", sidecar.admin)).await;
    assert_eq!(ready.status, StatusCode::OK);

    sidecar.store.close();
    let ready = sidecar.http.get(&format!("{}/readyz", sidecar.admin)).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        sidecar.http.get(&format!("{}/healthz", sidecar.admin)).await.status,
        StatusCode::OK
    );
    let unknown = sidecar.http.get(&format!("{}/nope", sidecar.admin)).await;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    sidecar.shutdown().await;
}
