//! `clientele.v1.CustomerSourceService`.

use tonic::{Request, Response, Status};

use super::{admin, timestamp};
use crate::{
    domain::{CustomerSources, customer_source::SourceStatus},
    error::Error,
    model::SyncKind,
    proto::v1::{self as pb, customer_source_service_server::CustomerSourceService},
};

/// The gRPC face of [`CustomerSources`].
#[derive(Clone, Debug)]
pub struct CustomerSourceApi {
    sources: CustomerSources,
}

impl CustomerSourceApi {
    /// Serves `sources`.
    pub fn new(sources: CustomerSources) -> Self {
        Self { sources }
    }
}

#[tonic::async_trait]
impl CustomerSourceService for CustomerSourceApi {
    async fn list_customer_sources(
        &self,
        request: Request<pb::ListCustomerSourcesRequest>,
    ) -> Result<Response<pb::ListCustomerSourcesResponse>, Status> {
        let admin = admin(&request)?;
        let sources = self.sources.list(&admin).await?;
        Ok(Response::new(pb::ListCustomerSourcesResponse {
            sources: sources.into_iter().map(to_proto).collect(),
        }))
    }

    async fn sync_customer_source(
        &self,
        request: Request<pb::SyncCustomerSourceRequest>,
    ) -> Result<Response<pb::SyncCustomerSourceResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        if request.name.is_empty() {
            return Err(Error::invalid("name", "is required").into());
        }
        let source = self
            .sources
            .sync(&admin, &request.name, request.full)
            .await?;
        Ok(Response::new(pb::SyncCustomerSourceResponse {
            customer_source: Some(to_proto(source)),
        }))
    }
}

fn to_proto(status: SourceStatus) -> pb::CustomerSource {
    let sync = status.sync;
    pb::CustomerSource {
        name: status.name,
        url: status.url,
        base_dn: status.base_dn,
        sync_interval_seconds: i64::try_from(status.sync_interval.as_secs()).unwrap_or(i64::MAX),
        last_sync_start_time: sync.last_start_time.map(timestamp),
        last_sync_end_time: sync.last_end_time.map(timestamp),
        last_success_time: sync.last_success_time.map(timestamp),
        last_sync_kind: match sync.kind {
            None => pb::SyncKind::Unspecified,
            Some(SyncKind::Full) => pb::SyncKind::Full,
            Some(SyncKind::Incremental) => pb::SyncKind::Incremental,
        } as i32,
        entries_read: sync.entries_read,
        entries_changed: sync.entries_changed,
        entries_refused: sync.entries_refused,
        entries_invalidated: sync.entries_invalidated,
        error: sync.error,
        refusals: sync
            .refusals
            .into_iter()
            .map(|refusal| pb::SourceRefusal {
                dn: refusal.dn,
                reason: refusal.reason,
                message: refusal.message,
            })
            .collect(),
    }
}
