//! Cluster mode's series on `/metrics` (SPEC 7): whether the NATS link is
//! up, what was parked and why, what was adopted, and what waits to be
//! parked.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

/// Why a delivery was parked (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkReason {
    /// Its next attempt is more than `park_after` away.
    LongWait,
    /// Its endpoint is disabled or not in this replica's config.
    Inactive,
    /// This replica is stopping.
    Shutdown,
    /// It failed for good: kept in JetStream for a retry from any replica.
    Failed,
}

impl ParkReason {
    fn label(self) -> &'static str {
        match self {
            ParkReason::LongWait => "long_wait",
            ParkReason::Inactive => "inactive",
            ParkReason::Shutdown => "shutdown",
            ParkReason::Failed => "failed",
        }
    }
}

#[derive(Clone)]
pub struct ClusterMetrics {
    connected: IntGauge,
    parked: IntCounterVec,
    adopted: IntCounter,
    park_pending: IntGauge,
}

impl ClusterMetrics {
    pub fn register(metrics: &Metrics) -> ClusterMetrics {
        let connected =
            IntGauge::new("hookd_cluster_connected", "1 while the NATS link is up, else 0.").expect("a valid metric");
        let parked = IntCounterVec::new(
            Opts::new("hookd_parked_total", "Deliveries this replica parked in JetStream."),
            &["reason"],
        )
        .expect("a valid metric");
        let adopted =
            IntCounter::new("hookd_adopted_total", "Parked deliveries this replica adopted.").expect("a valid metric");
        let park_pending = IntGauge::new(
            "hookd_park_pending",
            "Deliveries waiting to be parked (found by the last pass; at most 10,000 are counted).",
        )
        .expect("a valid metric");
        for reason in [
            ParkReason::LongWait,
            ParkReason::Inactive,
            ParkReason::Shutdown,
            ParkReason::Failed,
        ] {
            parked.with_label_values(&[reason.label()]);
        }
        metrics.register(Box::new(connected.clone()));
        metrics.register(Box::new(parked.clone()));
        metrics.register(Box::new(adopted.clone()));
        metrics.register(Box::new(park_pending.clone()));
        ClusterMetrics {
            connected,
            parked,
            adopted,
            park_pending,
        }
    }

    pub fn set_connected(&self, connected: bool) {
        self.connected.set(i64::from(connected));
    }

    pub fn parked(&self, reason: ParkReason) {
        self.parked.with_label_values(&[reason.label()]).inc();
    }

    pub fn adopted(&self) {
        self.adopted.inc();
    }

    pub fn set_park_pending(&self, n: usize) {
        self.park_pending.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
