//! CommentService: who reads which comment (PUBLIC, INTERNAL, PRIVATE and its stub), agents'
//! notes on organisations and customers, the effects of comments on tickets, soft delete,
//! bad input, and merges.

use clientele::{clock::Clock, proto::v1 as pb, store::Table};
use jiff::SignedDuration;
use tonic::{Code, Status};

use crate::support::{
    Clients, PATIENCE, TestServer,
    desk::{self, Desk, time, update},
    expect_code, expect_invalid, reason,
};

pub fn on_ticket(ticket: &pb::Ticket) -> Option<pb::CommentParent> {
    Some(pb::CommentParent {
        parent: Some(pb::comment_parent::Parent::TicketId(ticket.id.clone())),
    })
}

pub fn customer_party(id: &str) -> pb::Party {
    pb::Party {
        party: Some(pb::party::Party::CustomerId(id.into())),
    }
}

pub fn agent_party(id: &str) -> pb::Party {
    pb::Party {
        party: Some(pb::party::Party::AgentId(id.into())),
    }
}

/// Writes `comment` as `clients`.
pub async fn write(clients: &Clients, comment: pb::Comment) -> Result<pb::Comment, Status> {
    Ok(clients
        .comments
        .clone()
        .create_comment(pb::CreateCommentRequest {
            comment: Some(comment),
            request_id: String::new(),
        })
        .await?
        .into_inner()
        .comment
        .expect("comment"))
}

/// The comments on `parent` as `clients` sees them.
async fn thread(
    clients: &Clients,
    parent: Option<pb::CommentParent>,
    include_deleted: bool,
) -> Vec<pb::Comment> {
    clients
        .comments
        .clone()
        .list_comments(pb::ListCommentsRequest {
            parent,
            include_deleted,
            ..Default::default()
        })
        .await
        .expect("list comments")
        .into_inner()
        .comments
}

fn text(
    body: &str,
    visibility: pb::CommentVisibility,
    parent: Option<pb::CommentParent>,
) -> pb::Comment {
    pb::Comment {
        body: body.into(),
        visibility: visibility.into(),
        parent,
        ..Default::default()
    }
}

/// What a reader sees of a comment: its text, or "stub" for a redacted one.
fn seen(comments: &[pb::Comment]) -> Vec<String> {
    comments
        .iter()
        .map(|c| {
            if c.redacted {
                "stub".to_owned()
            } else {
                c.body.clone()
            }
        })
        .collect()
}

struct Conversation {
    desk: Desk,
    ticket: pb::Ticket,
    colleague: pb::Customer,
    as_colleague: Clients,
    other_agent: pb::Agent,
    as_other_agent: Clients,
}

async fn conversation(server: &TestServer) -> Conversation {
    let desk = server.desk("acme").await;
    let ticket = desk.create(desk.ticket("Talk")).await;
    let colleague = server
        .customer(pb::Customer {
            email: "colleague@acme.example".into(),
            organisation_id: desk.organisation.id.clone(),
            ..Default::default()
        })
        .await;
    let as_colleague = server.as_token(
        &server
            .token(pb::token_owner::Owner::CustomerId(colleague.id.clone()))
            .await,
    );
    let other_agent = server.agent("second-agent", false).await;
    server
        .grant(
            pb::subject::Subject::AgentId(other_agent.id.clone()),
            &desk.group.id,
            pb::PermissionLevel::Rw,
            pb::GrantContext::Unspecified,
        )
        .await;
    let as_other_agent = server.as_token(
        &server
            .token(pb::token_owner::Owner::AgentId(other_agent.id.clone()))
            .await,
    );
    Conversation {
        desk,
        ticket,
        colleague,
        as_colleague,
        other_agent,
        as_other_agent,
    }
}

