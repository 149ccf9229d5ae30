//! `clientele.v1.TicketService`, with its two server-streaming RPCs: each stream is fed by
//! spawned tasks through bounded channels, so a slow client holds the server's read-ahead
//! flat, and the tasks stop as soon as the client is gone.

use std::{pin::Pin, sync::Arc};

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    customer::to_proto as customer_to_proto, optional_id,
    organisation::to_proto as organisation_to_proto, parse_id, parse_ids, parse_optional_id,
    principal, timestamp, writer,
};
use crate::{
    domain::{
        Escalations, Tickets,
        customer::CustomerKey,
        escalation::AlertChange,
        fields,
        organisation::OrganisationKey,
        stream_rights::RightsCheck,
        ticket::{TicketField, TicketInput, TicketKey},
        ticket_list::{Overview, OverviewOf, TicketChunk, TicketQuery},
        watch::{WatchFilter, WatchMessage},
    },
    error::{Error, Result},
    metrics::{Metrics, Running},
    model::{
        Alert, ChangeKind, Deadline, StoredChange, Ticket, TicketOrder, TicketOrderKey, TicketState,
    },
    proto::v1::{self as pb, ticket_service_server::TicketService},
};

/// What a `ListTickets` response sends from: the chunks the converter task made, the one
/// being sent, and the caller's rights, checked before each item.
struct Sending {
    chunks: mpsc::Receiver<Result<Vec<pb::ListTicketsResponse>, Status>>,
    items: std::vec::IntoIter<pb::ListTicketsResponse>,
    rights: RightsCheck,
    metrics: Arc<Metrics>,
    /// Counts the stream as running until the response is gone.
    _running: Arc<Running>,
}

/// The gRPC face of [`Tickets`] and [`Escalations`].
#[derive(Clone, Debug)]
pub struct TicketApi {
    tickets: Tickets,
    escalations: Escalations,
    metrics: Arc<Metrics>,
    watch_buffer: usize,
}

impl TicketApi {
    /// Serves `tickets` and the watch of `escalations`, counting streams in `metrics`; up to
    /// `watch_buffer` messages wait for a slow watcher.
    pub fn new(
        tickets: Tickets,
        escalations: Escalations,
        metrics: Arc<Metrics>,
        watch_buffer: usize,
    ) -> Self {
        Self {
            tickets,
            escalations,
            metrics,
            watch_buffer,
        }
    }
}

