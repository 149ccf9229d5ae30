//! The gRPC adapter of `ChangeService`: the change feed (ListChanges, WatchChanges) and the
//! history of every resource (GetHistory).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{
    parse_id, principal,
    ticket::{change_kind_to_proto, json_to_proto},
    timestamp,
};
use crate::{
    domain::{
        ChangeFeed,
        change_feed::{Resource, SeenChange, decode_cursor, encode_cursor},
    },
    error::{Error, Result},
    metrics::Metrics,
    model::{ChangeFilter, ResourceType},
    proto::v1::{self as pb, change_service_server::ChangeService},
};

/// How many changes one message of WatchChanges carries at most.
const WATCH_MESSAGE: usize = 100;
/// How many messages a watch holds for a slow client before it stops reading the feed.
const WATCH_BUFFER: usize = 8;

/// Serves `clientele.v1.ChangeService`.
#[derive(Clone, Debug)]
pub struct ChangeApi {
    feed: ChangeFeed,
    metrics: Arc<Metrics>,
}

impl ChangeApi {
    /// The service over `feed`, counting its followers in `metrics`.
    pub fn new(feed: ChangeFeed, metrics: Arc<Metrics>) -> Self {
        Self { feed, metrics }
    }
}

#[tonic::async_trait]
impl ChangeService for ChangeApi {
    type WatchChangesStream = ReceiverStream<Result<pb::WatchChangesResponse, Status>>;

    async fn list_changes(
        &self,
        request: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let after = decode_cursor("cursor", &request.cursor)?;
        let filter = filter(&request.resource_types, &request.resource_id)?;
        let page = self
            .feed
            .page(
                &principal,
                after,
                &filter,
                request.page_size,
                request.include_resources,
            )
            .await?;
        Ok(Response::new(pb::ListChangesResponse {
            events: page.changes.into_iter().map(to_proto).collect(),
            next_cursor: encode_cursor(page.next),
            more: page.more,
        }))
    }

