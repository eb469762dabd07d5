//! The loop's heartbeat: how many passes it has completed and when the last one ended. The
//! health endpoint can tell a stuck loop by it, and tests can wait for further passes instead
//! of sleeping.

use std::time::Instant;

use tokio::sync::watch;

/// The latest completed pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// Passes completed since the agent started.
    pub count: u64,
    /// When the latest one ended; `None` before the first.
    pub at: Option<Instant>,
}

/// Written by the loop after each pass; read through [`PassCounter::subscribe`].
#[derive(Debug)]
pub struct PassCounter {
    tx: watch::Sender<Pass>,
}

impl Default for PassCounter {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(Pass { count: 0, at: None }),
        }
    }
}

impl PassCounter {
    /// Records a completed pass at `at`.
    pub fn completed(&self, at: Instant) {
        self.tx.send_modify(|p| {
            p.count += 1;
            p.at = Some(at);
        });
    }

    /// A receiver that sees every later pass.
    pub fn subscribe(&self) -> watch::Receiver<Pass> {
        self.tx.subscribe()
    }

    /// The latest pass.
    pub fn latest(&self) -> Pass {
        *self.tx.borrow()
    }
}

/// Waits until `passes` has counted `more` passes beyond the one it holds now. For tests and
/// probes that must know the loop has looked again, rather than guess with a sleep.
pub async fn wait_for_more(
    passes: &mut watch::Receiver<Pass>,
    more: u64,
) -> Result<Pass, watch::error::RecvError> {
    let target = passes.borrow_and_update().count + more;
    passes.wait_for(|p| p.count >= target).await.map(|p| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_for_more_passes_returns_once_they_are_done() {
        let counter = PassCounter::default();
        let mut rx = counter.subscribe();
        let t = Instant::now();
        counter.completed(t);
        let waiter = tokio::spawn(async move { wait_for_more(&mut rx, 2).await });
        tokio::task::yield_now().await;
        counter.completed(t);
        counter.completed(t);
        let pass = waiter.await.unwrap().unwrap();
        assert!(pass.count >= 3);
        assert_eq!(counter.latest().count, 3);
        assert_eq!(counter.latest().at, Some(t));
    }
}
