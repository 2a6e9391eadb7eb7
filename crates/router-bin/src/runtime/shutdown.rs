//! The shutdown signal every task watches: a `watch` channel that flips to `true` once.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Runs a start-up step unless shutdown is requested first: while NATS has never been
/// reachable, subscribing waits for the connection, and SIGTERM must still stop the router.
pub async fn unless_requested<T>(
    step: impl Future<Output = T>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<T> {
    tokio::select! {
        value = step => Some(value),
        _ = shutdown.changed() => None,
    }
}

/// Sleeps for `delay`; true when shutdown was asked for meanwhile.
pub async fn sleep_or_stop(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
    }
}
