//! An operator's retry of failed deliveries that JetStream holds (SPEC 11):
//! the replica asked reads the endpoint's failed subject, adopts each
//! delivery it retries (the failed record, then the manual retry, for up
//! to 256 deliveries in one group of the change writer, synced), and only
//! then deletes JetStream's copies. A crash in between leaves both copies: a later retry finds the
//! local one pending and drops the other.

use std::time::Duration;

use async_nats::jetstream::{consumer::pull, stream};
use futures_util::StreamExt;

use super::parcel::Parcel;
use super::streams::failed_subject;
use crate::clock;
use crate::store::{Applied, Change, Expect, Store, Transition};

/// How long one message of the read may take to arrive.
const READ_PATIENCE: Duration = Duration::from_secs(5);
/// Deliveries adopted and retried in one group of writes.
const CHUNK: usize = 256;

/// Why JetStream's failed deliveries could not be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryShareError {
    #[error("JetStream has not been reached since hookd started")]
    NotReady,
    #[error("JetStream: {0}")]
    Unavailable(String),
    #[error("the store: {0}")]
    Store(#[from] crate::store::Error),
}

fn unavailable(error: impl std::fmt::Display) -> RetryShareError {
    RetryShareError::Unavailable(error.to_string())
}

/// Retries the failed deliveries of `endpoint` in `failed` that `wanted`
/// picks (by id, and when they failed); how many it retried.
pub async fn retry(
    failed: &stream::Stream,
    store: &Store,
    endpoint: &str,
    wanted: impl Fn(&Parcel) -> bool,
) -> Result<usize, RetryShareError> {
    let consumer = failed
        .create_consumer(pull::OrderedConfig {
            filter_subject: failed_subject(endpoint),
            ..Default::default()
        })
        .await
        .map_err(unavailable)?;
    let total = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.map_err(unavailable)?;
    let mut retried = 0;
    let mut chunk = Vec::with_capacity(CHUNK);
    for read in 0..total {
        let message = tokio::time::timeout(READ_PATIENCE, messages.next())
            .await
            .map_err(|_| unavailable("reading the failed deliveries timed out"))?
            .ok_or_else(|| unavailable("the read of the failed deliveries ended early"))?
            .map_err(unavailable)?;
        if let Ok(parcel) = Parcel::decode(&message.payload)
            && wanted(&parcel)
        {
            chunk.push((message.info().map_err(unavailable)?.stream_sequence, parcel));
        }
        if chunk.len() == CHUNK || (read + 1 == total && !chunk.is_empty()) {
            retried += retry_chunk(failed, store, std::mem::take(&mut chunk)).await?;
        }
    }
    Ok(retried)
}

/// Adopts and retries `chunk` in one group of writes, then deletes
/// JetStream's copies; how many were retried.
async fn retry_chunk(
    failed: &stream::Stream,
    store: &Store,
    chunk: Vec<(u64, Parcel)>,
) -> Result<usize, RetryShareError> {
    let now = clock::now_ms();
    let mut sequences = Vec::with_capacity(chunk.len());
    let mut transitions = Vec::with_capacity(2 * chunk.len());
    for (sequence, parcel) in chunk {
        sequences.push(sequence);
        let id = parcel.id.clone();
        transitions.push(Transition {
            id: id.clone(),
            expect: Expect::Absent,
            change: Change::Adopted {
                record: Box::new(parcel.delivery),
                event: Box::new(parcel.event),
            },
            now_ms: now,
        });
        transitions.push(Transition {
            id,
            expect: Expect::Failed,
            change: Change::ManualRetry,
            now_ms: now,
        });
    }
    let writer = store.clone();
    let applied = tokio::task::spawn_blocking(move || writer.transition_all(transitions))
        .await
        .expect("the write does not panic");
    let mut retried = 0;
    // Every other answer is a retry's (after its adoption's).
    for answer in applied.into_iter().skip(1).step_by(2) {
        retried += usize::from(answer? == Applied::Done { event_removed: false });
    }
    // Here now, retried by this or an earlier retry: the copies go.
    for sequence in sequences {
        failed.delete_message(sequence).await.map_err(unavailable)?;
    }
    Ok(retried)
}
