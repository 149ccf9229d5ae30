//! MergeTickets: the source's conversation (comments with their attachments) and customers
//! move to the target, the source closes for good pointing to it, the target's SLA deadlines
//! follow the merged conversation, both histories and the change feed say so, the watch sees
//! the source's alerts go; both tickets need RW; races are answered, never INTERNAL.

use clientele::{clock::Clock, proto::v1 as pb};
use jiff::SignedDuration;
use prost_types::value::Kind;
use tonic::{Code, Status};

use crate::{
    attachments::upload,
    comments::{on_ticket, write},
    support::{desk::Desk, *},
};

/// One call of a race, its answer reduced to success or its status.
type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Status>> + Send>>;

async fn merge(
    clients: &Clients,
    source: &pb::Ticket,
    target: &pb::Ticket,
) -> Result<pb::MergeTicketsResponse, Status> {
    Ok(clients
        .tickets
        .clone()
        .merge_tickets(pb::MergeTicketsRequest {
            source_id: source.id.clone(),
            target_id: target.id.clone(),
            source_etag: source.etag.clone(),
            target_etag: target.etag.clone(),
        })
        .await?
        .into_inner())
}

fn comment(body: &str, visibility: pb::CommentVisibility, ticket: &pb::Ticket) -> pb::Comment {
    pb::Comment {
        body: body.into(),
        visibility: visibility.into(),
        parent: on_ticket(ticket),
        ..Default::default()
    }
}

async fn thread(server: &TestServer, ticket: &pb::Ticket) -> Vec<pb::Comment> {
    server
        .comments()
        .list_comments(pb::ListCommentsRequest {
            parent: on_ticket(ticket),
            ..Default::default()
        })
        .await
        .expect("list comments")
        .into_inner()
        .comments
}

async fn history(server: &TestServer, ticket: &pb::Ticket) -> Vec<pb::HistoryEntry> {
    server
        .tickets()
        .get_ticket_history(pb::GetTicketHistoryRequest {
            id: ticket.id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner()
        .entries
}

fn string(value: &Option<prost_types::Value>) -> Option<&str> {
    match value.as_ref()?.kind.as_ref()? {
        Kind::StringValue(text) => Some(text),
        _ => None,
    }
}

/// The new value of `field` in `changes`, as a string.
fn new_value<'a>(changes: &'a [pb::FieldChange], field: &str) -> Option<&'a str> {
    changes
        .iter()
        .find(|c| c.field == field)
        .and_then(|c| string(&c.new_value))
}

async fn colleague(server: &TestServer, desk: &Desk, email: &str) -> pb::Customer {
    server
        .customer(pb::Customer {
            email: email.into(),
            last_name: "Colleague".into(),
            organisation_id: desk.organisation.id.clone(),
            ..Default::default()
        })
        .await
}

