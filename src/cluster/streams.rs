//! The JetStream resources cluster mode works on, created if missing and
//! checked if present: hookd refuses to start on settings it cannot work
//! with, and says which.
//!
//! - stream `HOOKD_PARKED`, subjects `hookd.parked.<endpoint>`: parked
//!   deliveries, one message each. A work queue (a message is gone once a
//!   replica acknowledged it), on file, `replicas` copies, refusing new
//!   messages when full rather than dropping old ones, no age limit.
//! - consumer `HOOKD_ADOPT` on it, durable and shared by every replica:
//!   explicit acknowledgement, redelivered without limit. A message not
//!   due yet is handed back with a delay until it is (a NAK with a delay).
//! - stream `HOOKD_FAILED`, subjects `hookd.failed.<endpoint>`: failed
//!   deliveries, kept `storage.retention` (its age limit) for an
//!   operator's retry from any replica; on file, `replicas` copies.

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, context::GetStreamErrorKind};

pub const PARKED_STREAM: &str = "HOOKD_PARKED";
pub const ADOPT_CONSUMER: &str = "HOOKD_ADOPT";
const PARKED_SUBJECTS: &str = "hookd.parked.>";
/// What every parked subject starts with; the endpoint id follows.
pub const PARKED_PREFIX: &str = "hookd.parked.";
pub const FAILED_STREAM: &str = "HOOKD_FAILED";
/// What every failed subject starts with; the endpoint id follows.
pub const FAILED_PREFIX: &str = "hookd.failed.";
/// How long a replica may hold a message it took before JetStream hands
/// it to another: far longer than one adoption's synced write.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Publishes with the same id within this window are stored once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The subject of `endpoint`'s parked deliveries (endpoint ids are
/// letters, digits, `_` and `-`: one subject token).
pub fn parked_subject(endpoint: &str) -> String {
    format!("{PARKED_PREFIX}{endpoint}")
}

/// Why the streams are not ready.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// JetStream did not answer, or refused for a reason of its own.
    #[error("JetStream is unavailable: {0}")]
    Unavailable(String),
    /// What exists has settings hookd cannot work with.
    #[error("{0}")]
    Incompatible(String),
}

fn unavailable(error: impl std::fmt::Display) -> StreamsError {
    StreamsError::Unavailable(error.to_string())
}

/// The parked stream and the adoption consumer, created or checked.
pub async fn ensure(
    jetstream: &jetstream::Context,
    replicas: usize,
) -> Result<(stream::Stream, PullConsumer), StreamsError> {
    let stream = match jetstream.get_stream(PARKED_STREAM).await {
        Ok(mut stream) => {
            let info = stream.info().await.map_err(unavailable)?;
            check_stream(&info.config, replicas)?;
            stream
        }
        Err(error) if is_not_found(&error) => jetstream
            .create_stream(parked_stream(replicas))
            .await
            .map_err(unavailable)?,
        Err(error) => return Err(unavailable(error)),
    };
    let consumer = match stream.get_consumer::<pull::Config>(ADOPT_CONSUMER).await {
        Ok(mut consumer) => {
            let info = consumer.info().await.map_err(unavailable)?;
            check_consumer(&info.config)?;
            consumer
        }
        Err(_) => stream
            .get_or_create_consumer(ADOPT_CONSUMER, adopt_consumer())
            .await
            .map_err(unavailable)?,
    };
    Ok((stream, consumer))
}

/// The subject of `endpoint`'s failed deliveries.
pub fn failed_subject(endpoint: &str) -> String {
    format!("{FAILED_PREFIX}{endpoint}")
}

/// The failed stream, created or checked; `retention` is its age limit.
pub async fn ensure_failed(
    jetstream: &jetstream::Context,
    replicas: usize,
    retention: Duration,
) -> Result<stream::Stream, StreamsError> {
    match jetstream.get_stream(FAILED_STREAM).await {
        Ok(mut stream) => {
            let info = stream.info().await.map_err(unavailable)?;
            check_failed_stream(&info.config, retention)?;
            Ok(stream)
        }
        Err(error) if is_not_found(&error) => jetstream
            .create_stream(failed_stream(replicas, retention))
            .await
            .map_err(unavailable),
        Err(error) => Err(unavailable(error)),
    }
}

