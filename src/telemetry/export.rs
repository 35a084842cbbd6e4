//! Sends finished spans to the collector without ever holding up delivery.
//!
//! A span that ends goes into a bounded queue with a non-blocking send;
//! when the queue is full the span is dropped and counted. One background
//! thread, with a small runtime of its own, takes the spans out in batches
//! and exports them over OTLP; a batch that fails or takes longer than
//! [`EXPORT_TIMEOUT`] is dropped and counted too. So a collector that is
//! down or slow costs at most the queue's memory, and `/metrics` shows what
//! was lost (`hookd_trace_spans_dropped_total`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::mpsc;

/// Spans waiting for export; beyond this they are dropped.
pub const QUEUE_CAPACITY: usize = 4096;
/// Spans per export request.
const MAX_BATCH: usize = 512;
/// How long a span may wait for its batch to fill.
const BATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long one export request may take before its spans are dropped.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static EXPORTED: AtomicU64 = AtomicU64::new(0);
static DROPPED_QUEUE_FULL: AtomicU64 = AtomicU64::new(0);
static DROPPED_EXPORT_FAILED: AtomicU64 = AtomicU64::new(0);

/// What the exporter did since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub exported: u64,
    /// Dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Dropped because the collector refused them, failed or was too slow.
    pub dropped_export_failed: u64,
}

pub fn stats() -> ExportStats {
    ExportStats {
        exported: EXPORTED.load(Ordering::Relaxed),
        dropped_queue_full: DROPPED_QUEUE_FULL.load(Ordering::Relaxed),
        dropped_export_failed: DROPPED_EXPORT_FAILED.load(Ordering::Relaxed),
    }
}

/// Asks the export thread to send what it holds now.
enum Command {
    Flush(std::sync::mpsc::SyncSender<()>),
    Shutdown(std::sync::mpsc::SyncSender<()>),
}

/// The span processor: queues finished spans for the export thread.
#[derive(Debug)]
pub struct QueuedExport {
    spans: mpsc::Sender<SpanData>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl QueuedExport {
    /// Starts the export thread around `exporter`.
    pub fn start<E: SpanExporter + 'static>(exporter: E) -> std::io::Result<QueuedExport> {
        let (spans, queued) = mpsc::channel(QUEUE_CAPACITY);
        let (commands, received) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new()
            .name("hookd-trace-export".into())
            .spawn(move || runtime.block_on(export_until_shutdown(exporter, queued, received)))?;
        Ok(QueuedExport {
            spans,
            commands,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Sends `command` and waits up to `timeout` for the thread's answer.
    fn ask(
        &self,
        command: impl FnOnce(std::sync::mpsc::SyncSender<()>) -> Command,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        self.commands
            .send(command(answer))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        answered
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for QueuedExport {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.spans.try_send(span).is_err() {
            DROPPED_QUEUE_FULL.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Command::Flush, EXPORT_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.ask(Command::Shutdown, timeout);
        if result.is_ok()
            && let Some(thread) = self.thread.lock().expect("not poisoned").take()
        {
            let _ = thread.join();
        }
        result
    }

    fn set_resource(&mut self, _resource: &Resource) {
        // The exporter got the resource before it was moved to the thread.
    }
}

/// The export thread: batches spans until a batch is full or
/// [`BATCH_INTERVAL`] passes, and exports them one batch at a time.
async fn export_until_shutdown<E: SpanExporter>(
    exporter: E,
    mut queued: mpsc::Receiver<SpanData>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut health = CollectorHealth::default();
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let room = MAX_BATCH - batch.len();
        tokio::select! {
            received = queued.recv_many(&mut batch, room) => {
                if received == 0 {
                    // Every sender is gone: the provider was dropped.
                    export(&exporter, std::mem::take(&mut batch), &mut health).await;
                    return;
                }
                if batch.len() < MAX_BATCH {
                    continue;
                }
            }
            _ = tick.tick() => {}
            Some(command) = commands.recv() => {
                // Everything queued before the command goes out first.
                while let Ok(span) = queued.try_recv() {
                    batch.push(span);
                    if batch.len() == MAX_BATCH {
                        export(&exporter, std::mem::take(&mut batch), &mut health).await;
                    }
                }
                export(&exporter, std::mem::take(&mut batch), &mut health).await;
                match command {
                    Command::Flush(answer) => {
                        let _ = answer.send(());
                    }
                    Command::Shutdown(answer) => {
                        let _ = exporter.shutdown();
                        let _ = answer.send(());
                        return;
                    }
                }
                continue;
            }
        }
        export(&exporter, std::mem::take(&mut batch), &mut health).await;
    }
}

async fn export<E: SpanExporter>(exporter: &E, batch: Vec<SpanData>, health: &mut CollectorHealth) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len() as u64;
    let error = match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!("no answer within {EXPORT_TIMEOUT:?}")),
    };
    match error {
        None => {
            EXPORTED.fetch_add(count, Ordering::Relaxed);
            health.succeeded();
        }
        Some(error) => {
            DROPPED_EXPORT_FAILED.fetch_add(count, Ordering::Relaxed);
            health.failed(&error, count);
        }
    }
}

/// Logs the collector going down and coming back, not every failed batch.
#[derive(Default)]
struct CollectorHealth {
    failing: bool,
}

impl CollectorHealth {
    fn failed(&mut self, error: &str, spans: u64) {
        if !self.failing {
            tracing::warn!(
                error,
                spans,
                "cannot export spans to the collector; dropping them until it answers \
                 (hookd_trace_spans_dropped_total counts them)"
            );
        }
        self.failing = true;
    }

