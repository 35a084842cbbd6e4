//! `hookd deliveries list|show|retry` and `hookd endpoints list`: the admin
//! API as readable tables, or its JSON with `--json`.

use http::Method;
use serde_json::Value;

use super::admin_client::AdminClient;
use super::table::{cell, render};

/// Filters for `deliveries list`, as the admin API takes them.
#[derive(Debug, Default, Clone)]
pub struct ListFilters {
    pub status: Option<String>,
    pub endpoint: Option<String>,
    pub event: Option<String>,
    /// A tenant id; empty: events without a tenant.
    pub tenant: Option<String>,
    /// The deliveries of one event.
    pub event_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Filters for `endpoints list`, as the admin API takes them.
#[derive(Debug, Default, Clone)]
pub struct EndpointFilters {
    /// A tenant id, `*`, or empty for endpoints without a tenant.
    pub tenant: Option<String>,
    /// Part of the id.
    pub search: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub async fn deliveries_list(client: &AdminClient, filters: &ListFilters, json: bool) -> anyhow::Result<String> {
    let path = with_query(
        "/v1/deliveries",
        [
            ("status", filters.status.clone()),
            ("endpoint", filters.endpoint.clone()),
            ("event", filters.event.clone()),
            ("tenant", filters.tenant.clone()),
            ("event_id", filters.event_id.clone()),
            ("limit", filters.limit.map(|limit| limit.to_string())),
            ("cursor", filters.cursor.clone()),
        ],
    );
    let answer = client.expect_ok(Method::GET, &path).await?;
    if json {
        return Ok(as_json(&answer));
    }
    let rows = rows(&answer["data"], |delivery| {
        [
            "id",
            "event",
            "tenant",
            "endpoint",
            "status",
            "attempt_count",
            "next_attempt_at",
            "updated_at",
        ]
        .iter()
        .map(|key| cell(&delivery[*key]))
        .collect()
    });
    let mut out = render(
        &[
            "ID",
            "EVENT",
            "TENANT",
            "ENDPOINT",
            "STATUS",
            "ATTEMPTS",
            "NEXT ATTEMPT",
            "UPDATED",
        ],
        &rows,
    );
    out.push_str(&more(&answer));
    Ok(out)
}

/// `path?name=value&...` with the values given, encoded.
fn with_query<const N: usize>(path: &str, pairs: [(&str, Option<String>); N]) -> String {
    let query: Vec<String> = pairs
        .into_iter()
        .filter_map(|(name, value)| Some(format!("{name}={}", encode(&value?))))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// The line that says how to get the next page, if there is one.
fn more(answer: &Value) -> String {
    answer["next_cursor"]
        .as_str()
        .map(|cursor| format!("more: --cursor {cursor}\n"))
        .unwrap_or_default()
}

pub async fn deliveries_show(client: &AdminClient, id: &str, json: bool) -> anyhow::Result<String> {
    let answer = client
        .expect_ok(Method::GET, &format!("/v1/deliveries/{}", encode(id)))
        .await?;
    if json {
        return Ok(as_json(&answer));
    }
    let mut out = String::new();
    for key in [
        "id",
        "event_id",
        "event",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "updated_at",
    ] {
        out.push_str(&format!("{key:<16}{}\n", cell(&answer[key])));
    }
    out.push_str(&format!("{:<16}{}\n\n", "payload", cell(&answer["payload"])));
    let rows = rows(&answer["attempts"], |attempt| {
        let mut row: Vec<String> = ["n", "at", "status_code", "error_kind", "latency_ms"]
            .iter()
            .map(|key| cell(&attempt[*key]))
            .collect();
        row.push(one_line(&cell(&attempt["response_snippet"]), 60));
        row
    });
    out.push_str(&render(
        &["N", "AT", "STATUS", "ERROR", "LATENCY MS", "RESPONSE"],
        &rows,
    ));
    Ok(out)
}

pub async fn deliveries_retry(client: &AdminClient, id: &str, json: bool) -> anyhow::Result<String> {
    let answer = client
        .expect_ok(Method::POST, &format!("/v1/deliveries/{}/retry", encode(id)))
        .await?;
    if json {
        return Ok(as_json(&answer));
    }
    Ok(format!(
        "{} is pending again: one more attempt now\n",
        cell(&answer["id"])
    ))
}

pub async fn endpoints_list(client: &AdminClient, filters: &EndpointFilters, json: bool) -> anyhow::Result<String> {
    let path = with_query(
        "/v1/endpoints",
        [
            ("tenant", filters.tenant.clone()),
            ("q", filters.search.clone()),
            ("limit", filters.limit.map(|limit| limit.to_string())),
            ("cursor", filters.cursor.clone()),
        ],
    );
    let answer = client.expect_ok(Method::GET, &path).await?;
    if json {
        return Ok(as_json(&answer));
    }
    let rows = rows(&answer["data"], |endpoint| {
        let state = match (endpoint["enabled"].as_bool(), endpoint["paused"].as_bool()) {
            (Some(false), _) => "disabled",
            (_, Some(true)) => "paused",
            _ => "active",
        };
        let rate = endpoint["success_rate_1h"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |rate| format!("{:.0}%", rate * 100.0));
        let last = &endpoint["last_attempt"];
        let last = if last.is_null() {
            "-".to_owned()
        } else {
            format!("{} {}", cell(&last["status_code"]), cell(&last["error_kind"]))
        };
        vec![
            cell(&endpoint["id"]),
            cell(&endpoint["tenant"]),
            state.to_owned(),
            cell(&endpoint["pending"]),
            cell(&endpoint["failed"]),
            rate,
            cell(&endpoint["concurrency"]),
            last,
            cell(&endpoint["url"]),
        ]
    });
    let mut out = render(
        &[
            "ID",
            "TENANT",
            "STATE",
            "PENDING",
            "FAILED",
            "SUCCESS 1H",
            "CONCURRENCY",
            "LAST ATTEMPT",
            "URL",
        ],
        &rows,
    );
    out.push_str(&more(&answer));
    Ok(out)
}

/// What `hookd healthcheck` asks the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`: the process answers.
    Live,
    /// `/readyz`: the store takes writes and a config is loaded.
    Ready,
}

impl Probe {
    pub fn as_str(self) -> &'static str {
        match self {
            Probe::Live => "live",
            Probe::Ready => "ready",
        }
    }
}

/// `hookd healthcheck`: whether the probe's route answers 200.
pub async fn healthy(client: &AdminClient, probe: Probe) -> anyhow::Result<bool> {
    let path = match probe {
        Probe::Live => "/healthz",
        Probe::Ready => "/readyz",
    };
    Ok(client.get(path).await?.0.is_success())
}

/// The admin API's answer as it came, for `--json`.
pub(super) fn as_json(answer: &Value) -> String {
    format!("{answer:#}\n")
}

/// One table row per item of a JSON list (none if it is not a list).
fn rows(list: &Value, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(row)
        .collect()
}

/// Percent-encodes a query or path value (ids and names are mostly safe).
pub(super) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~*".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_for_urls() {
        assert_eq!(encode("payment.*"), "payment.*");
        assert_eq!(encode("a b&c"), "a%20b%26c");
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
