//! The customer history retention: the recorded values of customer changes older than the
//! configured retention are erased (the entries stay, marked `values_erased`), in batches, on
//! every replica (the work is idempotent, and each batch is one transaction).

use std::{sync::Arc, time::Duration};

use jiff::SignedDuration;

use crate::{clock::Clock, store::Store};

/// How many entries one round scrubs at most before it sleeps again.
const ROUND: u64 = 50_000;

/// Runs the retention every `retention / 24` (at least a minute, at most an hour) until the
/// task is dropped; nothing when `retention` is `None`.
pub(super) async fn run(store: Store, clock: Arc<dyn Clock>, retention: Option<Duration>) {
    let Some(retention) = retention else {
        return;
    };
    let Ok(keep) = SignedDuration::try_from(retention) else {
        return;
    };
    let every = SignedDuration::try_from(
        (retention / 24).clamp(Duration::from_secs(60), Duration::from_secs(3600)),
    )
    .unwrap_or(SignedDuration::from_hours(1));
    loop {
        let now = clock.now();
        if let Ok(before) = now.checked_sub(keep) {
            match store.scrub_customer_history(before, ROUND).await {
                Ok(0) => {}
                Ok(scrubbed) => tracing::info!(scrubbed, "erased old values of customer changes"),
                Err(error) => tracing::warn!(%error, "the customer history retention failed"),
            }
        }
        let Ok(next) = now.checked_add(every) else {
            return;
        };
        clock.sleep_until(next).await;
    }
}