    fn succeeded(&mut self) {
        if self.failing {
            tracing::info!("the collector answers again; exporting spans");
        }
        self.failing = false;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// Counts what it is given.
    #[derive(Debug, Default, Clone)]
    struct Counting(Arc<AtomicUsize>);

    impl SpanExporter for Counting {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.fetch_add(batch.len(), Ordering::Relaxed);
            Ok(())
        }
    }

    /// A collector that refuses everything.
    #[derive(Debug)]
    struct Refusing;

    impl SpanExporter for Refusing {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("refused".into()))
        }
    }

    /// A collector that never answers.
    #[derive(Debug)]
    struct Stuck;

    impl SpanExporter for Stuck {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            std::future::pending().await
        }
    }

    fn provider(exporter: impl SpanExporter + 'static) -> SdkTracerProvider {
        SdkTracerProvider::builder()
            .with_span_processor(QueuedExport::start(exporter).unwrap())
            .build()
    }

    fn end_spans(provider: &SdkTracerProvider, count: usize) {
        let tracer = provider.tracer("test");
        for _ in 0..count {
            tracer.start("span").end();
        }
    }

    #[test]
    fn every_span_reaches_a_healthy_collector_in_batches() {
        let exporter = Counting::default();
        let provider = provider(exporter.clone());
        end_spans(&provider, 3 * MAX_BATCH + 1);
        provider.force_flush().unwrap();
        assert_eq!(exporter.0.load(Ordering::Relaxed), 3 * MAX_BATCH + 1);
        end_spans(&provider, 7);
        provider.shutdown().unwrap();
        assert_eq!(
            exporter.0.load(Ordering::Relaxed),
            3 * MAX_BATCH + 8,
            "shutdown sends the rest"
        );
    }

    #[test]
    fn spans_a_collector_refuses_are_counted_as_dropped() {
        let before = stats().dropped_export_failed;
        let provider = provider(Refusing);
        end_spans(&provider, 10);
        provider.force_flush().unwrap();
        assert!(stats().dropped_export_failed - before >= 10);
        provider.shutdown().unwrap();
    }

    #[test]
    fn a_stuck_collector_costs_dropped_spans_not_memory() {
        let before = stats().dropped_queue_full;
        let provider = provider(Stuck);
        let ended = 3 * QUEUE_CAPACITY;
        end_spans(&provider, ended);
        // At most a queue and a batch are held; the rest were dropped at
        // once, without waiting.
        let dropped = stats().dropped_queue_full - before;
        assert!(
            dropped >= (ended - QUEUE_CAPACITY - MAX_BATCH) as u64,
            "only {dropped} of {ended} spans dropped"
        );
        assert!(provider.shutdown_with_timeout(Duration::from_millis(100)).is_err());
    }
}