clock_tests! {
    async fn a_merge_moves_the_conversation_and_customers_and_closes_the_source_for_good(server, clock) {
        let desk = server.desk("acme").await;
        let policy = server.policy("Updates", None, Some(SignedDuration::from_hours(4)), None, 0, "").await;
        let second = colleague(&server, &desk, "second@acme.example").await;
        let third = colleague(&server, &desk, "third@acme.example").await;
        let target = desk.create(pb::Ticket { sla_policy_id: policy.id.clone(), ..desk.ticket("Printer broken") }).await;
        let source = desk.create(pb::Ticket {
            customer_id: second.id.clone(),
            additional_customer_ids: vec![third.id.clone()],
            ..desk.ticket("Printer still broken")
        }).await;
        write(&desk.as_agent, comment("We are on it", pb::CommentVisibility::Public, &target)).await.expect("answer");
        assert_eq!(desk::ticket(&server, &target.id).await.update_due, None, "answered");
        // The source's customer writes an hour later, with a file.
        clock.set(clock.now() + SignedDuration::from_hours(1));
        let contact = clock.now();
        let as_second = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(second.id.clone())).await);
        let later = write(&as_second, comment("Still nothing printed", pb::CommentVisibility::Public, &source)).await.expect("customer comment");
        let file = upload(&as_second, pb::AttachmentMetadata {
            comment_id: later.id.clone(),
            file_name: "photo.jpg".into(),
            content_type: "image/jpeg".into(),
            ..Default::default()
        }, b"a photo of the printer", 8).await.expect("upload");
        write(&desk.as_agent, comment("Asked facilities", pb::CommentVisibility::Internal, &source)).await.expect("note");

        let source = desk::ticket(&server, &source.id).await;
        let target = desk::ticket(&server, &target.id).await;
        clock.set(clock.now() + SignedDuration::from_mins(5));
        let merged_at = clock.now();
        let merge_answer = merge(&desk.as_agent, &source, &target).await.expect("merge");
        assert_eq!(merge_answer.comments_moved, 2);
        let closed = merge_answer.merged_ticket.clone().expect("source");
        let kept = merge_answer.ticket.clone().expect("target");
        assert_eq!(closed.merged_into_id, target.id);
        assert_eq!(closed.state(), pb::TicketState::Closed);
        assert_eq!(desk::time(&closed.close_time), Some(merged_at));
        assert_eq!(desk::ticket(&server, &source.id).await, closed, "answered as stored");
        assert_eq!(desk::ticket(&server, &target.id).await, kept, "answered as stored");
        let mut customers = vec![second.id.clone(), third.id.clone()];
        customers.sort();
        assert_eq!(kept.additional_customer_ids, customers);
        assert_eq!(kept.customer_id, target.customer_id);
        assert_eq!(kept.state(), target.state(), "the target's state is its own");
        // The source's customer wrote after the target's answer: the update clock runs again
        // from that contact, under the target's policy.
        assert_eq!(desk::time(&kept.update_due), Some(contact + SignedDuration::from_hours(4)));

        // The conversation is the target's, attachments included; the source has none left.
        let moved = thread(&server, &kept).await;
        assert_eq!(moved.len(), 3);
        let photo = moved.iter().find(|c| c.id == later.id).expect("the customer's comment moved");
        assert_eq!(photo.attachments.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [file.id.as_str()]);
        assert!(thread(&server, &closed).await.is_empty());
        // The source's customer now reads it in the target.
        let seen = as_second.comments.clone().list_comments(pb::ListCommentsRequest { parent: on_ticket(&kept), ..Default::default() }).await.expect("customer reads the target").into_inner().comments;
        assert!(seen.iter().any(|c| c.id == later.id));

        // Both histories say so; the target's shows the source's entries from now on.
        let source_history = history(&server, &closed).await;
        let away = source_history.iter().find(|e| e.kind() == pb::ChangeKind::MergedAway).expect("MERGED_AWAY");
        assert_eq!(new_value(&away.changes, "merged_into"), Some(target.id.as_str()));
        assert!(source_history.iter().all(|e| e.resource_id == source.id));
        let target_history = history(&server, &kept).await;
        let taken = target_history.iter().find(|e| e.kind() == pb::ChangeKind::Merged).expect("MERGED");
        assert_eq!(new_value(&taken.changes, "merged_from"), Some(source.id.as_str()));
        assert_eq!(taken.resource_id, target.id);
        for entry in &source_history {
            assert!(target_history.contains(entry), "{entry:?} also in the target's history");
        }
        assert!(target_history.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
        // The change feed carries both.
        let feed = server.changes().list_changes(pb::ListChangesRequest { page_size: 1000, ..Default::default() }).await.expect("feed").into_inner().events;
        assert!(feed.iter().any(|e| e.resource_id == source.id && e.kind() == pb::ChangeKind::MergedAway));
        assert!(feed.iter().any(|e| e.resource_id == target.id && e.kind() == pb::ChangeKind::Merged));

        // A retry of the merge (its answer lost) answers it as it stands.
        let again = merge(&desk.as_agent, &source, &target).await.expect("retry");
        assert_eq!((again.comments_moved, again.ticket, again.merged_ticket), (0, Some(kept.clone()), Some(closed.clone())));
        // The merged ticket is closed for good: no change, no comment, no merge either way.
        let other = desk.create(desk.ticket("Another")).await;
        let before = server.snapshot().await;
        let refused = desk::update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Open.into(), ..closed.clone() }, &["state"]).await;
        assert_eq!(reason(&expect_code(refused, Code::FailedPrecondition)).as_deref(), Some("TICKET_MERGED"));
        for visibility in [pb::CommentVisibility::Public, pb::CommentVisibility::Internal] {
            let refused = write(&desk.as_agent, comment("Too late", visibility, &closed)).await;
            assert_eq!(reason(&expect_code(refused, Code::FailedPrecondition)).as_deref(), Some("TICKET_MERGED"));
        }
        let refused = merge(&desk.as_agent, &other, &closed).await;
        assert_eq!(reason(&expect_code(refused, Code::FailedPrecondition)).as_deref(), Some("TICKET_MERGED"));
        let refused = merge(&desk.as_agent, &closed, &other).await;
        assert_eq!(reason(&expect_code(refused, Code::FailedPrecondition)).as_deref(), Some("TICKET_MERGED"));
        assert_eq!(server.snapshot().await, before, "refusals write nothing");
        assert_eq!(desk::ticket(&server, &source.id).await, closed);
        assert_eq!(desk::ticket(&server, &other.id).await, other);
    }

    async fn a_merge_ends_the_sources_escalation_on_the_watch(server, clock) {
        let desk = server.desk("acme").await;
        let policy = server.policy("Fast", Some(SignedDuration::from_hours(1)), None, None, 0, "").await;
        let source = desk.create(pb::Ticket { sla_policy_id: policy.id.clone(), ..desk.ticket("Duplicate") }).await;
        let target = desk.create(desk.ticket("Original")).await;
        clock.set(clock.now() + SignedDuration::from_hours(2));
        desk::eventually("the source escalates", || {
            let server = &server;
            let id = source.id.clone();
            async move { desk::ticket(server, &id).await.escalation() == pb::Escalation::Escalated }
        }).await;
        let mut watch = desk.as_agent.tickets.clone().watch_escalations(pb::WatchEscalationsRequest::default()).await.expect("watch").into_inner();
        loop {
            let message = watch.message().await.expect("watch").expect("message");
            if message.kind() == pb::WatchEventKind::SnapshotComplete { break; }
        }
        let source = desk::ticket(&server, &source.id).await;
        let target = desk::ticket(&server, &target.id).await;
        let merged = merge(&desk.as_agent, &source, &target).await.expect("merge");
        assert_eq!(merged.merged_ticket.expect("source").escalation(), pb::Escalation::None);
        let cleared = loop {
            let message = tokio::time::timeout(PATIENCE, watch.message()).await.expect("in time").expect("watch").expect("message");
            if message.kind() != pb::WatchEventKind::Escalated {
                break message;
            }
        };
        assert_eq!(cleared.kind(), pb::WatchEventKind::Cleared);
        assert_eq!(cleared.ticket.expect("ticket").id, source.id);
    }
}

