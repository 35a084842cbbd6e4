//! Fleets of endpoints (SPEC sections 2 and 6): endpoints in included
//! files, one per tenant, watched like the main file (ConfigMap symlink
//! swaps included); a reload that changes one endpoint leaves the others'
//! workers, connections and attempts in flight alone; and the endpoint
//! listing comes a page at a time.

use std::path::Path;
use std::time::Duration;

use http::StatusCode;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(20);
const INCLUDE: &str = "include = [\"endpoints.d/*.toml\"]\n";

fn endpoint(id: &str, tenant: &str, url: &str) -> String {
    format!(
        "[[endpoints]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s-{id}\"\n"
    )
}

fn write_included(dir: &Path, name: &str, text: &str) {
    let included = dir.join("endpoints.d");
    std::fs::create_dir_all(&included).unwrap();
    std::fs::write(included.join(name), text).unwrap();
}

#[tokio::test]
async fn endpoints_in_included_files_receive_and_a_new_file_is_picked_up() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start_with(INCLUDE, |dir| {
        write_included(dir, "acme.toml", &endpoint("acme-crm", "acme", &receiver.url("/acme")));
        // Not matched by the glob, nor is a dot file.
        write_included(dir, "notes.txt", "not a config");
        write_included(dir, ".hidden.toml", "[broken");
    })
    .await;
    let answer = sidecar
        .http
        .post_json(
            &format!("{}/v1/events", sidecar.ingest),
            r#"{"event":"payment.completed","data":{},"tenant":"acme"}"#,
        )
        .await;
    assert_eq!(answer.json["deliveries"], 1, "{:?}", answer.json);
    assert_eq!(receiver.wait_for(1, PATIENCE).await[0].path, "/acme");

    // A customer adds an endpoint: a new file appears in the directory.
    let before = sidecar.loaded_at().await;
    write_included(
        sidecar.config_dir(),
        "globex.toml",
        &endpoint("globex-erp", "globex", &receiver.url("/globex")),
    );
    let config = sidecar.config_after(&before).await;
    assert!(config["last_reload_error"].is_null(), "{config}");
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{},"tenant":"globex"}"#)
        .await;
    let received = receiver.wait_for(2, PATIENCE).await;
    assert_eq!(received[1].path, "/globex");
}

/// Lays out `endpoints.d` as Kubernetes projects a ConfigMap: the files
/// in a timestamped directory, `..data` a symlink to it, and each file a
/// symlink through `..data`. A new `version` is swapped in as the kubelet
/// does: a new directory, a new `..data` renamed over the old one.
fn project_config_map(dir: &Path, version: u32, files: &[(&str, String)]) {
    use std::os::unix::fs::symlink;
    let included = dir.join("endpoints.d");
    let versioned = format!("..2026_12_02_00_00_0{version}");
    std::fs::create_dir_all(included.join(&versioned)).unwrap();
    for (name, text) in files {
        std::fs::write(included.join(&versioned).join(name), text).unwrap();
        let link = included.join(name);
        if link.symlink_metadata().is_err() {
            symlink(format!("..data/{name}"), link).unwrap();
        }
    }
    symlink(&versioned, included.join("..data_tmp")).unwrap();
    std::fs::rename(included.join("..data_tmp"), included.join("..data")).unwrap();
    if version > 1 {
        let previous = format!("..2026_12_02_00_00_0{}", version - 1);
        std::fs::remove_dir_all(included.join(previous)).unwrap();
    }
}

#[tokio::test]
async fn a_config_map_swap_of_an_included_file_is_picked_up() {
    let receiver = Receiver::start().await;
    let acme = |path: &str| [("acme.toml", endpoint("acme-crm", "acme", &receiver.url(path)))];
    let sidecar = Sidecar::start_with(INCLUDE, |dir| project_config_map(dir, 1, &acme("/v1"))).await;
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{},"tenant":"acme"}"#)
        .await;
    assert_eq!(receiver.wait_for(1, PATIENCE).await[0].path, "/v1");

    // The ConfigMap is edited: same file name, same size, new contents.
    let before = sidecar.loaded_at().await;
    project_config_map(sidecar.config_dir(), 2, &acme("/v2"));
    let config = sidecar.config_after(&before).await;
    assert!(config["last_reload_error"].is_null(), "{config}");
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{},"tenant":"acme"}"#)
        .await;
    assert_eq!(receiver.wait_for(2, PATIENCE).await[1].path, "/v2");
}

