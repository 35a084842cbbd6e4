//! `hookd endpoints stats ID`: an endpoint's last hour as a text chart, one
//! character a minute, from `GET /v1/endpoints/{id}/stats`.

use http::Method;
use serde_json::Value;

use super::admin_client::AdminClient;
use super::operator::{as_json, encode};

/// The chart's characters, from no attempts to the busiest minute.
const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub async fn endpoint_stats(client: &AdminClient, id: &str, json: bool) -> anyhow::Result<String> {
    let answer = client
        .expect_ok(Method::GET, &format!("/v1/endpoints/{}/stats?window=1h", encode(id)))
        .await?;
    if json {
        return Ok(as_json(&answer));
    }
    Ok(render(
        id,
        answer["minutes"].as_array().map(Vec::as_slice).unwrap_or_default(),
    ))
}

/// The attempts of one entry, of every result.
fn attempts(entry: &Value) -> u64 {
    entry["attempts"]
        .as_object()
        .map_or(0, |results| results.values().filter_map(Value::as_u64).sum())
}

fn render(id: &str, minutes: &[Value]) -> String {
    let counts: Vec<u64> = minutes.iter().map(attempts).collect();
    let busiest = counts.iter().copied().max().unwrap_or(0);
    let chart: String = counts
        .iter()
        .map(|count| match (*count, busiest) {
            (0, _) | (_, 0) => LEVELS[0],
            (count, busiest) => LEVELS[(count * 8).div_ceil(busiest).clamp(1, 8) as usize],
        })
        .collect();
    let mut by_result: Vec<(String, u64)> = Vec::new();
    for entry in minutes {
        for (result, count) in entry["attempts"].as_object().into_iter().flatten() {
            let count = count.as_u64().unwrap_or(0);
            match by_result.iter_mut().find(|(known, _)| known == result) {
                Some((_, total)) => *total += count,
                None => by_result.push((result.clone(), count)),
            }
        }
    }
    by_result.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let total: u64 = counts.iter().sum();
    let field = |name: &str| minutes.iter().filter_map(|entry| entry[name].as_u64()).sum::<u64>();
    let results: Vec<String> = by_result
        .iter()
        .map(|(result, count)| format!("{result} {count}"))
        .collect();
    let latency = minutes
        .iter()
        .rev()
        .find(|entry| !entry["latency_ms"].is_null())
        .map_or_else(
            || "no latency yet".to_owned(),
            |entry| {
                format!(
                    "latency of the last minute with requests: p50 {} ms, p99 {} ms",
                    entry["latency_ms"]["p50"], entry["latency_ms"]["p99"]
                )
            },
        );
    format!(
        "{id}, the last hour, one character a minute (busiest: {busiest} attempts):\n|{chart}|\n\
         attempts {total}{}{}; deliveries succeeded {}, failed {}\n{latency}\n",
        if results.is_empty() { "" } else { ": " },
        results.join(", "),
        field("succeeded"),
        field("failed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_character_a_minute_scaled_to_the_busiest() {
        let minute = |success: u64, failed: u64| serde_json::json!({"attempts": {"success": success, "status": failed}, "succeeded": success, "failed": 0, "latency_ms": {"p50": 12, "p99": 40}});
        let empty = serde_json::json!({"attempts": {}, "succeeded": 0, "failed": 0, "latency_ms": null});
        let minutes = [empty.clone(), minute(1, 0), minute(4, 4), empty, minute(2, 0)];
        let text = render("crm", &minutes);
        assert!(text.contains("| ▁█ ▂|"), "{text}");
        assert!(
            text.contains("attempts 11: success 7, status 4; deliveries succeeded 7, failed 0"),
            "{text}"
        );
        assert!(text.contains("p50 12 ms, p99 40 ms"), "{text}");
    }
}
