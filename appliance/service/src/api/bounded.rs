//! CPU-bound checks that run on the blocking pool a bounded number at a time: a request
//! that finds every permit taken is turned away with 503 (its `code`, `Retry-After`),
//! not queued behind the others.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::AppError;

/// At most `limit` closures of one kind run at once.
pub(super) struct Bounded {
    permits: Arc<Semaphore>,
    limit: usize,
    /// The error code a refused request gets (`verify_busy`, `witness_busy`).
    code: &'static str,
    /// What one run is, in the refusal's message ("verifications").
    what: &'static str,
}

impl Bounded {
    /// `limit` at once (at least one).
    pub(super) fn new(limit: usize, code: &'static str, what: &'static str) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            code,
            what,
        }
    }

    /// Runs `f` on the blocking pool holding a permit until it returns, or refuses at
    /// once when none is free.
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            self.permits
                .clone()
                .try_acquire_owned()
                .map_err(|_| AppError::Unavailable {
                    code: self.code,
                    message: format!(
                        "{} {} are running, the most this appliance runs at once; retry shortly",
                        self.limit, self.what
                    ),
                })?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(AppError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_beyond_the_limit_is_refused_and_a_freed_permit_is_reused() {
        let bounded = Arc::new(Bounded::new(1, "test_busy", "tests"));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let b = bounded.clone();
            tokio::spawn(async move {
                b.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    1
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        match bounded.run(|| 2).await {
            Err(AppError::Unavailable { code, message }) => {
                assert_eq!(code, "test_busy");
                assert!(message.contains("1 tests are running"), "{message}");
            }
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        release_tx.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(bounded.run(|| 3).await.unwrap(), 3);
    }
}