backend_tests! {
    async fn each_reader_sees_public_internal_and_private_comments_as_their_visibility_says(server) {
        let talk = conversation(&server).await;
        let parent = on_ticket(&talk.ticket);
        let desk = &talk.desk;
        write(&desk.as_agent, text("public", pb::CommentVisibility::Public, parent.clone())).await.expect("public");
        write(&desk.as_agent, text("internal", pb::CommentVisibility::Internal, parent.clone())).await.expect("internal");
        write(&desk.as_agent, pb::Comment {
            recipients: vec![customer_party(&desk.customer.id)],
            ..text("private to the customer", pb::CommentVisibility::Private, parent.clone())
        }).await.expect("private");
        write(&desk.as_customer, pb::Comment {
            recipients: vec![agent_party(&talk.other_agent.id)],
            ..text("private to the second agent", pb::CommentVisibility::Private, parent.clone())
        }).await.expect("customer's private");
        let views: [(&str, &Clients, [&str; 4]); 4] = [
            ("the writing agent", &desk.as_agent, ["public", "internal", "private to the customer", "stub"]),
            ("another agent", &talk.as_other_agent, ["public", "internal", "stub", "private to the second agent"]),
            ("the customer", &desk.as_customer, ["public", "private to the customer", "private to the second agent", ""]),
            ("a colleague", &talk.as_colleague, ["public", "stub", "stub", ""]),
        ];
        for (who, clients, expected) in views {
            let expected: Vec<String> = expected.iter().filter(|e| !e.is_empty()).map(|e| (*e).to_owned()).collect();
            assert_eq!(seen(&thread(clients, parent.clone(), false).await), expected, "{who}");
        }
        // A stub tells that a comment exists and who wrote it, nothing of its content.
        let stubs: Vec<pb::Comment> = thread(&talk.as_colleague, parent.clone(), false).await.into_iter().filter(|c| c.redacted).collect();
        assert!(stubs.iter().all(|c| c.body.is_empty() && c.recipients.is_empty() && c.attachments.is_empty() && c.author.is_some()));
        // Searching does not look into private text the reader may not read.
        let found = talk.as_colleague.comments.clone().list_comments(pb::ListCommentsRequest { text: "private".into(), ..Default::default() }).await.expect("search").into_inner().comments;
        assert!(found.is_empty(), "{found:?}");
        let found = desk.as_customer.comments.clone().list_comments(pb::ListCommentsRequest { text: "PRIVATE TO".into(), ..Default::default() }).await.expect("search").into_inner().comments;
        assert_eq!(seen(&found), ["private to the customer", "private to the second agent"]);
        // An internal comment is not found by a customer at all.
        let internal = thread(&desk.as_agent, parent, false).await.into_iter().find(|c| c.body == "internal").expect("internal");
        expect_code(desk.as_customer.comments.clone().get_comment(pb::GetCommentRequest { id: internal.id }).await, Code::NotFound);
    }

    async fn notes_on_organisations_and_customers_are_for_agents(server) {
        let desk = server.desk("acme").await;
        let on_org = Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::OrganisationId(desk.organisation.id.clone())) });
        let on_customer = Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::CustomerId(desk.customer.id.clone())) });
        let manager = server.agent("manager", true).await;
        let as_manager = server.as_token(&server.token(pb::token_owner::Owner::AgentId(manager.id)).await);
        write(&as_manager, text("Call before 10, ask for Kim", pb::CommentVisibility::Public, on_org.clone())).await.expect("note");
        write(&as_manager, text("Prefers email", pb::CommentVisibility::Internal, on_customer.clone())).await.expect("note");
        // Agents read them by default; writing needs details_access WRITE (by default, the
        // customer administrators').
        assert_eq!(seen(&thread(&desk.as_agent, on_org.clone(), false).await), ["Call before 10, ask for Kim"]);
        assert_eq!(seen(&thread(&desk.as_agent, on_customer.clone(), false).await), ["Prefers email"]);
        let status = expect_code(write(&desk.as_agent, text("Mine", pb::CommentVisibility::Public, on_org.clone())).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("NO_DETAILS_WRITE"));
        // Customers neither read nor write them, not even on themselves.
        for parent in [on_org.clone(), on_customer.clone()] {
            expect_code(desk.as_customer.comments.clone().list_comments(pb::ListCommentsRequest { parent: parent.clone(), ..Default::default() }).await, Code::PermissionDenied);
            expect_code(write(&desk.as_customer, text("Hello", pb::CommentVisibility::Public, parent)).await, Code::PermissionDenied);
        }
        assert!(thread(&desk.as_customer, None, false).await.is_empty(), "no notes in a customer's list");
        // A private note names agents only.
        let status = expect_code(write(&as_manager, pb::Comment {
            recipients: vec![customer_party(&desk.customer.id)],
            ..text("Psst", pb::CommentVisibility::Private, on_customer)
        }).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("RECIPIENT_CANNOT_READ"));
    }

    async fn deleted_comments_are_listed_only_when_asked_for_and_can_be_restored(server) {
        let talk = conversation(&server).await;
        let desk = &talk.desk;
        let parent = on_ticket(&talk.ticket);
        let comment = write(&desk.as_customer, text("Oops", pb::CommentVisibility::Public, parent.clone())).await.expect("write");
        // Someone else's comment is not the colleague's to delete.
        let status = expect_code(talk.as_colleague.comments.clone().delete_comment(pb::DeleteCommentRequest { id: comment.id.clone(), etag: server.comment_etag(&comment.id).await }).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("NOT_AUTHOR"));
        expect_invalid(desk.as_customer.comments.clone().delete_comment(pb::DeleteCommentRequest { id: comment.id.clone(), etag: String::new() }).await, "etag");
        expect_code(desk.as_customer.comments.clone().delete_comment(pb::DeleteCommentRequest { id: comment.id.clone(), etag: "v9".into() }).await, Code::Aborted);
        let deleted = desk.as_customer.comments.clone().delete_comment(pb::DeleteCommentRequest { id: comment.id.clone(), etag: comment.etag.clone() }).await.expect("delete").into_inner().comment.expect("comment");
        assert!(deleted.delete_time.is_some());
        assert!(thread(&desk.as_agent, parent.clone(), false).await.is_empty());
        let listed = thread(&desk.as_agent, parent.clone(), true).await;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].delete_time.is_some(), "listed as deleted");
        // An agent with write on the ticket moderates: it restores the customer's comment.
        let restored = desk.as_agent.comments.clone().undelete_comment(pb::UndeleteCommentRequest { id: comment.id.clone(), etag: server.comment_etag(&comment.id).await }).await.expect("undelete").into_inner().comment.expect("comment");
        assert_eq!(restored.delete_time, None);
        assert_eq!(seen(&thread(&desk.as_agent, parent, false).await), ["Oops"]);
        let log = server.store.changes_of(clientele::model::ResourceType::Comment, uuid::Uuid::parse_str(&comment.id).expect("uuid")).await.expect("log");
        let kinds: Vec<&str> = log.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "deleted", "undeleted"]);
    }

    async fn bad_comments_are_refused_naming_the_field_and_nothing_is_written(server) {
        let talk = conversation(&server).await;
        let desk = &talk.desk;
        let parent = on_ticket(&talk.ticket);
        let outsider = server.customer(pb::Customer { email: "outsider@elsewhere.example".into(), ..Default::default() }).await;
        let agent_without_grant = server.agent("no-grant", false).await;
        let before = (server.count(Table::Comments).await, server.count(Table::ChangeEvents).await);
        let public = |body: &str| text(body, pb::CommentVisibility::Public, parent.clone());
        expect_invalid(write(&desk.as_agent, public("")).await, "comment.body");
        expect_invalid(write(&desk.as_agent, public("   \n ")).await, "comment.body");
        expect_invalid(write(&desk.as_agent, public(&"x".repeat(64 * 1024 + 1))).await, "comment.body");
        expect_invalid(write(&desk.as_agent, public("bell \u{7}")).await, "comment.body");
        expect_invalid(write(&desk.as_agent, text("Orphan", pb::CommentVisibility::Public, None)).await, "comment.parent");
        let unknown = uuid::Uuid::now_v7().to_string();
        expect_invalid(write(&desk.as_agent, text("Lost", pb::CommentVisibility::Public, Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::TicketId(unknown.clone())) }))).await, "comment.parent.ticket_id");
        let admin = server.as_token(&server.admin_secret);
        expect_invalid(write(&admin, text("Lost", pb::CommentVisibility::Public, Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::OrganisationId(unknown.clone())) }))).await, "comment.parent.organisation_id");
        expect_invalid(write(&desk.as_agent, text("Lost", pb::CommentVisibility::Public, Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::TicketId("nope".into())) }))).await, "comment.parent.ticket_id");
        expect_invalid(write(&desk.as_customer, text("Secret", pb::CommentVisibility::Internal, parent.clone())).await, "comment.visibility");
        expect_invalid(write(&desk.as_agent, pb::Comment { visibility: 9, ..public("Odd") }).await, "comment.visibility");
        expect_invalid(write(&desk.as_agent, pb::Comment { recipients: vec![customer_party(&desk.customer.id)], ..public("To whom?") }).await, "comment.recipients");
        let private = |recipients: Vec<pb::Party>| pb::Comment { recipients, ..text("Psst", pb::CommentVisibility::Private, parent.clone()) };
        expect_invalid(write(&desk.as_agent, private(vec![agent_party(&desk.agent.id)])).await, "comment.recipients[0]");
        expect_invalid(write(&desk.as_agent, private(vec![customer_party(&unknown)])).await, "comment.recipients[0]");
        expect_invalid(write(&desk.as_agent, private(vec![customer_party(&desk.customer.id), customer_party(&desk.customer.id)])).await, "comment.recipients[1]");
        expect_invalid(write(&desk.as_agent, private(vec![pb::Party { party: None }])).await, "comment.recipients[0]");
        let status = expect_code(write(&desk.as_agent, private(vec![customer_party(&outsider.id)])).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("RECIPIENT_CANNOT_READ"));
        expect_code(write(&desk.as_agent, private(vec![agent_party(&agent_without_grant.id)])).await, Code::FailedPrecondition);
        assert_eq!((server.count(Table::Comments).await, server.count(Table::ChangeEvents).await), before, "nothing was written");
        // A ticket the caller may not read is named like a missing one.
        let stranger = server.desk("stranger").await;
        let theirs = stranger.create(stranger.ticket("Theirs")).await;
        expect_invalid(write(&desk.as_customer, text("Hi", pb::CommentVisibility::Public, on_ticket(&theirs))).await, "comment.parent.ticket_id");
    }

    async fn lists_filter_by_author_time_and_text_and_page_without_gaps(server) {
        let talk = conversation(&server).await;
        let desk = &talk.desk;
        let parent = on_ticket(&talk.ticket);
        let mut written = Vec::new();
        for n in 0..7 {
            let (clients, visibility) = if n % 2 == 0 { (&desk.as_agent, pb::CommentVisibility::Public) } else { (&desk.as_customer, pb::CommentVisibility::Public) };
            written.push(write(clients, text(&format!("message {n} 100% done_{n}"), visibility, parent.clone())).await.expect("write"));
        }
        let list = |request: pb::ListCommentsRequest| {
            let mut comments = desk.as_agent.comments.clone();
            async move { comments.list_comments(request).await.map(|r| r.into_inner()) }
        };
        let bodies = |comments: &[pb::Comment]| comments.iter().map(|c| c.body.clone()).collect::<Vec<_>>();
        // By author.
        let by_customer = list(pb::ListCommentsRequest { author: Some(customer_party(&desk.customer.id)), ..Default::default() }).await.expect("by author");
        assert_eq!(bodies(&by_customer.comments), ["message 1 100% done_1", "message 3 100% done_3", "message 5 100% done_5"]);
        // By time: [after, before).
        let window = list(pb::ListCommentsRequest { created_after: written[2].create_time, created_before: written[5].create_time, ..Default::default() }).await.expect("by time");
        assert_eq!(bodies(&window.comments), ["message 2 100% done_2", "message 3 100% done_3", "message 4 100% done_4"]);
        // By text; % and _ are plain characters, not patterns.
        let found = list(pb::ListCommentsRequest { text: "0% DONE_4".into(), ..Default::default() }).await.expect("by text");
        assert_eq!(bodies(&found.comments), ["message 4 100% done_4"]);
        let none = list(pb::ListCommentsRequest { text: "message _".into(), ..Default::default() }).await.expect("by text");
        assert!(none.comments.is_empty());
        // Pages of three: every comment once, in order, and a last page without a token.
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = list(pb::ListCommentsRequest { parent: parent.clone(), page_size: 3, page_token: token.clone(), ..Default::default() }).await.expect("page");
            assert!(page.comments.len() <= 3);
            seen.extend(bodies(&page.comments));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
            if seen.len() == 3 {
                // A comment written between pages comes last, not lost.
                written.push(write(&desk.as_agent, text("late", pb::CommentVisibility::Public, parent.clone())).await.expect("late"));
            }
        }
        assert_eq!(seen, bodies(&written));
        // A token belongs to its filters; a negative page size is refused.
        let first = list(pb::ListCommentsRequest { page_size: 2, ..Default::default() }).await.expect("page");
        expect_invalid(list(pb::ListCommentsRequest { page_size: 2, page_token: first.next_page_token, text: "message".into(), ..Default::default() }).await, "page_token");
        expect_invalid(list(pb::ListCommentsRequest { page_size: -1, ..Default::default() }).await, "page_size");
        expect_invalid(list(pb::ListCommentsRequest { created_after: written[3].create_time, created_before: written[1].create_time, ..Default::default() }).await, "created_before");
    }

    async fn reading_a_comment_needs_reading_its_ticket_and_writing_needs_writing_it(server) {
        let talk = conversation(&server).await;
        let desk = &talk.desk;
        let parent = on_ticket(&talk.ticket);
        let comment = write(&desk.as_agent, text("Status update", pb::CommentVisibility::Public, parent.clone())).await.expect("write");
        // An agent with RO on the group reads but may not write.
        let reader = server.agent("reader", false).await;
        server.grant(pb::subject::Subject::AgentId(reader.id.clone()), &desk.group.id, pb::PermissionLevel::Ro, pb::GrantContext::Unspecified).await;
        let as_reader = server.as_token(&server.token(pb::token_owner::Owner::AgentId(reader.id)).await);
        assert_eq!(seen(&thread(&as_reader, parent.clone(), false).await), ["Status update"]);
        let status = expect_code(write(&as_reader, text("Me too", pb::CommentVisibility::Public, parent.clone())).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("READ_ONLY"));
        let status = expect_code(as_reader.comments.clone().delete_comment(pb::DeleteCommentRequest { id: comment.id.clone(), etag: "stale".into() }).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("NOT_AUTHOR"), "refused for who it is before its etag is looked at");
        // An agent without a grant and a customer of another organisation read nothing of it.
        let outsider_agent = server.agent("outsider", false).await;
        let as_outsider_agent = server.as_token(&server.token(pb::token_owner::Owner::AgentId(outsider_agent.id)).await);
        let elsewhere = server.desk("elsewhere").await;
        for (who, clients) in [("agent without grant", &as_outsider_agent), ("customer of another organisation", &elsewhere.as_customer)] {
            expect_code(clients.comments.clone().get_comment(pb::GetCommentRequest { id: comment.id.clone() }).await, Code::NotFound);
            assert!(thread(clients, None, false).await.iter().all(|c| c.id != comment.id), "{who} lists it");
            let listed = clients.comments.clone().list_comments(pb::ListCommentsRequest { parent: parent.clone(), ..Default::default() }).await.expect("list").into_inner();
            assert!(listed.comments.is_empty(), "{who} lists the ticket's comments");
        }
        // Notes on a customer are written by agents with details_access WRITE only.
        let on_customer = Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::CustomerId(desk.customer.id.clone())) });
        let status = expect_code(write(&desk.as_agent, text("Prefers phone", pb::CommentVisibility::Internal, on_customer)).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("NO_DETAILS_WRITE"));
    }

    async fn a_retried_comment_with_the_same_request_id_is_written_once(server) {
        let talk = conversation(&server).await;
        let request = pb::CreateCommentRequest { comment: Some(text("Once", pb::CommentVisibility::Public, on_ticket(&talk.ticket))), request_id: "comment-once".into() };
        let mut comments = talk.desk.as_agent.comments.clone();
        let first = comments.create_comment(request.clone()).await.expect("first").into_inner().comment.expect("comment");
        let again = comments.create_comment(request).await.expect("retry").into_inner().comment.expect("comment");
        assert_eq!(first.id, again.id);
        assert_eq!(server.count(Table::Comments).await, 1);
    }

    async fn merging_customers_moves_their_comments_and_notes(server) {
        let talk = conversation(&server).await;
        let desk = &talk.desk;
        let written = write(&talk.as_colleague, text("From the duplicate", pb::CommentVisibility::Public, on_ticket(&talk.ticket))).await.expect("write");
        let addressed = write(&desk.as_agent, pb::Comment {
            recipients: vec![customer_party(&talk.colleague.id)],
            ..text("To the duplicate", pb::CommentVisibility::Private, on_ticket(&talk.ticket))
        }).await.expect("write");
        let manager = server.agent("manager", true).await;
        let as_manager = server.as_token(&server.token(pb::token_owner::Owner::AgentId(manager.id)).await);
        let note = write(&as_manager, text("A note on the duplicate", pb::CommentVisibility::Public, Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::CustomerId(talk.colleague.id.clone())) }))).await.expect("note");
        server.customers().merge_customers(pb::MergeCustomersRequest { source_id: talk.colleague.id.clone(), target_id: desk.customer.id.clone(), source_etag: server.customer_etag(&talk.colleague.id).await, target_etag: server.customer_etag(&desk.customer.id).await }).await.expect("merge");
        // As the agent who wrote the private comment (an admin would see its stub).
        let get = |id: String| { let mut comments = desk.as_agent.comments.clone(); async move { comments.get_comment(pb::GetCommentRequest { id }).await.expect("get").into_inner().comment.expect("comment") } };
        assert_eq!(get(written.id).await.author, Some(customer_party(&desk.customer.id)));
        assert_eq!(get(addressed.id.clone()).await.recipients, vec![customer_party(&desk.customer.id)]);
        let note = get(note.id).await;
        assert_eq!(note.parent.and_then(|p| p.parent), Some(pb::comment_parent::Parent::CustomerId(desk.customer.id.clone())));
        // The survivor reads what was addressed to the duplicate.
        let read = desk.as_customer.comments.clone().get_comment(pb::GetCommentRequest { id: addressed.id.clone() }).await.expect("get").into_inner().comment.expect("comment");
        assert!(!read.redacted);
        assert_ne!(read.etag, addressed.etag, "a moved comment has changed");
        let log = server.store.changes_of(clientele::model::ResourceType::Comment, uuid::Uuid::parse_str(&addressed.id).expect("uuid")).await.expect("log");
        let kinds: Vec<&str> = log.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "updated"], "the move is in the comment's log");
    }

    async fn deleting_a_customer_deletes_the_notes_on_it(server) {
        let desk = server.desk("acme").await;
        let leaving = server.customer(pb::Customer { email: "leaving@acme.example".into(), ..Default::default() }).await;
        let manager = server.agent("manager", true).await;
        let as_manager = server.as_token(&server.token(pb::token_owner::Owner::AgentId(manager.id)).await);
        let on = |id: &str| Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::CustomerId(id.into())) });
        let note = write(&as_manager, text("Moving abroad", pb::CommentVisibility::Internal, on(&leaving.id))).await.expect("note");
        write(&as_manager, text("Stays", pb::CommentVisibility::Internal, on(&desk.customer.id))).await.expect("other note");
        server.customers().delete_customer(pb::DeleteCustomerRequest { id: leaving.id.clone(), etag: server.customer_etag(&leaving.id).await }).await.expect("delete");
        expect_code(as_manager.comments.clone().get_comment(pb::GetCommentRequest { id: note.id.clone() }).await, Code::NotFound);
        assert_eq!(server.count(Table::Comments).await, 1, "the other customer's note stays");
        let log = server.store.changes_of(clientele::model::ResourceType::Comment, uuid::Uuid::parse_str(&note.id).expect("uuid")).await.expect("log");
        let kinds: Vec<&str> = log.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "deleted"]);
    }
}

