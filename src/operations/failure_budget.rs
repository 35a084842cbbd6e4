//! How many `hookd.delivery.failed` events one endpoint may raise (SPEC 4,
//! "Operational events"): at most 60 a minute; past that, the failures of
//! the minute are counted and told in one `hookd.delivery.failed_summary`
//! once the minute is over.

use std::collections::HashMap;

/// `hookd.delivery.failed` events per endpoint and minute.
pub const PER_MINUTE: u32 = 60;
const MINUTE_MS: u64 = 60_000;

/// What to do with one failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Counted toward the minute's summary instead.
    Summarize,
}

/// A minute's failures past the budget, to tell in one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub endpoint: String,
    pub tenant: Option<String>,
    pub count: u32,
    /// When the first of them failed (ms).
    pub since_ms: u64,
}

#[derive(Debug, Default)]
pub struct FailureBudget {
    endpoints: HashMap<String, Minute>,
}

/// One endpoint's current minute.
#[derive(Debug)]
struct Minute {
    started_ms: u64,
    sent: u32,
    tenant: Option<String>,
    summarized: u32,
    first_summarized_ms: u64,
}

impl FailureBudget {
    /// Notes a failed delivery of `endpoint` at `now_ms`.
    pub fn note(&mut self, endpoint: &str, tenant: Option<&str>, now_ms: u64) -> Verdict {
        let minute = self.endpoints.entry(endpoint.to_owned()).or_insert_with(|| Minute {
            started_ms: now_ms,
            sent: 0,
            tenant: None,
            summarized: 0,
            first_summarized_ms: 0,
        });
        if now_ms >= minute.started_ms + MINUTE_MS && minute.summarized == 0 {
            minute.started_ms = now_ms;
            minute.sent = 0;
        }
        minute.tenant = tenant.map(str::to_owned);
        if minute.sent < PER_MINUTE {
            minute.sent += 1;
            return Verdict::Send;
        }
        if minute.summarized == 0 {
            minute.first_summarized_ms = now_ms;
        }
        minute.summarized += 1;
        Verdict::Summarize
    }

    /// The summaries of the minutes that are over, each told once; those
    /// endpoints start a new minute.
    pub fn summaries_due(&mut self, now_ms: u64) -> Vec<Summary> {
        let mut due = Vec::new();
        self.endpoints.retain(|endpoint, minute| {
            if now_ms < minute.started_ms + MINUTE_MS {
                return true;
            }
            if minute.summarized > 0 {
                due.push(Summary {
                    endpoint: endpoint.clone(),
                    tenant: minute.tenant.clone(),
                    count: minute.summarized,
                    since_ms: minute.first_summarized_ms,
                });
            }
            // Over, and told: forgotten (an endpoint that fails again
            // starts a new minute).
            false
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_a_minute_then_one_summary_of_the_rest() {
        let mut budget = FailureBudget::default();
        let verdicts: Vec<Verdict> = (0..75).map(|n| budget.note("crm", Some("acme"), 1_000 + n)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Send).count(), 60);
        assert_eq!(verdicts[60..], [Verdict::Summarize; 15]);
        // Another endpoint has its own budget.
        assert_eq!(budget.note("billing", None, 1_100), Verdict::Send);
        assert!(budget.summaries_due(60_999).is_empty(), "the minute is not over");
        let due = budget.summaries_due(61_000);
        assert_eq!(
            due,
            [Summary {
                endpoint: "crm".into(),
                tenant: Some("acme".into()),
                count: 15,
                since_ms: 1_060,
            }]
        );
        assert!(budget.summaries_due(61_001).is_empty(), "told once");
        // A new minute, a new budget.
        assert_eq!(budget.note("crm", Some("acme"), 61_002), Verdict::Send);
    }

    #[test]
    fn a_quiet_endpoint_starts_each_minute_afresh() {
        let mut budget = FailureBudget::default();
        for n in 0..60 {
            budget.note("crm", None, n);
        }
        assert_eq!(budget.note("crm", None, 60_000), Verdict::Send);
        assert!(budget.summaries_due(200_000).is_empty());
    }
}