backend_tests! {
    async fn a_merge_needs_rw_on_both_tickets_and_a_well_formed_request(server) {
        let desk = server.desk("acme").await;
        let elsewhere = server.desk("elsewhere").await;
        let mine = desk.create(desk.ticket("Mine")).await;
        let own = desk.create(desk.ticket("Own too")).await;
        let theirs = elsewhere.create(elsewhere.ticket("Theirs")).await;
        // A ticket the agent cannot read is not found, either way round.
        expect_code(merge(&desk.as_agent, &mine, &theirs).await, Code::NotFound);
        expect_code(merge(&desk.as_agent, &theirs, &mine).await, Code::NotFound);
        // Reading is not enough.
        server.grant(pb::subject::Subject::AgentId(desk.agent.id.clone()), &elsewhere.group.id, pb::PermissionLevel::Ro, pb::GrantContext::Unspecified).await;
        let before = server.snapshot().await;
        let denied = expect_code(merge(&desk.as_agent, &mine, &theirs).await, Code::PermissionDenied);
        assert_eq!(reason(&denied).as_deref(), Some("READ_ONLY"));
        expect_code(merge(&desk.as_agent, &theirs, &mine).await, Code::PermissionDenied);
        // Customers do not merge, even their own tickets.
        expect_code(merge(&desk.as_customer, &mine, &own).await, Code::PermissionDenied);
        // Bad requests name their field.
        expect_invalid(merge(&desk.as_agent, &mine, &mine).await, "target_id");
        expect_invalid(merge(&desk.as_agent, &pb::Ticket { id: "nope".into(), ..mine.clone() }, &own).await, "source_id");
        expect_invalid(merge(&desk.as_agent, &mine, &pb::Ticket { id: "\0".into(), ..own.clone() }).await, "target_id");
        expect_invalid(merge(&desk.as_agent, &pb::Ticket { etag: String::new(), ..mine.clone() }, &own).await, "source_etag");
        expect_invalid(merge(&desk.as_agent, &mine, &pb::Ticket { etag: String::new(), ..own.clone() }).await, "target_etag");
        assert_eq!(server.snapshot().await, before, "refusals write nothing");
        for ticket in [&mine, &own, &theirs] {
            assert_eq!(&desk::ticket(&server, &ticket.id).await, ticket);
        }
        // A stale etag is ABORTED.
        let renamed = desk::update(&desk.as_agent, pb::Ticket { title: "Mine, renamed".into(), ..mine.clone() }, &["title"]).await.expect("rename");
        expect_code(merge(&desk.as_agent, &mine, &own).await, Code::Aborted);
        // With RW on both groups it goes through.
        merge(&desk.as_agent, &renamed, &desk::ticket(&server, &own.id).await).await.expect("merge");
    }

    async fn merges_racing_each_other_updates_and_comments_are_answered_never_internal(server) {
        let desk = server.desk("acme").await;
        for round in 0..4 {
            let a = desk.create(desk.ticket(&format!("A{round}"))).await;
            let b = desk.create(desk.ticket(&format!("B{round}"))).await;
            let calls: Vec<Call> = vec![
                Box::pin({ let (c, a, b) = (desk.as_agent.clone(), a.clone(), b.clone()); async move { merge(&c, &a, &b).await.map(drop) } }),
                Box::pin({ let (c, a, b) = (desk.as_agent.clone(), a.clone(), b.clone()); async move { merge(&c, &b, &a).await.map(drop) } }),
                Box::pin({ let (c, a) = (desk.as_agent.clone(), a.clone()); async move { desk::update(&c, pb::Ticket { priority: 5, ..a }, &["priority"]).await.map(drop) } }),
                Box::pin({ let (c, b) = (desk.as_agent.clone(), b.clone()); async move { desk::update(&c, pb::Ticket { title: "renamed".into(), ..b }, &["title"]).await.map(drop) } }),
                Box::pin({ let (c, a) = (desk.as_agent.clone(), a.clone()); async move { write(&c, comment("note on A", pb::CommentVisibility::Internal, &a)).await.map(drop) } }),
                Box::pin({ let (c, b) = (desk.as_agent.clone(), b.clone()); async move { write(&c, comment("reply on B", pb::CommentVisibility::Public, &b)).await.map(drop) } }),
            ];
            let results = concurrently(calls).await;
            for result in &results {
                if let Err(status) = result {
                    assert!(
                        matches!(status.code(), Code::Aborted | Code::FailedPrecondition),
                        "round {round}: {status:?}"
                    );
                }
            }
            assert!(results[0].is_err() || results[1].is_err(), "round {round}: not both ways");
            // Whatever won, no comment is left on a merged ticket.
            let (a, b) = (desk::ticket(&server, &a.id).await, desk::ticket(&server, &b.id).await);
            for ticket in [&a, &b] {
                if !ticket.merged_into_id.is_empty() {
                    assert!(thread(&server, ticket).await.is_empty(), "round {round}: comments left on a merged ticket");
                    assert_eq!(ticket.state(), pb::TicketState::Closed);
                }
            }
            assert!(a.merged_into_id.is_empty() || b.merged_into_id.is_empty());
            let comments = results[4].is_ok() as usize + results[5].is_ok() as usize;
            assert_eq!(thread(&server, &a).await.len() + thread(&server, &b).await.len(), comments, "round {round}: no comment lost");
        }
    }

    async fn a_ticket_merged_twice_shows_both_earlier_histories(server) {
        let desk = server.desk("acme").await;
        let first = desk.create(desk.ticket("First")).await;
        let second = desk.create(desk.ticket("Second")).await;
        let third = desk.create(desk.ticket("Third")).await;
        merge(&desk.as_agent, &first, &second).await.expect("first into second");
        let second = desk::ticket(&server, &second.id).await;
        merge(&desk.as_agent, &second, &third).await.expect("second into third");
        let third = desk::ticket(&server, &third.id).await;
        let entries = history(&server, &third).await;
        let created: Vec<&str> = entries.iter().filter(|e| e.kind() == pb::ChangeKind::Created).map(|e| e.resource_id.as_str()).collect();
        assert_eq!(created, [first.id.as_str(), second.id.as_str(), third.id.as_str()], "oldest first, through both merges");
    }
}
