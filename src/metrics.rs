//! Prometheus metrics, served at `GET /metrics` on the admin listener.
//!
//! Labels stay bounded: endpoint id, event type, outcome or error kind;
//! never an event id. With `telemetry.per_endpoint_metrics = false` (a
//! fleet of thousands of endpoints) no series has an `endpoint` label:
//! each is the sum over all endpoints, so the page's size does not grow
//! with the fleet. Counters and histograms are updated where things
//! happen (ingest, attempts, reloads); the gauges that describe the store
//! (pending deliveries, the oldest one) are read from it at scrape time.

use prometheus::core::{MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::clock;
use crate::config::Settings;
use crate::store::Store;
use crate::telemetry;

/// Latency buckets for attempts, in seconds: from a fast local subscriber
/// to the default 10 s timeout.
const ATTEMPT_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

pub struct Metrics {
    registry: Registry,
    /// Whether series carry an `endpoint` label.
    per_endpoint: bool,
    events_received: IntCounterVec,
    deliveries: IntCounterVec,
    attempts: IntCounterVec,
    attempt_duration: HistogramVec,
    in_flight: IntGauge,
    config_reloads: IntCounterVec,
    pending: IntGaugeVec,
    circuit_open: IntGaugeVec,
    oldest_pending: Gauge,
    synced_writes: IntCounter,
    events_written: IntCounter,
    spans_exported: IntCounter,
    spans_dropped: IntCounterVec,
    store_writes: Histogram,
}

/// Buckets of `hookd_store_write_seconds`: one synced write takes from a
/// fraction of a millisecond to, on a struggling disk, a second.
const STORE_WRITE_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(true)
    }
}

