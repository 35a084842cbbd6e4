//! `[delivery.breaker]`, checked: when an endpoint's circuit opens, and
//! for how long (SPEC 2; SPEC 4, "Circuit breaker").

use std::time::Duration;

use super::duration::positive_duration;
use super::file::BreakerFile;
use super::problems::Problems;

/// The most consecutive failures `breaker.failures` may ask for.
const MAX_FAILURES: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed attempts that open a circuit; 0: never.
    pub failures: u32,
    /// The first open period.
    pub cooldown: Duration,
    /// The longest open period, however many probes failed.
    pub max_cooldown: Duration,
}

pub fn breaker_settings(file: &BreakerFile, problems: &mut Problems<'_>) -> Option<BreakerSettings> {
    let failures = problems.check(
        "delivery.breaker.failures",
        u32::try_from(file.failures)
            .ok()
            .filter(|failures| u64::from(*failures) <= MAX_FAILURES)
            .ok_or_else(|| {
                format!(
                    "{} is out of range: must be from 0 (never) to {MAX_FAILURES}",
                    file.failures
                )
            }),
    );
    let cooldown = problems.check("delivery.breaker.cooldown", positive_duration(&file.cooldown));
    let max_cooldown = problems.check("delivery.breaker.max_cooldown", positive_duration(&file.max_cooldown));
    if let (Some(cooldown), Some(max_cooldown)) = (cooldown, max_cooldown)
        && max_cooldown < cooldown
    {
        problems.add(
            "delivery.breaker.max_cooldown",
            format!(
                "`{}` is shorter than the cooldown (`{}`)",
                file.max_cooldown, file.cooldown
            ),
        );
        return None;
    }
    Some(BreakerSettings {
        failures: failures?,
        cooldown: cooldown?,
        max_cooldown: max_cooldown?,
    })
}