fn failed_stream(replicas: usize, retention: Duration) -> stream::Config {
    stream::Config {
        name: FAILED_STREAM.to_owned(),
        description: Some("hookd: failed deliveries, for a retry from any replica (SPEC 11)".to_owned()),
        subjects: vec![format!("{FAILED_PREFIX}>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::New,
        max_age: retention,
        num_replicas: replicas,
        // JetStream refuses a window longer than the age limit.
        duplicate_window: DUPLICATE_WINDOW.min(retention),
        ..Default::default()
    }
}

/// The settings of an existing `HOOKD_FAILED` that would lose failed
/// deliveries before their time.
fn check_failed_stream(config: &stream::Config, retention: Duration) -> Result<(), StreamsError> {
    let refuse = |setting: &str, reason: String| {
        Err(StreamsError::Incompatible(format!(
            "the JetStream stream {FAILED_STREAM} has {setting} {reason}; fix or delete the stream"
        )))
    };
    if !config
        .subjects
        .iter()
        .any(|subject| *subject == format!("{FAILED_PREFIX}>"))
    {
        return refuse(
            "subjects",
            format!("{:?}, hookd needs {FAILED_PREFIX}>", config.subjects),
        );
    }
    if config.discard != DiscardPolicy::New || config.retention == RetentionPolicy::WorkQueue {
        return refuse(
            "discard or retention",
            "that drop failed deliveries before their age limit; hookd needs limits and new".to_owned(),
        );
    }
    if config.max_age != retention {
        tracing::warn!(
            stream = FAILED_STREAM,
            max_age = ?config.max_age,
            storage.retention = ?retention,
            "the failed stream keeps failed deliveries for another time than storage.retention; it is left as it is"
        );
    }
    Ok(())
}

fn is_not_found(error: &async_nats::jetstream::context::GetStreamError) -> bool {
    matches!(error.kind(), GetStreamErrorKind::JetStream(error) if error.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

fn parked_stream(replicas: usize) -> stream::Config {
    stream::Config {
        name: PARKED_STREAM.to_owned(),
        description: Some("hookd: parked deliveries (SPEC 11)".to_owned()),
        subjects: vec![PARKED_SUBJECTS.to_owned()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        discard: DiscardPolicy::New,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

fn adopt_consumer() -> pull::Config {
    pull::Config {
        durable_name: Some(ADOPT_CONSUMER.to_owned()),
        description: Some("hookd: every replica adopts parked deliveries here".to_owned()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: -1,
        // Deliveries handed back until they are due stay pending, so no
        // bound: a bound would stall adoption behind waiting retries.
        max_ack_pending: -1,
        ..Default::default()
    }
}

/// The settings of an existing `HOOKD_PARKED` that would lose or strand
/// parked deliveries.
fn check_stream(config: &stream::Config, replicas: usize) -> Result<(), StreamsError> {
    let refuse = |setting: &str, reason: String| {
        Err(StreamsError::Incompatible(format!(
            "the JetStream stream {PARKED_STREAM} has {setting} {reason}; fix or delete the stream (it holds parked deliveries: delete it only when it is empty)"
        )))
    };
    if config.retention != RetentionPolicy::WorkQueue {
        return refuse("retention", format!("{:?}, hookd needs WorkQueue", config.retention));
    }
    if !config.subjects.iter().any(|subject| subject == PARKED_SUBJECTS) {
        return refuse(
            "subjects",
            format!("{:?}, hookd needs {PARKED_SUBJECTS}", config.subjects),
        );
    }
    if config.discard != DiscardPolicy::New {
        return refuse(
            "discard",
            "old: a full stream would drop parked deliveries; hookd needs new".to_owned(),
        );
    }
    if !config.max_age.is_zero() {
        return refuse(
            "max_age",
            format!(
                "{:?}: parked deliveries would expire unseen; hookd needs none",
                config.max_age
            ),
        );
    }
    if config.num_replicas != replicas {
        tracing::warn!(
            stream = PARKED_STREAM,
            stream_replicas = config.num_replicas,
            cluster.replicas = replicas,
            "the parked stream keeps another number of copies than cluster.replicas; it is left as it is"
        );
    }
    Ok(())
}

/// The settings of an existing `HOOKD_ADOPT` that would lose or stall
/// adoption.
fn check_consumer(config: &async_nats::jetstream::consumer::Config) -> Result<(), StreamsError> {
    let refuse = |setting: &str, reason: String| {
        Err(StreamsError::Incompatible(format!(
            "the JetStream consumer {ADOPT_CONSUMER} on {PARKED_STREAM} has {setting} {reason}; delete the consumer and hookd creates it anew"
        )))
    };
    if config.ack_policy != AckPolicy::Explicit {
        return refuse("ack_policy", format!("{:?}, hookd needs explicit", config.ack_policy));
    }
    if config.max_deliver != -1 && config.max_deliver != 0 {
        return refuse(
            "max_deliver",
            format!(
                "{}: a delivery handed back that often would never be adopted; hookd needs no limit",
                config.max_deliver
            ),
        );
    }
    let filters = config
        .filter_subjects
        .iter()
        .chain(std::iter::once(&config.filter_subject));
    if filters
        .filter(|filter| !filter.is_empty())
        .any(|filter| filter != PARKED_SUBJECTS)
    {
        return refuse("a subject filter", "that leaves parked deliveries out".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::consumer::IntoConsumerConfig;

    #[test]
    fn what_hookd_creates_passes_its_own_checks() {
        check_failed_stream(&failed_stream(3, Duration::from_secs(60)), Duration::from_secs(60)).unwrap();
        check_stream(&parked_stream(3), 3).unwrap();
        check_consumer(&adopt_consumer().into_consumer_config()).unwrap();
    }

    #[test]
    fn a_stream_that_would_drop_parked_deliveries_is_refused_by_its_setting() {
        let mut limits = parked_stream(3);
        limits.retention = RetentionPolicy::Limits;
        assert!(
            check_stream(&limits, 3)
                .unwrap_err()
                .to_string()
                .contains("has retention")
        );
        let mut old = parked_stream(3);
        old.discard = DiscardPolicy::Old;
        assert!(check_stream(&old, 3).unwrap_err().to_string().contains("has discard"));
        let mut aged = parked_stream(3);
        aged.max_age = Duration::from_secs(3600);
        assert!(check_stream(&aged, 3).unwrap_err().to_string().contains("has max_age"));
        let mut limited = adopt_consumer();
        limited.max_deliver = 5;
        assert!(
            check_consumer(&limited.into_consumer_config())
                .unwrap_err()
                .to_string()
                .contains("has max_deliver")
        );
    }
}