    async fn watch_changes(
        &self,
        request: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        if request.from_now && !request.cursor.is_empty() {
            return Err(Error::invalid("from_now", "give a cursor or from_now, not both").into());
        }
        let after = if request.from_now {
            None
        } else {
            Some(decode_cursor("cursor", &request.cursor)?)
        };
        let filter = filter(&request.resource_types, &request.resource_id)?;
        let mut watch = self
            .feed
            .watch(&principal, after, filter, request.include_resources)
            .await?;
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let _running = metrics.change_watcher();
            loop {
                let page = tokio::select! {
                    page = watch.next() => page,
                    () = sender.closed() => return,
                };
                let page = match page {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                };
                let now = jiff::Timestamp::now();
                metrics.changes_delivered(page.changes.iter().map(|seen| {
                    (now - seen.change.time)
                        .max(jiff::SignedDuration::ZERO)
                        .unsigned_abs()
                }));
                let mut messages: Vec<pb::WatchChangesResponse> = page
                    .changes
                    .chunks(WATCH_MESSAGE)
                    .map(|chunk| pb::WatchChangesResponse {
                        cursor: chunk
                            .last()
                            .and_then(|seen| seen.change.position)
                            .map(encode_cursor)
                            .unwrap_or_default(),
                        events: chunk.iter().cloned().map(to_proto).collect(),
                    })
                    .collect();
                // The last message resumes after every change the page examined, also
                // those not shown.
                match messages.last_mut() {
                    Some(last) => last.cursor = encode_cursor(page.next),
                    None => messages.push(pb::WatchChangesResponse {
                        events: Vec::new(),
                        cursor: encode_cursor(page.next),
                    }),
                }
                for message in messages {
                    if sender.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let resource_type = resource_type("resource_type", request.resource_type)?;
        let id = parse_id("resource_id", &request.resource_id)?;
        let page = self
            .feed
            .history(
                &principal,
                resource_type,
                id,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::GetHistoryResponse {
            events: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

/// The filter of a feed request.
fn filter(resource_types: &[i32], resource_id: &str) -> Result<ChangeFilter> {
    let mut types = Vec::with_capacity(resource_types.len());
    for (index, raw) in resource_types.iter().enumerate() {
        let kind = resource_type("resource_types", *raw)
            .map_err(|_| Error::invalid(format!("resource_types[{index}]"), unknown_type()))?;
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    let resource_id = if resource_id.is_empty() {
        None
    } else {
        Some(parse_id("resource_id", resource_id)?)
    };
    Ok(ChangeFilter {
        resource_types: types,
        resource_id,
    })
}

fn unknown_type() -> &'static str {
    "is not a resource type: name one, e.g. RESOURCE_TYPE_CUSTOMER"
}

/// The model's kind of a resource type sent by a client.
pub(crate) fn resource_type(field: &'static str, raw: i32) -> Result<ResourceType> {
    use pb::ResourceType as P;
    Ok(
        match P::try_from(raw).map_err(|_| Error::invalid(field, unknown_type()))? {
            P::Unspecified => return Err(Error::invalid(field, unknown_type())),
            P::Organisation => ResourceType::Organisation,
            P::Customer => ResourceType::Customer,
            P::Settings => ResourceType::Settings,
            P::Agent => ResourceType::Agent,
            P::Group => ResourceType::Group,
            P::Grant => ResourceType::Grant,
            P::Token => ResourceType::Token,
            P::Calendar => ResourceType::Calendar,
            P::SlaPolicy => ResourceType::SlaPolicy,
            P::Ticket => ResourceType::Ticket,
            P::Comment => ResourceType::Comment,
            P::Webhook => ResourceType::Webhook,
            P::Activity => ResourceType::Activity,
            P::ContactGroupKind => ResourceType::ContactGroupKind,
            P::ContactGroup => ResourceType::ContactGroup,
            P::PriceList => ResourceType::PriceList,
            P::CustomerType => ResourceType::CustomerType,
            P::FieldDefinition => ResourceType::FieldDefinition,
            P::Directory => ResourceType::Directory,
        },
    )
}

/// The API's kind of a stored resource type; a name this version does not know is
/// unspecified.
pub(crate) fn resource_type_to_proto(name: &str) -> pb::ResourceType {
    use pb::ResourceType as P;
    match ResourceType::from_name(name) {
        None => P::Unspecified,
        Some(ResourceType::Organisation) => P::Organisation,
        Some(ResourceType::Customer) => P::Customer,
        Some(ResourceType::Settings) => P::Settings,
        Some(ResourceType::Agent) => P::Agent,
        Some(ResourceType::Group) => P::Group,
        Some(ResourceType::Grant) => P::Grant,
        Some(ResourceType::Token) => P::Token,
        Some(ResourceType::Calendar) => P::Calendar,
        Some(ResourceType::SlaPolicy) => P::SlaPolicy,
        Some(ResourceType::Ticket) => P::Ticket,
        Some(ResourceType::Comment) => P::Comment,
        Some(ResourceType::Webhook) => P::Webhook,
        Some(ResourceType::Activity) => P::Activity,
        Some(ResourceType::ContactGroupKind) => P::ContactGroupKind,
        Some(ResourceType::ContactGroup) => P::ContactGroup,
        Some(ResourceType::PriceList) => P::PriceList,
        Some(ResourceType::CustomerType) => P::CustomerType,
        Some(ResourceType::FieldDefinition) => P::FieldDefinition,
        Some(ResourceType::Directory) => P::Directory,
    }
}

/// A change just written, as the feed will show it (its place in the feed still to come).
pub(crate) fn event_to_proto(event: crate::model::ChangeEvent, seq: i64) -> pb::ChangeEvent {
    to_proto(SeenChange {
        change: crate::model::StoredChange {
            seq,
            position: None,
            time: event.time,
            actor: event.actor.as_str().to_owned(),
            resource_type: event.resource_type.as_str().to_owned(),
            resource_id: event.resource_id,
            kind: event.kind.as_str().to_owned(),
            changes: event.changes,
            values_erased: false,
        },
        redacted: false,
        resource: None,
    })
}

pub(crate) fn to_proto(seen: SeenChange) -> pb::ChangeEvent {
    use pb::change_event::Resource as P;
    let change = seen.change;
    pb::ChangeEvent {
        resource: seen.resource.map(|resource| match resource {
            Resource::Organisation(organisation) => {
                P::Organisation(super::organisation::to_proto(organisation))
            }
            Resource::Customer(customer) => P::Customer(super::customer::to_proto(customer)),
            Resource::Ticket(ticket) => P::Ticket(super::ticket::to_proto(*ticket)),
        }),
        cursor: change.position.map(encode_cursor).unwrap_or_default(),
        seq: change.seq,
        time: Some(timestamp(change.time)),
        actor: change.actor,
        resource_type: resource_type_to_proto(&change.resource_type).into(),
        resource_id: change.resource_id.to_string(),
        kind: change_kind_to_proto(&change.kind).into(),
        changes: change
            .changes
            .into_iter()
            .map(|c| pb::FieldChange {
                field: c.field,
                old_value: Some(json_to_proto(c.old)),
                new_value: Some(json_to_proto(c.new)),
            })
            .collect(),
        redacted: seen.redacted,
        values_erased: change.values_erased,
    }
}