#[tokio::test]
async fn a_broken_included_file_is_refused_naming_that_file() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start_with(INCLUDE, |dir| {
        write_included(dir, "acme.toml", &endpoint("acme-crm", "acme", &receiver.url("/acme")));
    })
    .await;
    let cases = [
        (
            "a key other than endpoints",
            "[delivery]\ntimeout = \"5s\"\n",
            "unknown key",
        ),
        (
            "an id of another file",
            &endpoint("acme-crm", "globex", &receiver.url("/x")),
            "duplicate endpoint id `acme-crm` (also in",
        ),
        (
            "a bad tenant",
            &endpoint("globex-erp", "globex corp", &receiver.url("/x")),
            "endpoints[0].tenant",
        ),
    ];
    for (what, text, expected) in cases {
        let before = sidecar.loaded_at().await;
        write_included(sidecar.config_dir(), "globex.toml", text);
        let config = sidecar.config_after(&before).await;
        let error = config["last_reload_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {config}"));
        assert!(error.contains("globex.toml"), "{what}: {error}");
        assert!(error.contains(expected), "{what}: {error}");
        assert_eq!(config["loaded_at"], before.as_str(), "{what}: the old config stays");
        // Back to a good config before the next case.
        std::fs::remove_file(sidecar.config_dir().join("endpoints.d/globex.toml")).unwrap();
        sidecar
            .config_where(|config| config["last_reload_error"].is_null())
            .await;
    }
    // The old config kept delivering throughout.
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{},"tenant":"acme"}"#)
        .await;
    receiver.wait_for(1, PATIENCE).await;
}

#[tokio::test]
async fn a_reload_changing_one_endpoint_leaves_another_ones_attempt_and_connection_alone() {
    let slow = Receiver::start().await;
    let other = Receiver::start().await;
    // The first request takes three seconds to answer.
    slow.script([Reply::ok().after(Duration::from_secs(3))]);
    let config = |other_path: &str| {
        let mut config = endpoint("slow", "acme", &slow.url("/slow"));
        for n in 0..50 {
            config.push_str(&endpoint(&format!("other-{n}"), "globex", &other.url(other_path)));
        }
        config
    };
    let sidecar = Sidecar::start(&config("/v1")).await;
    let before = sidecar.loaded_at().await;
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{},"id":"evt_slow","tenant":"acme"}"#)
        .await;
    slow.wait_for(1, PATIENCE).await;
    // While that attempt is in flight, the operator changes the other
    // endpoints' URL.
    sidecar.rewrite_config(&config("/v2"));
    let reloaded = sidecar.config_after(&before).await;
    assert!(reloaded["last_reload_error"].is_null(), "{reloaded}");
    let delivery = sidecar.finished("evt_slow.slow", PATIENCE).await;
    assert_eq!(delivery.status, hookd::store::DeliveryStatus::Succeeded);
    assert_eq!(delivery.attempt_count, 1);
    assert_eq!(slow.received().len(), 1, "the attempt in flight was not repeated");

    // The changed endpoints use their new URL...
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{},"tenant":"globex"}"#)
        .await;
    let received = other.wait_for(50, PATIENCE).await;
    assert!(received.iter().all(|request| request.path == "/v2"));
    // ...and the unchanged one kept its worker and its connection: the
    // next request comes on the connection the first one used.
    sidecar
        .post_event(r#"{"event":"payment.completed","data":{},"tenant":"acme"}"#)
        .await;
    let received = slow.wait_for(2, PATIENCE).await;
    assert_eq!(
        received[1].peer, received[0].peer,
        "the connection was kept across the reload"
    );
}

#[tokio::test]
async fn the_endpoint_listing_comes_a_page_at_a_time() {
    let receiver = Receiver::start().await;
    let sidecar = Sidecar::start_with(INCLUDE, |dir| {
        for tenant in 0..125 {
            let text: String = (0..2)
                .map(|n| {
                    endpoint(
                        &format!("t{tenant:03}-{n}"),
                        &format!("tenant-{tenant}"),
                        &receiver.url("/"),
                    )
                })
                .collect();
            write_included(dir, &format!("tenant-{tenant:03}.toml"), &text);
        }
    })
    .await;
    let page = |query: String| {
        let http = sidecar.http.clone();
        let url = format!("{}/v1/endpoints{query}", sidecar.admin);
        async move {
            let answer = http.get(&url).await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json);
            let ids: Vec<String> = answer.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|endpoint| endpoint["id"].as_str().unwrap().to_owned())
                .collect();
            (ids, answer.json["next_cursor"].as_str().map(str::to_owned))
        }
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("?limit=100&cursor={cursor}"),
            None => "?limit=100".to_owned(),
        };
        let (ids, next) = page(query).await;
        pages += 1;
        seen.extend(ids);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "sorted by id, each once");

    let (default_page, next) = page(String::new()).await;
    assert_eq!(default_page.len(), 100);
    assert_eq!(next.as_deref(), Some(default_page[99].as_str()));
    let (found, next) = page("?q=t042".to_owned()).await;
    assert_eq!(found, ["t042-0", "t042-1"]);
    assert_eq!(next, None);
    let (found, _) = page("?tenant=tenant-7".to_owned()).await;
    assert_eq!(found, ["t007-0", "t007-1"]);
    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?color=red"] {
        let answer = sidecar.http.get(&format!("{}/v1/endpoints{bad}", sidecar.admin)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
