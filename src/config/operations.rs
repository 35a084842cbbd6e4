//! `[operations]`, checked: where hookd's own events go, and when a
//! backlog is worth one (SPEC 2; SPEC 4, "Operational events").

use std::time::Duration;

use super::duration::positive_duration;
use super::file::OperationsFile;
use super::problems::Problems;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsSettings {
    /// The endpoint that gets hookd's own `hookd.*` events; none: no
    /// operational events.
    pub alert_endpoint: Option<String>,
    /// An endpoint whose oldest due delivery has waited longer raises
    /// `hookd.endpoint.backlog`.
    pub backlog_alert: Duration,
}

/// Checks `[operations]`; `endpoint_ids` are every endpoint's, for
/// `alert_endpoint`.
pub fn operations_settings<'a>(
    file: &OperationsFile,
    mut endpoint_ids: impl Iterator<Item = &'a str>,
    problems: &mut Problems<'_>,
) -> Option<OperationsSettings> {
    let backlog_alert = problems.check("operations.backlog_alert", positive_duration(&file.backlog_alert));
    if let Some(id) = &file.alert_endpoint
        && !endpoint_ids.any(|endpoint| endpoint == id)
    {
        problems.add("operations.alert_endpoint", format!("no endpoint has the id `{id}`"));
        return None;
    }
    Some(OperationsSettings {
        alert_endpoint: file.alert_endpoint.clone(),
        backlog_alert: backlog_alert?,
    })
}
