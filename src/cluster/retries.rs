//! An operator's retry of failed deliveries that JetStream holds (SPEC 11):
//! the replica asked reads the endpoint's failed subject, adopts each
//! delivery it retries (the failed record, then the manual retry, in one
//! group of the change writer, synced), and only then deletes JetStream's
//! copy. A crash in between leaves both copies: a later retry finds the
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
    for _ in 0..total {
        let message = tokio::time::timeout(READ_PATIENCE, messages.next())
            .await
            .map_err(|_| unavailable("reading the failed deliveries timed out"))?
            .ok_or_else(|| unavailable("the read of the failed deliveries ended early"))?
            .map_err(unavailable)?;
        let Ok(parcel) = Parcel::decode(&message.payload) else {
            continue;
        };
        if !wanted(&parcel) {
            continue;
        }
        let sequence = message.info().map_err(unavailable)?.stream_sequence;
        let now = clock::now_ms();
        let id = parcel.id.clone();
        let transitions = vec![
            Transition {
                id: id.clone(),
                expect: Expect::Absent,
                change: Change::Adopted {
                    record: Box::new(parcel.delivery),
                    event: Box::new(parcel.event),
                },
                now_ms: now,
            },
            Transition {
                id,
                expect: Expect::Failed,
                change: Change::ManualRetry,
                now_ms: now,
            },
        ];
        let writer = store.clone();
        let applied = tokio::task::spawn_blocking(move || writer.transition_all(transitions))
            .await
            .expect("the write does not panic");
        let mut applied = applied.into_iter();
        let (_adopted, retry) = (applied.next().transpose()?, applied.next().transpose()?);
        retried += usize::from(retry == Some(Applied::Done { event_removed: false }));
        // Here now, retried by this or an earlier retry: the copy goes.
        failed.delete_message(sequence).await.map_err(unavailable)?;
    }
    Ok(retried)
}
