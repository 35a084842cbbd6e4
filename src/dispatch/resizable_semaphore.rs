//! A semaphore whose size can change while its permits are out, for the
//! limits that change at run time: each endpoint's adaptive concurrency,
//! and `delivery.concurrency` on a config reload.
//!
//! Growing adds permits at once. Shrinking forgets free permits at once;
//! permits in use are owed, and are forgotten instead of returned when
//! they come back. So the permits out never exceed the size for longer
//! than the attempts already running take.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct ResizableSemaphore {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    size: usize,
    /// Permits in use that must be forgotten when they come back.
    owed: usize,
}

/// One permit; given back (or forgotten, if owed) when dropped.
#[derive(Debug)]
pub struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    from: Arc<ResizableSemaphore>,
}

impl ResizableSemaphore {
    pub fn new(size: usize) -> Arc<ResizableSemaphore> {
        Arc::new(ResizableSemaphore {
            semaphore: Arc::new(Semaphore::new(size)),
            state: Mutex::new(State { size, owed: 0 }),
        })
    }

    pub fn size(&self) -> usize {
        self.state().size
    }

    /// Permits free now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Waits for a permit (first come, first served).
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Permit {
            permit: Some(permit),
            from: self.clone(),
        }
    }

    /// A permit if one is free now.
    #[cfg(test)]
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let permit = self.semaphore.clone().try_acquire_owned().ok()?;
        Some(Permit {
            permit: Some(permit),
            from: self.clone(),
        })
    }

    /// Changes the size to `size`.
    pub fn resize(&self, size: usize) {
        let mut state = self.state();
        if size > state.size {
            let mut growth = size - state.size;
            // Permits still owed are simply kept instead.
            let kept = growth.min(state.owed);
            state.owed -= kept;
            growth -= kept;
            self.semaphore.add_permits(growth);
        } else {
            let surplus = state.size - size;
            let forgotten = self.semaphore.forget_permits(surplus);
            state.owed += surplus - forgotten;
        }
        state.size = size;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else { return };
        let mut state = self.from.state();
        if state.owed > 0 {
            state.owed -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shrinking_below_what_is_in_use_forgets_permits_as_they_return() {
        let semaphore = ResizableSemaphore::new(4);
        let held: Vec<Permit> = (0..4).map(|_| semaphore.try_acquire().unwrap()).collect();
        semaphore.resize(2);
        assert_eq!((semaphore.size(), semaphore.available()), (2, 0));
        drop(held);
        assert_eq!(semaphore.available(), 2, "two owed permits were forgotten");
        semaphore.resize(5);
        assert_eq!(semaphore.available(), 5);
        let one = semaphore.acquire().await;
        semaphore.resize(1);
        assert_eq!(semaphore.available(), 0, "the one in use is the one allowed");
        drop(one);
        assert_eq!(semaphore.available(), 1);
    }

    #[tokio::test]
    async fn growing_pays_what_is_owed_first() {
        let semaphore = ResizableSemaphore::new(2);
        let held: Vec<Permit> = (0..2).map(|_| semaphore.try_acquire().unwrap()).collect();
        semaphore.resize(0);
        semaphore.resize(1);
        drop(held);
        assert_eq!(semaphore.available(), 1);
    }
}
