//! gRPC health: SERVING while the database answers, NOT_SERVING while it does not.

use std::time::Duration;

use tonic_health::{ServingStatus, server::HealthReporter};

use super::SERVICE_NAMES;
use crate::store::Store;

/// Sets the server ("") and every service to `status`.
pub(super) async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Pings the database every `interval` and reports the outcome whenever it changes.
pub(super) async fn watch_database(store: Store, reporter: HealthReporter, interval: Duration) {
    let mut serving = true;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let answered = matches!(
            tokio::time::timeout(interval.max(Duration::from_secs(1)), store.ping()).await,
            Ok(Ok(()))
        );
        if answered != serving {
            serving = answered;
            if serving {
                tracing::info!("database reachable again: SERVING");
                set_all(&reporter, ServingStatus::Serving).await;
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
                set_all(&reporter, ServingStatus::NotServing).await;
            }
        }
    }
}