#[tonic::async_trait]
impl TicketService for TicketApi {
    type ListTicketsStream =
        Pin<Box<dyn Stream<Item = Result<pb::ListTicketsResponse, Status>> + Send>>;
    type WatchEscalationsStream = ReceiverStream<Result<pb::WatchEscalationsResponse, Status>>;

    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::CreateTicketResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let request_id = fields::request_id(&request.request_id)?;
        let input = input(request.ticket.unwrap_or_default()).map_err(|e| e.within("ticket"))?;
        let ticket = self
            .tickets
            .create(&principal, input, request_id)
            .await
            .map_err(|e| e.within("ticket"))?;
        Ok(Response::new(pb::CreateTicketResponse {
            ticket: Some(to_proto(ticket)),
        }))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let principal = principal(&request)?;
        let key = match request.into_inner().key {
            Some(pb::get_ticket_request::Key::Id(id)) => TicketKey::Id(parse_id("id", &id)?),
            Some(pb::get_ticket_request::Key::Number(number)) if number > 0 => {
                TicketKey::Number(number)
            }
            _ => return Err(Error::invalid("key", "give an id or a positive number").into()),
        };
        let ticket = self.tickets.get(&principal, key).await?;
        Ok(Response::new(pb::GetTicketResponse {
            ticket: Some(to_proto(ticket)),
        }))
    }

    async fn update_ticket(
        &self,
        request: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::UpdateTicketResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let fields = TicketField::from_mask(
            &request
                .update_mask
                .map(|mask| mask.paths)
                .unwrap_or_default(),
        )?;
        let ticket = request.ticket.unwrap_or_default();
        let id = parse_id("ticket.id", &ticket.id)?;
        let etag = ticket.etag.clone();
        let input = input(ticket).map_err(|e| e.within("ticket"))?;
        let ticket = self
            .tickets
            .update(&principal, id, &etag, &fields, &input)
            .await
            .map_err(|e| e.within("ticket"))?;
        Ok(Response::new(pb::UpdateTicketResponse {
            ticket: Some(to_proto(ticket)),
        }))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<Self::ListTicketsStream>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        if request.limit < 0 {
            return Err(Error::invalid("limit", "must not be negative").into());
        }
        let limit = u64::try_from(request.limit).unwrap_or(0);
        let resume_token = request.resume_token.clone();
        let query = query(request)?;
        let mut listing = self
            .tickets
            .listing(&principal, &query, &resume_token)
            .await?;
        // Three stages, each a step ahead of the next: a task reads chunks from the database,
        // a second converts them to responses, and the response sends them. Each hands over
        // through a channel of one chunk and starts on its next chunk only once there is room
        // for it downstream, so a slow client holds three chunks in memory at most; while it
        // keeps up, the database, the conversion and the sending run side by side.
        let (tickets, mut to_convert) = mpsc::channel::<Result<TicketChunk>>(1);
        let (chunks, to_send) = mpsc::channel::<Result<Vec<pb::ListTicketsResponse>, Status>>(1);
        let rights = listing.rights_check();
        let tokens = listing.resume_tokens();
        let metrics = self.metrics.clone();
        // The stream counts as running until the reader and the response have both ended.
        let running = Arc::new(metrics.list_stream());
        tokio::spawn({
            let metrics = metrics.clone();
            let running = running.clone();
            async move {
                let _running = running;
                let mut read = 0_u64;
                loop {
                    let chunk = listing.chunk_size(read);
                    let want = if limit == 0 {
                        chunk
                    } else {
                        chunk.min(limit - read)
                    };
                    if want == 0 {
                        return;
                    }
                    // The converter is gone with the client when no place frees up.
                    let Ok(place) = tickets.reserve().await else {
                        return;
                    };
                    let chunk = tokio::select! {
                        () = tickets.closed() => return,
                        chunk = listing.next_chunk(want) => chunk,
                    };
                    match chunk {
                        Ok(chunk) if chunk.is_empty() => return,
                        Ok(chunk) => {
                            metrics.read(chunk.len());
                            read += chunk.len() as u64;
                            place.send(Ok(chunk));
                        }
                        Err(error) => {
                            place.send(Err(error));
                            return;
                        }
                    }
                }
            }
        });
        tokio::spawn({
            let running = running.clone();
            async move {
                let _running = running;
                loop {
                    // A place for the converted chunk first: the reader's next chunk stays in
                    // its channel until the response has room for it.
                    let Ok(place) = chunks.reserve().await else {
                        return;
                    };
                    let chunk = tokio::select! {
                        () = chunks.closed() => return,
                        chunk = to_convert.recv() => chunk,
                    };
                    let Some(chunk) = chunk else {
                        return;
                    };
                    let converted = chunk.and_then(TicketChunk::tickets).map(|tickets| {
                        tickets
                            .into_iter()
                            .map(|ticket| pb::ListTicketsResponse {
                                resume_token: tokens.after(&ticket),
                                ticket: Some(to_proto(ticket)),
                            })
                            .collect()
                    });
                    place.send(converted.map_err(Status::from));
                }
            }
        });
        // The response takes the items of each chunk as the client has room for them (tonic
        // asks for the next when it can send), with no task or channel per item between.
        let sending = Sending {
            chunks: to_send,
            items: Vec::new().into_iter(),
            rights,
            metrics,
            _running: running,
        };
        let stream = futures_util::stream::unfold(Some(sending), |sending| async move {
            let mut sending = sending?;
            loop {
                if let Some(item) = sending.items.next() {
                    // Checked right before the item goes: an item the caller may no longer
                    // read is not sent.
                    if let Err(error) = sending.rights.recheck().await {
                        return Some((Err(error.into()), None));
                    }
                    sending.metrics.sent();
                    return Some((Ok(item), Some(sending)));
                }
                match sending.chunks.recv().await? {
                    Ok(items) => sending.items = items.into_iter(),
                    Err(status) => return Some((Err(status), None)),
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn transfer_tickets(
        &self,
        request: Request<pb::TransferTicketsRequest>,
    ) -> Result<Response<pb::TransferTicketsResponse>, Status> {
        let principal = principal(&request)?;
        let writer = writer(&request)?;
        let request = request.into_inner();
        let (from, to) = super::both(
            parse_id("from_customer_id", &request.from_customer_id),
            parse_id("to_customer_id", &request.to_customer_id),
        )?;
        let moved = self
            .tickets
            .transfer(&principal, &writer, from, to, request.open_only)
            .await?;
        Ok(Response::new(pb::TransferTicketsResponse {
            transferred: i64::try_from(moved.len()).unwrap_or(i64::MAX),
            ticket_numbers: moved.iter().map(|t| t.number).collect(),
        }))
    }

    async fn merge_tickets(
        &self,
        request: Request<pb::MergeTicketsRequest>,
    ) -> Result<Response<pb::MergeTicketsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let (source, target) = super::both(
            parse_id("source_id", &request.source_id),
            parse_id("target_id", &request.target_id),
        )?;
        let merge = self
            .tickets
            .merge(
                &principal,
                source,
                target,
                &request.source_etag,
                &request.target_etag,
            )
            .await?;
        Ok(Response::new(pb::MergeTicketsResponse {
            ticket: Some(to_proto(merge.target)),
            merged_ticket: Some(to_proto(merge.source)),
            comments_moved: i64::try_from(merge.comments_moved).unwrap_or(i64::MAX),
        }))
    }

    async fn get_ticket_history(
        &self,
        request: Request<pb::GetTicketHistoryRequest>,
    ) -> Result<Response<pb::GetTicketHistoryResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let page = self
            .tickets
            .history(&principal, id, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::GetTicketHistoryResponse {
            entries: page.items.into_iter().map(entry_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_organisation_overview(
        &self,
        request: Request<pb::GetOrganisationOverviewRequest>,
    ) -> Result<Response<pb::GetOrganisationOverviewResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let key = match request.key {
            Some(pb::get_organisation_overview_request::Key::Id(id)) => {
                OrganisationKey::Id(parse_id("id", &id)?)
            }
            Some(pb::get_organisation_overview_request::Key::Code(code)) if !code.is_empty() => {
                OrganisationKey::Code(code)
            }
            _ => return Err(Error::invalid("key", "give an id or a code").into()),
        };
        let overview = self
            .tickets
            .overview(
                &principal,
                &OverviewOf::Organisation(key),
                request.limit,
                super::sla::duration("reminder_window", request.reminder_window)?,
            )
            .await?;
        let parts = OverviewParts::from(overview);
        Ok(Response::new(pb::GetOrganisationOverviewResponse {
            organisation: parts.organisation,
            counts: Some(parts.counts),
            escalated_tickets: parts.escalated,
            warning_tickets: parts.warning,
            reminder_due_tickets: parts.reminder_due,
            upcoming_reminder_tickets: parts.reminder_upcoming,
            open_tickets: parts.open,
            customers: parts.customers,
            links: parts.links,
        }))
    }

    async fn get_customer_overview(
        &self,
        request: Request<pb::GetCustomerOverviewRequest>,
    ) -> Result<Response<pb::GetCustomerOverviewResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let key = match request.key {
            Some(pb::get_customer_overview_request::Key::Id(id)) => {
                CustomerKey::Id(parse_id("id", &id)?)
            }
            Some(pb::get_customer_overview_request::Key::Email(email)) if !email.is_empty() => {
                CustomerKey::Email(email)
            }
            _ => return Err(Error::invalid("key", "give an id or an email").into()),
        };
        let overview = self
            .tickets
            .overview(
                &principal,
                &OverviewOf::Customer(key),
                request.limit,
                super::sla::duration("reminder_window", request.reminder_window)?,
            )
            .await?;
        let parts = OverviewParts::from(overview);
        Ok(Response::new(pb::GetCustomerOverviewResponse {
            customer: parts.customer,
            counts: Some(parts.counts),
            escalated_tickets: parts.escalated,
            warning_tickets: parts.warning,
            reminder_due_tickets: parts.reminder_due,
            upcoming_reminder_tickets: parts.reminder_upcoming,
            open_tickets: parts.open,
            links: parts.links,
        }))
    }

    async fn watch_escalations(
        &self,
        request: Request<pb::WatchEscalationsRequest>,
    ) -> Result<Response<Self::WatchEscalationsStream>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let (group_ids, organisation_ids) = super::both(
            parse_ids("group_ids", &request.group_ids),
            parse_ids("organisation_ids", &request.organisation_ids),
        )?;
        let mut watch = self
            .escalations
            .watch(
                &principal,
                WatchFilter {
                    group_ids,
                    organisation_ids,
                },
            )
            .await?;
        let (sender, receiver) = mpsc::channel(self.watch_buffer.max(1));
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let _running = metrics.watcher();
            let send = |message: WatchMessage| {
                let sender = sender.clone();
                async move { sender.send(Ok(watch_to_proto(message))).await.is_ok() }
            };
            loop {
                // The snapshot, then live events until the watcher must resync.
                loop {
                    match watch.next_snapshot().await {
                        Ok(Some(chunk)) => {
                            for ticket in chunk {
                                if !send(WatchMessage::Snapshot(ticket)).await {
                                    return;
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(error) => {
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                    }
                }
                if !send(WatchMessage::SnapshotComplete).await {
                    return;
                }
                loop {
                    let message = tokio::select! {
                        () = sender.closed() => return,
                        message = watch.next_event() => message,
                    };
                    match message {
                        Ok(Some(message)) => {
                            let resync = message == WatchMessage::Resync;
                            if !send(message).await {
                                return;
                            }
                            if resync {
                                break;
                            }
                        }
                        // The server shuts down: the watcher must tell that from a normal end.
                        Ok(None) => {
                            let _ = sender.send(Err(Error::ShuttingDown.into())).await;
                            return;
                        }
                        Err(error) => {
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// The client's values of a ticket.
fn input(ticket: pb::Ticket) -> Result<TicketInput> {
    let (group_id, customer_id) = super::both(
        parse_optional_id("group_id", &ticket.group_id),
        parse_optional_id("customer_id", &ticket.customer_id),
    )?;
    let (organisation_id, assignee_id) = super::both(
        parse_optional_id("organisation_id", &ticket.organisation_id),
        parse_optional_id("assignee_id", &ticket.assignee_id),
    )?;
    let (sla_policy_id, additional_customer_ids) = super::both(
        parse_optional_id("sla_policy_id", &ticket.sla_policy_id),
        parse_ids("additional_customer_ids", &ticket.additional_customer_ids),
    )?;
    let state = match pb::TicketState::try_from(ticket.state) {
        Ok(pb::TicketState::Unspecified) => None,
        Ok(state) => Some(state_from_proto(state)),
        Err(_) => return Err(Error::invalid("state", "is not a TicketState")),
    };
    Ok(TicketInput {
        title: ticket.title,
        group_id,
        customer_id,
        organisation_id,
        additional_customer_ids,
        state,
        priority: ticket.priority,
        assignee_id,
        sla_policy_id,
        pending_until: super::parse_time("pending_until", ticket.pending_until)?,
        severity: super::severity_from_proto("severity", ticket.severity)?,
    })
}

fn query(request: pb::ListTicketsRequest) -> Result<TicketQuery> {
    let (organisation_ids, group_ids) = super::both(
        parse_ids("organisation_ids", &request.organisation_ids),
        parse_ids("group_ids", &request.group_ids),
    )?;
    let (customer_id, assignee_id) = super::both(
        parse_optional_id("customer_id", &request.customer_id),
        parse_optional_id("assignee_id", &request.assignee_id),
    )?;
    let mut states = Vec::new();
    for (index, raw) in request.states.iter().enumerate() {
        match pb::TicketState::try_from(*raw) {
            Ok(pb::TicketState::Unspecified) | Err(_) => {
                return Err(Error::invalid(
                    format!("states[{index}]"),
                    "is not a ticket state",
                ));
            }
            // A repeat says nothing more, and each value is a bound parameter of the query.
            Ok(state) => {
                let state = state_from_proto(state);
                if !states.contains(&state) {
                    states.push(state);
                }
            }
        }
    }
    let mut escalations = Vec::new();
    for (index, raw) in request.escalations.iter().enumerate() {
        let alert = match pb::Escalation::try_from(*raw) {
            Ok(pb::Escalation::None) => Alert::None,
            Ok(pb::Escalation::Warning) => Alert::Warning,
            Ok(pb::Escalation::Escalated) => Alert::Escalated,
            Ok(pb::Escalation::Unspecified) | Err(_) => {
                return Err(Error::invalid(
                    format!("escalations[{index}]"),
                    "is not an escalation level",
                ));
            }
        };
        if !escalations.contains(&alert) {
            escalations.push(alert);
        }
    }
    let key = match pb::TicketOrder::try_from(request.order_by) {
        Ok(pb::TicketOrder::Unspecified | pb::TicketOrder::Number) => TicketOrderKey::Number,
        Ok(pb::TicketOrder::CreateTime) => TicketOrderKey::CreateTime,
        Ok(pb::TicketOrder::UpdateTime) => TicketOrderKey::UpdateTime,
        Ok(pb::TicketOrder::Priority) => TicketOrderKey::Priority,
        Err(_) => return Err(Error::invalid("order_by", "is not a TicketOrder")),
    };
    Ok(TicketQuery {
        organisation_ids,
        customer_id,
        group_ids,
        states,
        escalations,
        reminder_due: request.reminder_due.then_some(true),
        assignee_id,
        created_from: super::parse_time("created_after", request.created_after)?,
        created_until: super::parse_time("created_before", request.created_before)?,
        updated_from: super::parse_time("updated_after", request.updated_after)?,
        updated_until: super::parse_time("updated_before", request.updated_before)?,
        text: request.text,
        order: TicketOrder {
            key,
            descending: request.descending,
        },
    })
}

fn state_from_proto(state: pb::TicketState) -> TicketState {
    match state {
        pb::TicketState::Unspecified | pb::TicketState::New => TicketState::New,
        pb::TicketState::Open => TicketState::Open,
        pb::TicketState::PendingReminder => TicketState::PendingReminder,
        pb::TicketState::PendingClose => TicketState::PendingClose,
        pb::TicketState::Closed => TicketState::Closed,
    }
}

fn state_to_proto(state: TicketState) -> pb::TicketState {
    match state {
        TicketState::New => pb::TicketState::New,
        TicketState::Open => pb::TicketState::Open,
        TicketState::PendingReminder => pb::TicketState::PendingReminder,
        TicketState::PendingClose => pb::TicketState::PendingClose,
        TicketState::Closed => pb::TicketState::Closed,
    }
}

fn alert_to_proto(alert: Alert) -> i32 {
    match alert {
        Alert::None => pb::Escalation::None,
        Alert::Warning => pb::Escalation::Warning,
        Alert::Escalated => pb::Escalation::Escalated,
    }
    .into()
}

fn deadline_to_proto(deadline: Option<Deadline>) -> i32 {
    match deadline {
        Some(Deadline::FirstResponse) => pb::Deadline::FirstResponse,
        Some(Deadline::Update) => pb::Deadline::Update,
        Some(Deadline::Solution) => pb::Deadline::Solution,
        None => pb::Deadline::Reminder,
    }
    .into()
}

/// A ticket for the API.
pub(crate) fn to_proto(ticket: Ticket) -> pb::Ticket {
    let time = |t: Option<Timestamp>| t.map(timestamp);
    pb::Ticket {
        etag: ticket.etag(),
        id: ticket.id.to_string(),
        number: ticket.number,
        title: ticket.title,
        group_id: ticket.group_id.to_string(),
        customer_id: ticket.customer_id.to_string(),
        organisation_id: optional_id(ticket.organisation_id),
        additional_customer_ids: ticket
            .additional_customer_ids
            .iter()
            .map(Uuid::to_string)
            .collect(),
        state: state_to_proto(ticket.state).into(),
        priority: i32::from(ticket.priority),
        assignee_id: optional_id(ticket.assignee_id),
        sla_policy_id: optional_id(ticket.sla_policy_id),
        applied_sla_policy_id: optional_id(ticket.applied_sla_policy_id),
        pending_until: time(ticket.pending_until),
        first_response_time: time(ticket.first_response_time),
        close_time: time(ticket.close_time),
        first_response_due: time(ticket.first_response_due),
        update_due: time(ticket.update_due),
        solution_due: time(ticket.solution_due),
        escalation: alert_to_proto(ticket.alerts.escalation()),
        first_response_escalation: alert_to_proto(ticket.alerts.first_response),
        update_escalation: alert_to_proto(ticket.alerts.update),
        solution_escalation: alert_to_proto(ticket.alerts.solution),
        reminder_due: ticket.alerts.reminder_due,
        create_time: Some(timestamp(ticket.create_time)),
        update_time: Some(timestamp(ticket.update_time)),
        merged_into_id: optional_id(ticket.merged_into),
        severity: super::severity_to_proto(ticket.severity),
        sla_contact_group_id: optional_id(ticket.sla_contact_group_id),
        reader_group_id: optional_id(ticket.reader_group_id),
    }
}

fn entry_to_proto(change: StoredChange) -> pb::HistoryEntry {
    pb::HistoryEntry {
        values_erased: change.values_erased,
        resource_id: change.resource_id.to_string(),
        seq: change.seq,
        time: Some(timestamp(change.time)),
        actor: change.actor,
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
    }
}

/// The API's kind of a stored change; a name this version does not know is unspecified.
pub(crate) fn change_kind_to_proto(name: &str) -> pb::ChangeKind {
    use pb::ChangeKind as P;
    match ChangeKind::from_name(name) {
        None => P::Unspecified,
        Some(ChangeKind::Created) => P::Created,
        Some(ChangeKind::Updated) => P::Updated,
        Some(ChangeKind::Deactivated) => P::Deactivated,
        Some(ChangeKind::Reactivated) => P::Reactivated,
        Some(ChangeKind::Deleted) => P::Deleted,
        Some(ChangeKind::Undeleted) => P::Undeleted,
        Some(ChangeKind::Merged) => P::Merged,
        Some(ChangeKind::MergedAway) => P::MergedAway,
        Some(ChangeKind::Transferred) => P::Transferred,
        Some(ChangeKind::Warning) => P::Warning,
        Some(ChangeKind::Escalated) => P::Escalated,
        Some(ChangeKind::ReminderDue) => P::ReminderDue,
        Some(ChangeKind::Cleared) => P::Cleared,
        Some(ChangeKind::AttachmentAdded) => P::AttachmentAdded,
        Some(ChangeKind::ActivityRun) => P::ActivityRun,
        Some(ChangeKind::Erased) => P::Erased,
        Some(ChangeKind::AttachmentDeleted) => P::AttachmentDeleted,
        Some(ChangeKind::AttachmentRestored) => P::AttachmentRestored,
        Some(ChangeKind::MembersAdded) => P::MembersAdded,
        Some(ChangeKind::MembersRemoved) => P::MembersRemoved,
    }
}

/// A JSON value as a `google.protobuf.Value`.
pub(crate) fn json_to_proto(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    let kind = match value {
        J::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        J::Bool(b) => Kind::BoolValue(b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_to_proto).collect(),
        }),
        J::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields
                .into_iter()
                .map(|(key, value)| (key, json_to_proto(value)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn watch_to_proto(message: WatchMessage) -> pb::WatchEscalationsResponse {
    use pb::WatchEventKind as K;
    let mut response = pb::WatchEscalationsResponse::default();
    match message {
        WatchMessage::Snapshot(ticket) => {
            response.kind = K::Snapshot.into();
            response.ticket = Some(to_proto(ticket));
        }
        WatchMessage::SnapshotComplete => response.kind = K::SnapshotComplete.into(),
        WatchMessage::Resync => response.kind = K::Resync.into(),
        WatchMessage::Event {
            change,
            ticket,
            time,
        } => {
            let (kind, deadline, at) = match change {
                AlertChange::Warning { deadline, at } => (K::Warning, Some(deadline), Some(at)),
                AlertChange::Escalated { deadline, at } => (K::Escalated, Some(deadline), Some(at)),
                AlertChange::ReminderDue { at } => (K::ReminderDue, None, Some(at)),
                AlertChange::Cleared { deadline } => (K::Cleared, deadline, None),
            };
            response.kind = kind.into();
            response.deadline = deadline_to_proto(deadline);
            response.deadline_time = at.map(timestamp);
            response.record_time = Some(timestamp(time));
            response.ticket = Some(to_proto(ticket));
        }
    }
    response
}

/// The parts of an overview, for the API.
struct OverviewParts {
    organisation: Option<pb::Organisation>,
    customer: Option<pb::Customer>,
    counts: pb::TicketCounts,
    escalated: Vec<pb::Ticket>,
    warning: Vec<pb::Ticket>,
    reminder_due: Vec<pb::Ticket>,
    reminder_upcoming: Vec<pb::Ticket>,
    open: Vec<pb::Ticket>,
    customers: Vec<pb::Customer>,
    links: Vec<pb::Link>,
}

impl From<Overview> for OverviewParts {
    fn from(overview: Overview) -> Self {
        let tickets = |tickets: Vec<Ticket>| tickets.into_iter().map(to_proto).collect();
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Self {
            organisation: overview.organisation.map(organisation_to_proto),
            customer: overview.customer.map(customer_to_proto),
            counts: pb::TicketCounts {
                open: count(overview.counts.open),
                closed: count(overview.counts.closed),
            },
            escalated: tickets(overview.escalated),
            warning: tickets(overview.warning),
            reminder_due: tickets(overview.reminder_due),
            reminder_upcoming: tickets(overview.reminder_upcoming),
            open: tickets(overview.open),
            links: overview
                .links
                .into_iter()
                .map(|(name, url)| pb::Link { name, url })
                .collect(),
            customers: overview
                .customers
                .into_iter()
                .map(customer_to_proto)
                .collect(),
        }
    }
}