fn ticket_parent(ticket: &pb::Ticket) -> Option<pb::CommentParent> {
    on_ticket(ticket)
}

clock_tests! {
    async fn an_agents_first_public_comment_is_the_first_response_and_clears_its_escalation(server, clock) {
        let desk = server.desk("acme").await;
        let policy = server.policy("Fast", Some(SignedDuration::from_hours(1)), Some(SignedDuration::from_hours(4)), None, 0, "").await;
        let ticket = desk.create(pb::Ticket { sla_policy_id: policy.id.clone(), ..desk.ticket("Waiting") }).await;
        let start = clock.now();
        clock.set(start + SignedDuration::from_hours(2));
        desk::eventually("the first response escalates", || {
            let server = &server;
            let id = ticket.id.clone();
            async move { desk::ticket(server, &id).await.first_response_escalation() == pb::Escalation::Escalated }
        }).await;
        let mut watch = desk.as_agent.tickets.clone().watch_escalations(pb::WatchEscalationsRequest::default()).await.expect("watch").into_inner();
        loop {
            let message = watch.message().await.expect("watch").expect("message");
            if message.kind() == pb::WatchEventKind::SnapshotComplete { break; }
        }
        // An internal note is no response.
        write(&desk.as_agent, text("Looking into it", pb::CommentVisibility::Internal, ticket_parent(&ticket))).await.expect("internal");
        assert_eq!(desk::ticket(&server, &ticket.id).await.first_response_time, None);
        let answered_at = clock.now();
        write(&desk.as_agent, text("We are on it", pb::CommentVisibility::Public, ticket_parent(&ticket))).await.expect("answer");
        let answered = desk::ticket(&server, &ticket.id).await;
        assert_eq!(time(&answered.first_response_time), Some(answered_at));
        assert_eq!(answered.first_response_escalation(), pb::Escalation::None);
        assert_eq!(answered.first_response_due, None, "met deadlines have none");
        assert_eq!(answered.update_due, None, "the agent answered the customer's last contact");
        // The escalation itself may come once more after the snapshot that showed it: the
        // watch subscribed while the scheduler's event was still on its way to the hub.
        let cleared = loop {
            let message = tokio::time::timeout(PATIENCE, watch.message()).await.expect("in time").expect("watch").expect("message");
            if message.kind() != pb::WatchEventKind::Escalated {
                break message;
            }
        };
        assert_eq!((cleared.kind(), cleared.deadline()), (pb::WatchEventKind::Cleared, pb::Deadline::FirstResponse));
        // A later public comment does not move the first response.
        clock.set(answered_at + SignedDuration::from_mins(10));
        write(&desk.as_agent, text("Still on it", pb::CommentVisibility::Public, ticket_parent(&ticket))).await.expect("again");
        assert_eq!(time(&desk::ticket(&server, &ticket.id).await.first_response_time), Some(answered_at));
        let history = server.tickets().get_ticket_history(pb::GetTicketHistoryRequest { id: ticket.id.clone(), ..Default::default() }).await.expect("history").into_inner();
        assert!(history.entries.iter().any(|e| e.kind() == pb::ChangeKind::Cleared));
    }

    async fn a_customers_comment_restarts_the_update_clock_and_reopens_a_pending_ticket(server, clock) {
        let desk = server.desk("acme").await;
        let policy = server.policy("Updates", None, Some(SignedDuration::from_hours(4)), None, 0, "").await;
        let ticket = desk.create(pb::Ticket { sla_policy_id: policy.id.clone(), ..desk.ticket("Pending") }).await;
        write(&desk.as_agent, text("Please send the logs", pb::CommentVisibility::Public, ticket_parent(&ticket))).await.expect("answer");
        let current = desk::ticket(&server, &ticket.id).await;
        assert_eq!(current.update_due, None, "answered");
        let until = clock.now() + SignedDuration::from_hours(48);
        let waiting = update(&desk.as_agent, pb::Ticket { state: pb::TicketState::PendingReminder.into(), pending_until: Some(desk::proto_time(until)), ..current }, &["state", "pending_until"]).await.expect("pending");
        assert_eq!(waiting.state(), pb::TicketState::PendingReminder);
        clock.set(clock.now() + SignedDuration::from_hours(5));
        let contact = clock.now();
        write(&desk.as_customer, text("Here are the logs", pb::CommentVisibility::Public, ticket_parent(&ticket))).await.expect("customer writes");
        let reopened = desk::ticket(&server, &ticket.id).await;
        assert_eq!(reopened.state(), pb::TicketState::Open);
        assert_eq!(reopened.pending_until, None);
        assert_eq!(time(&reopened.update_due), Some(contact + SignedDuration::from_hours(4)), "the update clock runs from the customer's contact");
    }

    async fn a_new_contact_starts_the_update_clock_afresh_without_earlier_pauses(server, clock) {
        let desk = server.desk("fresh").await;
        let policy = server.policy("Updates", None, Some(SignedDuration::from_hours(4)), None, 0, "").await;
        let ticket = desk.create(pb::Ticket { sla_policy_id: policy.id.clone(), ..desk.ticket("Waiting first") }).await;
        // Pending for five hours before anyone answered: the update clock pauses that long.
        let until = clock.now() + SignedDuration::from_hours(48);
        let current = desk::ticket(&server, &ticket.id).await;
        update(&desk.as_agent, pb::Ticket { state: pb::TicketState::PendingReminder.into(), pending_until: Some(desk::proto_time(until)), ..current }, &["state", "pending_until"]).await.expect("pending");
        clock.set(clock.now() + SignedDuration::from_hours(5));
        let current = desk::ticket(&server, &ticket.id).await;
        let reopened = update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Open.into(), pending_until: None, ..current }, &["state", "pending_until"]).await.expect("open");
        assert_eq!(time(&reopened.update_due), Some(time(&ticket.create_time).unwrap() + SignedDuration::from_hours(9)), "the pause moved the deadline");
        write(&desk.as_agent, text("Looking into it", pb::CommentVisibility::Public, ticket_parent(&ticket))).await.expect("answer");
        clock.set(clock.now() + SignedDuration::from_hours(1));
        let contact = clock.now();
        write(&desk.as_customer, text("Any news?", pb::CommentVisibility::Public, ticket_parent(&ticket))).await.expect("customer writes");
        let current = desk::ticket(&server, &ticket.id).await;
        assert_eq!(time(&current.update_due), Some(contact + SignedDuration::from_hours(4)), "the earlier pause does not count for the new contact");
    }
}
