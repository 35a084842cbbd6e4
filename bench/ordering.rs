//! What ordering keys cost: events delivered per second to one fast
//! subscriber when every event carries one of [`KEYS`] ordering keys, on an
//! endpoint with `ordering = "key"` beside the same endpoint without it
//! (the same events, the same binary, one after the other).

use std::time::Duration;

use bytes::Bytes;

use crate::deliver::throughput_of;
use crate::processes::{ScratchDir, free_port, start_hookd_with};
use crate::receiver;
use crate::report::Row;

/// The ordering keys the events are spread over.
const KEYS: u64 = 1000;

/// The bench's usual event, with an ordering key drawn from its id.
fn keyed_body(id: &str) -> Bytes {
    let key = id
        .bytes()
        .fold(0u64, |hash, byte| hash.wrapping_mul(31).wrapping_add(u64::from(byte)))
        % KEYS;
    Bytes::from(format!(
        r#"{{"id":"{id}","event":"enrollment.created","ordering_key":"student_{key}","data":{{"student_id":"student_{key}","course_id":"course_rust_101","enrolled_at":"2025-03-20T10:30:00Z","price":{{"amount":49.0,"currency":"EUR"}},"source":"web","coupon":null,"cohort":"2025-spring","tags":["beginner","self-paced"]}}}}"#
    ))
}

pub async fn row(clients: usize, duration: Duration, hookd: &str) -> anyhow::Result<Row> {
    let port = free_port()?;
    let arrivals = receiver::start(port).await?;
    let mut rates = Vec::new();
    for ordering in ["key", "none"] {
        let dir = ScratchDir::new_named(&format!("ordering-{ordering}"))?;
        let endpoint = format!(
            "[[endpoints]]\nid = \"bench\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"*\"]\nsecret = \"s\"\nordering = \"{ordering}\"\n"
        );
        let running = start_hookd_with(hookd, dir.path(), &endpoint).await?;
        let url = format!("{}/v1/events", running.ingest);
        let (rate, lost, _) = throughput_of(
            &url,
            clients,
            duration,
            &format!("ord_{ordering}"),
            &arrivals,
            keyed_body,
        )
        .await?;
        anyhow::ensure!(lost == 0, "ordering = {ordering}: {lost} events never arrived");
        rates.push(rate);
    }
    Ok(Row {
        figure: format!("end to end, {KEYS} ordering keys, {clients} clients"),
        unit: "delivered/s",
        hookd: rates[0],
        baseline_name: "the same, ordering none",
        baseline: rates[1],
        detail: "every event keyed; only the endpoint's ordering differs".into(),
    })
}
