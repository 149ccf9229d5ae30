//! Supplementary details (ConSol): notes on organisations and customers and their
//! attachments, with rights of their own (`Agent.details_access`: none, read, write; apart
//! from manage_customers); and attachments listed, filtered, deleted and restored one by one.

use clientele::proto::v1 as pb;
use tonic::Code;

use crate::{
    attachments::{download, upload},
    comments::{on_ticket, write},
    support::*,
};

async fn agent_with(
    server: &TestServer,
    login: &str,
    manage_customers: bool,
    access: pb::DetailsAccess,
) -> (pb::Agent, Clients) {
    let agent = server
        .agents()
        .create_agent(pb::CreateAgentRequest {
            request_id: String::new(),
            agent: Some(pb::Agent {
                login: login.into(),
                manage_customers,
                details_access: access.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create agent")
        .into_inner()
        .agent
        .expect("agent");
    let clients = server.as_token(
        &server
            .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
            .await,
    );
    (agent, clients)
}

fn on_customer(customer: &pb::Customer) -> Option<pb::CommentParent> {
    Some(pb::CommentParent {
        parent: Some(pb::comment_parent::Parent::CustomerId(customer.id.clone())),
    })
}

fn note(body: &str, parent: Option<pb::CommentParent>) -> pb::Comment {
    pb::Comment {
        body: body.into(),
        visibility: pb::CommentVisibility::Internal.into(),
        parent,
        ..Default::default()
    }
}

fn file(comment: &pb::Comment, name: &str, content_type: &str) -> pb::AttachmentMetadata {
    pb::AttachmentMetadata {
        comment_id: comment.id.clone(),
        file_name: name.into(),
        content_type: content_type.into(),
        ..Default::default()
    }
}

async fn notes_of(
    clients: &Clients,
    customer: &pb::Customer,
) -> Result<Vec<String>, tonic::Status> {
    Ok(clients
        .comments
        .clone()
        .list_comments(pb::ListCommentsRequest {
            parent: on_customer(customer),
            ..Default::default()
        })
        .await?
        .into_inner()
        .comments
        .into_iter()
        .map(|c| c.body)
        .collect())
}

async fn attachments(
    clients: &Clients,
    request: pb::ListAttachmentsRequest,
) -> Result<Vec<pb::Attachment>, tonic::Status> {
    Ok(clients
        .comments
        .clone()
        .list_attachments(request)
        .await?
        .into_inner()
        .attachments)
}

fn names(found: &[pb::Attachment]) -> Vec<&str> {
    found.iter().map(|a| a.file_name.as_str()).collect()
}

async fn set_deleted(
    clients: &Clients,
    id: &str,
    deleted: bool,
) -> Result<pb::Attachment, tonic::Status> {
    let mut comments = clients.comments.clone();
    let attachment = if deleted {
        comments
            .delete_attachment(pb::DeleteAttachmentRequest { id: id.into() })
            .await?
            .into_inner()
            .attachment
    } else {
        comments
            .undelete_attachment(pb::UndeleteAttachmentRequest { id: id.into() })
            .await?
            .into_inner()
            .attachment
    };
    Ok(attachment.expect("attachment"))
}

backend_tests! {
    async fn supplementary_details_have_rights_of_their_own_apart_from_the_master_data(server) {
        let customer = server.customer(pb::Customer { email: "vip@acme.example".into(), last_name: "Vip".into(), ..Default::default() }).await;
        // Defaults: customer administrators write, the others read.
        let (admin_like, _) = agent_with(&server, "custadmin", true, pb::DetailsAccess::Unspecified).await;
        assert_eq!(admin_like.details_access(), pb::DetailsAccess::Write);
        let (reader, as_reader) = agent_with(&server, "reader", false, pb::DetailsAccess::Unspecified).await;
        assert_eq!(reader.details_access(), pb::DetailsAccess::Read);
        // Rights of their own: a writer of notes who may not edit customers, and a customer
        // administrator who may not see notes.
        let (_, as_writer) = agent_with(&server, "writer", false, pb::DetailsAccess::Write).await;
        let (_, as_master) = agent_with(&server, "master", true, pb::DetailsAccess::None).await;

        let written = write(&as_writer, note("Key account: call before any visit", on_customer(&customer))).await.expect("a writer writes notes");
        let contract = upload(&as_writer, file(&written, "contract.pdf", "application/pdf"), b"%PDF- the contract", 64).await.expect("and attaches files to them");
        let renamed = as_writer.customers.clone().update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { last_name: "Renamed".into(), ..customer.clone() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["last_name".into()] }),
        }).await;
        assert_eq!(reason(&expect_code(renamed, Code::PermissionDenied)).as_deref(), Some("NO_MANAGE_CUSTOMERS"));

        // A reader reads them and their files, and writes none.
        assert_eq!(notes_of(&as_reader, &customer).await.expect("reader lists"), ["Key account: call before any visit"]);
        assert_eq!(download(&as_reader, &contract.id).await.expect("reader downloads").1, b"%PDF- the contract");
        let refused = write(&as_reader, note("Mine too", on_customer(&customer))).await;
        assert_eq!(reason(&expect_code(refused, Code::PermissionDenied)).as_deref(), Some("NO_DETAILS_WRITE"));
        let refused = set_deleted(&as_reader, &contract.id, true).await;
        assert_eq!(reason(&expect_code(refused, Code::PermissionDenied)).as_deref(), Some("NO_DETAILS_WRITE"));

        // One without access edits the customer but learns nothing of the notes.
        let customer = as_master.customers.clone().update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { last_name: "Renamed".into(), ..customer.clone() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["last_name".into()] }),
        }).await.expect("manage_customers edits the customer").into_inner().customer.expect("customer");
        let refused = notes_of(&as_master, &customer).await;
        assert_eq!(reason(&expect_code(refused, Code::PermissionDenied)).as_deref(), Some("NO_DETAILS_ACCESS"));
        expect_code(as_master.comments.clone().get_comment(pb::GetCommentRequest { id: written.id.clone() }).await, Code::NotFound);
        let all = as_master.comments.clone().list_comments(pb::ListCommentsRequest::default()).await.expect("list all").into_inner().comments;
        assert!(all.iter().all(|c| c.id != written.id));
        expect_code(download(&as_master, &contract.id).await, Code::NotFound);
        assert!(attachments(&as_master, pb::ListAttachmentsRequest::default()).await.expect("list").is_empty());
        let refused = write(&as_master, note("Sneaky", on_customer(&customer))).await;
        assert_eq!(reason(&expect_code(refused, Code::PermissionDenied)).as_deref(), Some("NO_DETAILS_WRITE"));
        // Its customer sheet has no notes section.
        let mut sheet = as_master.customers.clone().render_customer_sheet(pb::RenderCustomerSheetRequest {
            subject: Some(pb::render_customer_sheet_request::Subject::CustomerId(customer.id.clone())),
            time_zone: String::new(),
        }).await.expect("sheet").into_inner();
        let mut pdf = Vec::new();
        while let Some(piece) = sheet.message().await.expect("piece") {
            pdf.extend(piece.chunk);
        }
        assert!(!pdf.windows(b"Key account".len()).any(|w| w == b"Key account"));

        // Customers never see notes.
        let as_customer = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(customer.id.clone())).await);
        expect_code(notes_of(&as_customer, &customer).await, Code::PermissionDenied);

        // A writer lowered to READ no longer deletes even its own notes.
        let writer = as_writer.agents.clone().who_am_i(pb::WhoAmIRequest {}).await.expect("who").into_inner().agent.expect("agent");
        server.agents().update_agent(pb::UpdateAgentRequest {
            agent: Some(pb::Agent { details_access: pb::DetailsAccess::Read.into(), ..writer }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["details_access".into()] }),
        }).await.expect("lower the writer");
        let etag = server.comment_etag(&written.id).await;
        let refused = as_writer.comments.clone().delete_comment(pb::DeleteCommentRequest { id: written.id.clone(), etag }).await;
        assert_eq!(reason(&expect_code(refused, Code::PermissionDenied)).as_deref(), Some("NO_DETAILS_WRITE"));

        // Taking the right away takes effect on the next call.
        server.agents().update_agent(pb::UpdateAgentRequest {
            agent: Some(pb::Agent { details_access: pb::DetailsAccess::None.into(), ..reader.clone() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["details_access".into()] }),
        }).await.expect("take details access away");
        let refused = notes_of(&as_reader, &customer).await;
        assert_eq!(reason(&expect_code(refused, Code::PermissionDenied)).as_deref(), Some("NO_DETAILS_ACCESS"));
        // An unknown value is refused by name.
        let bad = server.agents().create_agent(pb::CreateAgentRequest {
            request_id: String::new(),
            agent: Some(pb::Agent { login: "odd".into(), details_access: 9, ..Default::default() }),
        }).await;
        expect_invalid(bad, "agent.details_access");
    }

    async fn attachments_are_listed_filtered_deleted_and_restored_one_by_one(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Scanner jams")).await;
        let reply = write(&desk.as_agent, pb::Comment {
            body: "Here is what we found".into(),
            visibility: pb::CommentVisibility::Public.into(),
            parent: on_ticket(&ticket),
            ..Default::default()
        }).await.expect("reply");
        let invoice = upload(&desk.as_agent, file(&reply, "invoice-2026.pdf", "application/pdf"), b"invoice", 64).await.expect("pdf");
        let photo = upload(&desk.as_agent, file(&reply, "Photo.JPG", "image/jpeg"), b"jpeg", 64).await.expect("jpeg");
        let screenshot = upload(&desk.as_agent, file(&reply, "photo2.png", "IMAGE/PNG"), b"png", 64).await.expect("png");
        let internal = write(&desk.as_agent, note("Between us", on_ticket(&ticket))).await.expect("internal");
        upload(&desk.as_agent, file(&internal, "internal.txt", "text/plain"), b"secret", 64).await.expect("internal file");
        let on_the_customer = write(&server.as_token(&server.admin_secret), note("Signed", on_customer(&desk.customer))).await.expect("note");
        upload(&server.as_token(&server.admin_secret), file(&on_the_customer, "contract.pdf", "application/pdf"), b"contract", 64).await.expect("contract");

        let of_ticket = pb::ListAttachmentsRequest { parent: on_ticket(&ticket), ..Default::default() };
        let listed = attachments(&desk.as_agent, of_ticket.clone()).await.expect("list");
        assert_eq!(names(&listed), ["invoice-2026.pdf", "Photo.JPG", "photo2.png", "internal.txt"]);
        assert!(listed.iter().all(|a| a.parent == on_ticket(&ticket) && a.delete_time.is_none()));
        // Filters: a piece of the name, the start of the media type (both in any case), a comment, a parent.
        let by_name = attachments(&desk.as_agent, pb::ListAttachmentsRequest { file_name: "PHOTO".into(), ..of_ticket.clone() }).await.expect("by name");
        assert_eq!(names(&by_name), ["Photo.JPG", "photo2.png"]);
        let images = attachments(&desk.as_agent, pb::ListAttachmentsRequest { content_type: "image/".into(), ..Default::default() }).await.expect("images");
        assert_eq!(names(&images), ["Photo.JPG", "photo2.png"]);
        let literal = attachments(&desk.as_agent, pb::ListAttachmentsRequest { file_name: "%".into(), ..Default::default() }).await.expect("a literal %");
        assert!(literal.is_empty());
        let of_reply = attachments(&desk.as_agent, pb::ListAttachmentsRequest { comment_id: reply.id.clone(), ..Default::default() }).await.expect("of a comment");
        assert_eq!(names(&of_reply), ["invoice-2026.pdf", "Photo.JPG", "photo2.png"]);
        let pdfs = attachments(&server.as_token(&server.admin_secret), pb::ListAttachmentsRequest { content_type: "application/pdf".into(), ..Default::default() }).await.expect("pdfs");
        assert_eq!(names(&pdfs), ["invoice-2026.pdf", "contract.pdf"]);
        assert_eq!(pdfs[1].parent, on_customer(&desk.customer));
        // Pages.
        let first = desk.as_agent.comments.clone().list_attachments(pb::ListAttachmentsRequest { page_size: 2, ..of_ticket.clone() }).await.expect("page 1").into_inner();
        assert_eq!(names(&first.attachments), ["invoice-2026.pdf", "Photo.JPG"]);
        let second = desk.as_agent.comments.clone().list_attachments(pb::ListAttachmentsRequest { page_size: 2, page_token: first.next_page_token.clone(), ..of_ticket.clone() }).await.expect("page 2").into_inner();
        assert_eq!(names(&second.attachments), ["photo2.png", "internal.txt"]);
        assert!(second.next_page_token.is_empty());
        // The customer sees the files of what it may read: not the internal one.
        let seen = attachments(&desk.as_customer, of_ticket.clone()).await.expect("customer lists");
        assert_eq!(names(&seen), ["invoice-2026.pdf", "Photo.JPG", "photo2.png"]);

        // Deleted one by one, restored.
        let before = server.snapshot().await;
        let refused = set_deleted(&desk.as_customer, &photo.id, true).await;
        assert_eq!(reason(&expect_code(refused, Code::PermissionDenied)).as_deref(), Some("NOT_AUTHOR"));
        assert_eq!(server.snapshot().await, before);
        let deleted = set_deleted(&desk.as_agent, &photo.id, true).await.expect("delete");
        assert!(deleted.delete_time.is_some());
        assert_eq!(set_deleted(&desk.as_agent, &photo.id, true).await.expect("again"), deleted, "a retry answers alike");
        assert_eq!(names(&attachments(&desk.as_agent, of_ticket.clone()).await.expect("list")), ["invoice-2026.pdf", "photo2.png", "internal.txt"]);
        let with_deleted = attachments(&desk.as_agent, pb::ListAttachmentsRequest { include_deleted: true, ..of_ticket.clone() }).await.expect("with deleted");
        assert_eq!(with_deleted[1].id, photo.id);
        assert!(with_deleted[1].delete_time.is_some());
        let comment = desk.as_agent.comments.clone().get_comment(pb::GetCommentRequest { id: reply.id.clone() }).await.expect("comment").into_inner().comment.expect("comment");
        assert_eq!(names(&comment.attachments), ["invoice-2026.pdf", "photo2.png"]);
        expect_code(download(&desk.as_customer, &photo.id).await, Code::NotFound);
        expect_code(download(&desk.as_agent, &photo.id).await, Code::NotFound);
        let restored = set_deleted(&desk.as_agent, &photo.id, false).await.expect("restore");
        assert!(restored.delete_time.is_none());
        assert_eq!(download(&desk.as_customer, &photo.id).await.expect("downloadable again").1, b"jpeg");
        // The comment's history and the feed say so.
        let feed = server.changes().list_changes(pb::ListChangesRequest { page_size: 1000, ..Default::default() }).await.expect("feed").into_inner().events;
        let kinds: Vec<pb::ChangeKind> = feed.iter().filter(|e| e.resource_id == reply.id).map(|e| e.kind()).collect();
        assert!(kinds.ends_with(&[pb::ChangeKind::AttachmentDeleted, pb::ChangeKind::AttachmentRestored]), "{kinds:?}");

        // Bad requests name their field; unknown ones are not found.
        expect_invalid(attachments(&desk.as_agent, pb::ListAttachmentsRequest { comment_id: "nope".into(), ..Default::default() }).await, "comment_id");
        expect_invalid(attachments(&desk.as_agent, pb::ListAttachmentsRequest { page_token: "garbage".into(), ..Default::default() }).await, "page_token");
        expect_invalid(attachments(&desk.as_agent, pb::ListAttachmentsRequest { file_name: "a\0b".into(), ..Default::default() }).await, "file_name");
        expect_invalid(set_deleted(&desk.as_agent, "", true).await, "id");
        expect_code(set_deleted(&desk.as_agent, &uuid::Uuid::now_v7().to_string(), true).await, Code::NotFound);
        let _ = (invoice, screenshot);
    }

    async fn a_deleted_file_frees_its_place_on_the_comment_and_a_restore_needs_one(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Many files")).await;
        let comment = write(&desk.as_agent, pb::Comment { body: "Scans".into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("comment");
        let mut files = Vec::new();
        for n in 0..20 {
            files.push(upload(&desk.as_agent, file(&comment, &format!("scan{n}.png"), "image/png"), b"png", 64).await.expect("upload"));
        }
        let refused = upload(&desk.as_agent, file(&comment, "one-too-many.png", "image/png"), b"png", 64).await;
        assert_eq!(reason(&expect_code(refused, Code::FailedPrecondition)).as_deref(), Some("TOO_MANY_ATTACHMENTS"));
        set_deleted(&desk.as_agent, &files[0].id, true).await.expect("delete one");
        upload(&desk.as_agent, file(&comment, "in-its-place.png", "image/png"), b"png", 64).await.expect("its place is free");
        let refused = set_deleted(&desk.as_agent, &files[0].id, false).await;
        assert_eq!(reason(&expect_code(refused, Code::FailedPrecondition)).as_deref(), Some("TOO_MANY_ATTACHMENTS"));
        set_deleted(&desk.as_agent, &files[1].id, true).await.expect("delete another");
        set_deleted(&desk.as_agent, &files[0].id, false).await.expect("now it fits");
    }
}