impl Metrics {
    /// Registers every series; `per_endpoint` gives them an `endpoint`
    /// label.
    pub fn new(per_endpoint: bool) -> Metrics {
        let registry = Registry::new();
        let with_endpoint = |labels: &'static [&'static str]| -> &'static [&'static str] {
            if per_endpoint { labels } else { &labels[1..] }
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry.register(Box::new(metric.clone())).expect("registered once");
            metric
        };
        let events_received = counter_vec("hookd_events_received_total", "Events stored by ingest.", &["event"]);
        let deliveries = counter_vec(
            "hookd_deliveries_total",
            "Deliveries finished, by outcome (succeeded, failed).",
            with_endpoint(&["endpoint", "outcome"]),
        );
        let attempts = counter_vec(
            "hookd_attempts_total",
            "Delivery attempts, by result (success or an error kind).",
            with_endpoint(&["endpoint", "result"]),
        );
        let config_reloads = counter_vec(
            "hookd_config_reloads_total",
            "Config reloads, by result (ok, error).",
            &["result"],
        );
        let spans_dropped = counter_vec(
            "hookd_trace_spans_dropped_total",
            "Spans that never reached the collector, by reason (queue_full, export_failed).",
            &["reason"],
        );
        let attempt_duration = HistogramVec::new(
            HistogramOpts::new(
                "hookd_attempt_duration_seconds",
                "Time from sending an attempt to its response headers.",
            )
            .buckets(ATTEMPT_BUCKETS.to_vec()),
            with_endpoint(&["endpoint"]),
        )
        .expect("a valid metric");
        registry
            .register(Box::new(attempt_duration.clone()))
            .expect("registered once");
        let in_flight =
            IntGauge::new("hookd_attempts_in_flight", "Attempts sent and not yet answered.").expect("a valid metric");
        let pending = IntGaugeVec::new(
            Opts::new(
                "hookd_deliveries_pending",
                "Deliveries waiting for an attempt or in flight.",
            ),
            with_endpoint(&["endpoint"]),
        )
        .expect("a valid metric");
        let circuit_open = IntGaugeVec::new(
            Opts::new(
                "hookd_circuit_open",
                "1 while the endpoint's circuit is open or half-open (summed over endpoints without the label).",
            ),
            with_endpoint(&["endpoint"]),
        )
        .expect("a valid metric");
        let oldest_pending = Gauge::new(
            "hookd_oldest_pending_seconds",
            "How long the longest-waiting pending delivery has been due.",
        )
        .expect("a valid metric");
        let synced_writes = IntCounter::new("hookd_store_synced_writes_total", "Synced store writes made by ingest.")
            .expect("a valid metric");
        let events_written = IntCounter::new(
            "hookd_store_events_written_total",
            "Events those writes stored; divided by the writes, the events per fsync.",
        )
        .expect("a valid metric");
        let spans_exported = IntCounter::new("hookd_trace_spans_exported_total", "Spans the collector accepted.")
            .expect("a valid metric");
        let store_writes = Histogram::with_opts(
            HistogramOpts::new(
                "hookd_store_write_seconds",
                "Time of one synced ingest write (one group commit).",
            )
            .buckets(STORE_WRITE_BUCKETS.to_vec()),
        )
        .expect("a valid metric");
        for metric in [
            Box::new(in_flight.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pending.clone()),
            Box::new(circuit_open.clone()),
            Box::new(oldest_pending.clone()),
            Box::new(synced_writes.clone()),
            Box::new(events_written.clone()),
            Box::new(spans_exported.clone()),
            Box::new(store_writes.clone()),
        ] {
            registry.register(metric).expect("registered once");
        }
        config_reloads.with_label_values(&["ok"]);
        config_reloads.with_label_values(&["error"]);
        Metrics {
            registry,
            per_endpoint,
            events_received,
            deliveries,
            attempts,
            attempt_duration,
            in_flight,
            config_reloads,
            pending,
            circuit_open,
            oldest_pending,
            synced_writes,
            events_written,
            spans_exported,
            spans_dropped,
            store_writes,
        }
    }

    /// Adds series kept elsewhere (cluster mode's) to the page.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        self.registry.register(collector).expect("registered once");
    }

    /// One synced store write took `took` (the store reports each).
    pub fn store_write(&self, took: std::time::Duration) {
        self.store_writes.observe(took.as_secs_f64());
    }

    pub fn event_received(&self, event: &str) {
        self.events_received.with_label_values(&[event]).inc();
    }

    /// An attempt was answered (or failed): `result` is `success` or an
    /// error kind.
    pub fn attempt(&self, endpoint: &str, result: &str, seconds: f64) {
        self.of_endpoint(&self.attempts, endpoint, Some(result)).inc();
        self.of_endpoint(&self.attempt_duration, endpoint, None)
            .observe(seconds);
    }

    /// A delivery finished: `outcome` is `succeeded` or `failed`.
    pub fn delivery_finished(&self, endpoint: &str, outcome: &str) {
        self.of_endpoint(&self.deliveries, endpoint, Some(outcome)).inc();
    }

    /// The series of `vec` for `endpoint` (and the value of its other
    /// label, if it has one), or the one for all endpoints.
    fn of_endpoint<T: MetricVecBuilder>(&self, vec: &MetricVec<T>, endpoint: &str, other: Option<&str>) -> T::M {
        match (self.per_endpoint, other) {
            (true, Some(other)) => vec.with_label_values(&[endpoint, other]),
            (true, None) => vec.with_label_values(&[endpoint]),
            (false, Some(other)) => vec.with_label_values(&[other]),
            (false, None) => vec.with_label_values::<&str>(&[]),
        }
    }

    /// Counts an attempt in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn config_reload(&self, ok: bool) {
        self.config_reloads
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// Reads the store's gauges and whether each endpoint's circuit is
    /// open (`circuit_open`), then renders everything as Prometheus text.
    pub fn render(
        &self,
        store: &Store,
        settings: &Settings,
        circuit_open: impl Fn(&str) -> bool,
    ) -> Result<String, crate::store::Error> {
        let now = clock::now_ms();
        let mut oldest: Option<u64> = None;
        let (mut all_pending, mut all_open) = (0usize, 0i64);
        for endpoint in settings.endpoints.iter() {
            let pending = store.pending_count(&endpoint.id);
            all_pending = all_pending.saturating_add(pending);
            let open = i64::from(circuit_open(&endpoint.id));
            all_open += open;
            if self.per_endpoint {
                self.pending
                    .with_label_values(&[&endpoint.id])
                    .set(i64::try_from(pending).unwrap_or(i64::MAX));
                self.circuit_open.with_label_values(&[&endpoint.id]).set(open);
            }
            // The earliest due time; a retry due later has not waited yet.
            // An endpoint with nothing pending has nothing due: no read.
            if pending > 0
                && let Some(&(first, _)) = store.due_between(&endpoint.id, 0, u64::MAX - 1, 1)?.first()
            {
                oldest = Some(oldest.map_or(first, |oldest| oldest.min(first)));
            }
        }
        if !self.per_endpoint {
            self.pending
                .with_label_values::<&str>(&[])
                .set(i64::try_from(all_pending).unwrap_or(i64::MAX));
            self.circuit_open.with_label_values::<&str>(&[]).set(all_open);
        }
        let waited = oldest.map_or(0, |first| now.saturating_sub(first));
        self.oldest_pending.set(waited as f64 / 1000.0);
        let writes = store.write_stats();
        catch_up(&self.synced_writes, writes.synced_writes);
        catch_up(&self.events_written, writes.events);
        let spans = telemetry::export::stats();
        catch_up(&self.spans_exported, spans.exported);
        catch_up(
            &self.spans_dropped.with_label_values(&["queue_full"]),
            spans.dropped_queue_full,
        );
        catch_up(
            &self.spans_dropped.with_label_values(&["export_failed"]),
            spans.dropped_export_failed,
        );
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        Ok(String::from_utf8(out).expect("the text format is UTF-8"))
    }
}

/// Brings a counter kept elsewhere up to `total`.
fn catch_up(counter: &IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// Decrements the in-flight gauge when an attempt ends, however it ends.
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
