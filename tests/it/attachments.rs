//! Attachments: chunked upload and download of a 20 MiB file, the size limit, checksums on
//! the way in and out, interrupted uploads, and who may attach and read files.

use std::sync::Arc;

use clientele::{proto::v1 as pb, store::Table};
use sea_orm::{ConnectionTrait, Database};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::{
    comments::{customer_party, on_ticket, write},
    support::{Backend, Clients, TestServer, desk, expect_code, expect_invalid, reason},
};

type Part = pb::upload_attachment_request::Part;

fn content(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn metadata(comment: &pb::Comment, name: &str) -> pb::AttachmentMetadata {
    pb::AttachmentMetadata {
        comment_id: comment.id.clone(),
        file_name: name.into(),
        content_type: "application/pdf".into(),
        description: "The contract".into(),
        ..Default::default()
    }
}

/// Uploads `data` in chunks of `chunk` bytes after `metadata`, as `clients`.
pub(crate) async fn upload(
    clients: &Clients,
    metadata: pb::AttachmentMetadata,
    data: &[u8],
    chunk: usize,
) -> Result<pb::Attachment, tonic::Status> {
    let mut parts = vec![pb::UploadAttachmentRequest {
        part: Some(Part::Metadata(metadata)),
    }];
    parts.extend(data.chunks(chunk).map(|piece| pb::UploadAttachmentRequest {
        part: Some(Part::Chunk(piece.to_vec())),
    }));
    Ok(clients
        .comments
        .clone()
        .upload_attachment(tokio_stream::iter(parts))
        .await?
        .into_inner()
        .attachment
        .expect("attachment"))
}

/// Downloads attachment `id` as `clients`: its metadata and content.
pub(crate) async fn download(
    clients: &Clients,
    id: &str,
) -> Result<(pb::Attachment, Vec<u8>), tonic::Status> {
    let mut stream = clients
        .comments
        .clone()
        .download_attachment(pb::DownloadAttachmentRequest { id: id.into() })
        .await?
        .into_inner();
    let mut attachment = None;
    let mut data = Vec::new();
    while let Some(message) = stream.message().await? {
        match message.part {
            Some(pb::download_attachment_response::Part::Attachment(a)) => attachment = Some(a),
            Some(pb::download_attachment_response::Part::Chunk(piece)) => data.extend(piece),
            None => panic!("an empty download message"),
        }
    }
    Ok((attachment.expect("metadata first"), data))
}

/// DownloadAttachment of `id` as the holder of `secret`, over HTTP/2's smallest usual window
/// (64 KiB), with its first message (the metadata) read.
async fn slow_download(
    server: &TestServer,
    secret: &str,
    id: &str,
) -> tonic::Streaming<pb::DownloadAttachmentResponse> {
    let channel = crate::support::small_window_channel(server.addr).await;
    let mut comments = pb::comment_service_client::CommentServiceClient::with_interceptor(
        channel,
        crate::support::Bearer::new(Some(secret)),
    );
    let mut stream = comments
        .download_attachment(pb::DownloadAttachmentRequest { id: id.into() })
        .await
        .expect("download")
        .into_inner();
    stream
        .message()
        .await
        .expect("metadata")
        .expect("a message");
    stream
}

/// Reads the rest of a download slowly: how many bytes came, and how it ended.
async fn read_slowly(
    stream: &mut tonic::Streaming<pb::DownloadAttachmentResponse>,
) -> (usize, Result<(), tonic::Status>) {
    let mut bytes = 0;
    loop {
        match stream.message().await {
            Ok(Some(message)) => {
                if let Some(pb::download_attachment_response::Part::Chunk(piece)) = message.part {
                    bytes += piece.len();
                }
            }
            Ok(None) => return (bytes, Ok(())),
            Err(status) => return (bytes, Err(status)),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn nothing_kept(server: &TestServer) {
    desk::eventually("nothing of the upload is kept", || async {
        server.count(Table::Attachments).await == 0
            && server.count(Table::AttachmentChunks).await == 0
    })
    .await;
}

backend_tests! {
    async fn a_download_ends_once_its_caller_may_no_longer_read_the_attachment(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Big files")).await;
        let comment = write(&desk.as_agent, pb::Comment {
            body: "The logs".into(),
            parent: on_ticket(&ticket),
            visibility: pb::CommentVisibility::Public.into(),
            ..Default::default()
        }).await.expect("comment");
        let size = 16 * 1024 * 1024;
        let attachment = upload(&desk.as_agent, metadata(&comment, "logs.bin"), &content(size), 1024 * 1024).await.expect("upload");
        let customer_token = || server.token(pb::token_owner::Owner::CustomerId(desk.customer.id.clone()));
        // The token is revoked: the download ends as unauthenticated, well before its end.
        let secret = customer_token().await;
        let who = server.as_token(&secret).agents.who_am_i(pb::WhoAmIRequest {}).await.expect("who").into_inner();
        let mut stream = slow_download(&server, &secret, &attachment.id).await;
        server.agents().revoke_token(pb::RevokeTokenRequest { id: who.token.expect("token").id }).await.expect("revoke");
        let (bytes, end) = read_slowly(&mut stream).await;
        assert_eq!(end.map_err(|status| status.code()), Err(Code::Unauthenticated), "after {bytes} bytes");
        assert!(bytes < size, "{bytes}");
        // The comment is deleted: the attachment is no longer the customer's to read.
        let secret = customer_token().await;
        let mut stream = slow_download(&server, &secret, &attachment.id).await;
        desk.as_agent.comments.clone().delete_comment(pb::DeleteCommentRequest { id: comment.id.clone(), etag: server.comment_etag(&comment.id).await }).await.expect("delete");
        let (bytes, end) = read_slowly(&mut stream).await;
        assert_eq!(end.map_err(|status| status.code()), Err(Code::PermissionDenied), "after {bytes} bytes");
        assert!(bytes < size, "{bytes}");
        // The file itself is deleted: the download ends as well.
        desk.as_agent.comments.clone().undelete_comment(pb::UndeleteCommentRequest { id: comment.id.clone(), etag: server.comment_etag(&comment.id).await }).await.expect("restore the comment");
        let secret = customer_token().await;
        let mut stream = slow_download(&server, &secret, &attachment.id).await;
        desk.as_agent.comments.clone().delete_attachment(pb::DeleteAttachmentRequest { id: attachment.id.clone() }).await.expect("delete the file");
        let (bytes, end) = read_slowly(&mut stream).await;
        let status = end.expect_err("the download ends");
        assert_eq!((status.code(), reason(&status).as_deref()), (Code::PermissionDenied, Some("ATTACHMENT_NO_LONGER_READABLE")), "after {bytes} bytes");
        assert!(bytes < size, "{bytes}");
    }
    async fn a_twenty_mib_file_goes_up_and_comes_back_in_chunks_with_its_checksum(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Contract")).await;
        let comment = write(&desk.as_customer, pb::Comment { body: "Attached".into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("comment");
        let data = content(20 * 1024 * 1024);
        let attachment = upload(&desk.as_customer, pb::AttachmentMetadata {
            size: data.len() as i64,
            sha256: hex(&data).to_uppercase(),
            ..metadata(&comment, "contract.pdf")
        }, &data, 64 * 1024).await.expect("upload");
        assert_eq!(attachment.size, data.len() as i64);
        assert_eq!(attachment.sha256, hex(&data));
        assert_eq!((attachment.file_name.as_str(), attachment.content_type.as_str()), ("contract.pdf", "application/pdf"));
        // Everyone who may read the comment may fetch it.
        for clients in [&desk.as_customer, &desk.as_agent] {
            let (meta, back) = download(clients, &attachment.id).await.expect("download");
            assert_eq!(meta, attachment);
            assert!(back == data, "the content comes back unchanged");
        }
        let listed = desk.as_agent.comments.clone().get_comment(pb::GetCommentRequest { id: comment.id.clone() }).await.expect("get").into_inner().comment.expect("comment");
        assert_eq!(listed.attachments, vec![attachment]);
        assert_ne!(listed.etag, comment.etag, "attaching changes the comment");
        let log = server.store.changes_of(clientele::model::ResourceType::Comment, uuid::Uuid::parse_str(&comment.id).expect("uuid")).await.expect("log");
        assert_eq!(log.last().map(|c| c.kind.as_str()), Some("attachment_added"));
    }

    async fn a_checksum_or_size_that_does_not_match_keeps_nothing(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Contract")).await;
        let comment = write(&desk.as_agent, pb::Comment { body: "Files".into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("comment");
        let data = content(300_000);
        let wrong = hex(b"something else");
        expect_invalid(upload(&desk.as_agent, pb::AttachmentMetadata { sha256: wrong, ..metadata(&comment, "a.pdf") }, &data, 100_000).await, "metadata.sha256");
        nothing_kept(&server).await;
        expect_invalid(upload(&desk.as_agent, pb::AttachmentMetadata { size: 400_000, ..metadata(&comment, "a.pdf") }, &data, 100_000).await, "metadata.size");
        nothing_kept(&server).await;
        expect_invalid(upload(&desk.as_agent, metadata(&comment, "empty.pdf"), &[], 1).await, "chunk");
        nothing_kept(&server).await;
    }

    async fn bad_uploads_and_forbidden_downloads_are_refused(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Contract")).await;
        let comment = write(&desk.as_agent, pb::Comment { body: "Files".into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("comment");
        let data = content(1000);
        for (name, field) in [("", "metadata.file_name"), ("../etc/passwd", "metadata.file_name"), ("a\u{1}b", "metadata.file_name"), (&"n".repeat(256), "metadata.file_name")] {
            expect_invalid(upload(&desk.as_agent, metadata(&comment, name), &data, 500).await, field);
        }
        expect_invalid(upload(&desk.as_agent, pb::AttachmentMetadata { content_type: "pdf".into(), ..metadata(&comment, "a.pdf") }, &data, 500).await, "metadata.content_type");
        expect_invalid(upload(&desk.as_agent, pb::AttachmentMetadata { sha256: "xyz".into(), ..metadata(&comment, "a.pdf") }, &data, 500).await, "metadata.sha256");
        expect_invalid(upload(&desk.as_agent, pb::AttachmentMetadata { comment_id: uuid::Uuid::now_v7().to_string(), ..metadata(&comment, "a.pdf") }, &data, 500).await, "metadata.comment_id");
        expect_invalid(upload(&desk.as_agent, pb::AttachmentMetadata { comment_id: String::new(), ..metadata(&comment, "a.pdf") }, &data, 500).await, "metadata.comment_id");
        // The metadata comes first, once.
        let chunk_first = vec![pb::UploadAttachmentRequest { part: Some(Part::Chunk(data.clone())) }];
        expect_invalid(desk.as_agent.comments.clone().upload_attachment(tokio_stream::iter(chunk_first)).await, "metadata");
        let twice = vec![
            pb::UploadAttachmentRequest { part: Some(Part::Metadata(metadata(&comment, "a.pdf"))) },
            pb::UploadAttachmentRequest { part: Some(Part::Metadata(metadata(&comment, "b.pdf"))) },
        ];
        expect_invalid(desk.as_agent.comments.clone().upload_attachment(tokio_stream::iter(twice)).await, "metadata");
        // Only the comment's author attaches files to it.
        let status = expect_code(upload(&desk.as_customer, metadata(&comment, "a.pdf"), &data, 500).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("NOT_AUTHOR"));
        nothing_kept(&server).await;
        // Files of an internal comment are for agents; of a private one for its readers.
        let internal = write(&desk.as_agent, pb::Comment { body: "Internal".into(), visibility: pb::CommentVisibility::Internal.into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("internal");
        let internal_file = upload(&desk.as_agent, metadata(&internal, "notes.txt"), &data, 500).await.expect("upload");
        expect_code(download(&desk.as_customer, &internal_file.id).await, Code::NotFound);
        let colleague = server.customer(pb::Customer { email: "colleague@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let as_colleague = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(colleague.id)).await);
        let private = write(&desk.as_agent, pb::Comment { body: "For you".into(), visibility: pb::CommentVisibility::Private.into(), recipients: vec![customer_party(&desk.customer.id)], parent: on_ticket(&ticket), ..Default::default() }).await.expect("private");
        let private_file = upload(&desk.as_agent, metadata(&private, "offer.pdf"), &data, 500).await.expect("upload");
        download(&desk.as_customer, &private_file.id).await.expect("the recipient downloads it");
        expect_code(download(&as_colleague, &private_file.id).await, Code::NotFound);
        // The colleague sees the private comment as a stub, without its file.
        let stub = as_colleague.comments.clone().get_comment(pb::GetCommentRequest { id: private.id.clone() }).await.expect("stub").into_inner().comment.expect("comment");
        assert!(stub.redacted && stub.attachments.is_empty(), "{stub:?}");
        let recipients_view = desk.as_customer.comments.clone().get_comment(pb::GetCommentRequest { id: private.id.clone() }).await.expect("get").into_inner().comment.expect("comment");
        assert_eq!(recipients_view.attachments, vec![private_file.clone()]);
        expect_code(download(&desk.as_agent, &uuid::Uuid::now_v7().to_string()).await, Code::NotFound);
        expect_invalid(download(&desk.as_agent, "nope").await, "id");
    }

    async fn an_upload_discarded_as_abandoned_while_it_runs_fails_cleanly(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Contract")).await;
        let comment = write(&desk.as_agent, pb::Comment { body: "Files".into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("comment");
        let (parts, received) = tokio::sync::mpsc::channel(4);
        parts.send(pb::UploadAttachmentRequest { part: Some(Part::Metadata(metadata(&comment, "a.bin"))) }).await.expect("metadata");
        parts.send(pb::UploadAttachmentRequest { part: Some(Part::Chunk(content(1000))) }).await.expect("chunk");
        let mut comments = desk.as_agent.comments.clone();
        let call = tokio::spawn(async move { comments.upload_attachment(tokio_stream::wrappers::ReceiverStream::new(received)).await });
        desk::eventually("the first chunk is stored", || async { server.count(Table::AttachmentChunks).await == 1 }).await;
        // Another replica starting up takes the upload for abandoned.
        let cutoff = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
        assert_eq!(server.store.discard_abandoned_uploads(cutoff).await.expect("discard"), 1);
        parts.send(pb::UploadAttachmentRequest { part: Some(Part::Chunk(content(1000))) }).await.expect("chunk");
        drop(parts);
        let status = expect_code(call.await.expect("join"), Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("UPLOAD_DISCARDED"));
        nothing_kept(&server).await;
        let unchanged = desk.as_agent.comments.clone().get_comment(pb::GetCommentRequest { id: comment.id.clone() }).await.expect("get").into_inner().comment.expect("comment");
        assert!(unchanged.attachments.is_empty());
        assert_eq!(unchanged.etag, comment.etag);
    }

    async fn content_damaged_in_storage_ends_the_download_with_data_loss(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Contract")).await;
        let comment = write(&desk.as_agent, pb::Comment { body: "Files".into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("comment");
        let data = content(600_000);
        let attachment = upload(&desk.as_agent, metadata(&comment, "a.bin"), &data, 100_000).await.expect("upload");
        let database = Database::connect(&server.database.url).await.expect("connect");
        let damage = match server.backend() {
            Backend::Sqlite => "UPDATE attachment_chunks SET data = X'00FF' WHERE seq = 1",
            Backend::Postgres => "UPDATE attachment_chunks SET data = '\\x00ff'::bytea WHERE seq = 1",
        };
        database.execute_unprepared(damage).await.expect("damage a chunk");
        database.close().await.expect("close");
        let status = expect_code(download(&desk.as_agent, &attachment.id).await, Code::DataLoss);
        assert!(!status.message().contains("UPDATE"), "{}", status.message());
    }
}

mod an_upload_over_the_limit_or_broken_off_keeps_nothing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(clientele_postgres_tests),
        ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
    )]
    async fn postgres() {
        run(Backend::Postgres).await;
    }

    async fn run(backend: Backend) {
        let Some(server) =
            TestServer::start_with(backend, |config| config.attachment_limit = 1024 * 1024).await
        else {
            return;
        };
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Contract")).await;
        let comment = write(
            &desk.as_agent,
            pb::Comment {
                body: "Files".into(),
                parent: on_ticket(&ticket),
                ..Default::default()
            },
        )
        .await
        .expect("comment");
        let exactly = content(1024 * 1024);
        upload(
            &desk.as_agent,
            metadata(&comment, "fits.bin"),
            &exactly,
            64 * 1024,
        )
        .await
        .expect("exactly the limit fits");
        let before = (
            server.count(Table::Attachments).await,
            server.count(Table::AttachmentChunks).await,
        );
        let over = content(1024 * 1024 + 1);
        expect_invalid(
            upload(
                &desk.as_agent,
                metadata(&comment, "big.bin"),
                &over,
                64 * 1024,
            )
            .await,
            "chunk",
        );
        expect_invalid(
            upload(
                &desk.as_agent,
                pb::AttachmentMetadata {
                    size: 2 * 1024 * 1024,
                    ..metadata(&comment, "big.bin")
                },
                &over,
                64 * 1024,
            )
            .await,
            "metadata.size",
        );
        desk::eventually("nothing of the refused uploads is kept", || async {
            (
                server.count(Table::Attachments).await,
                server.count(Table::AttachmentChunks).await,
            ) == before
        })
        .await;
        // A client that breaks off halfway: what arrived is discarded.
        let (parts, receiver) = tokio::sync::mpsc::channel(4);
        let mut comments = desk.as_agent.comments.clone();
        let call = tokio::spawn(async move {
            comments
                .upload_attachment(tokio_stream::wrappers::ReceiverStream::new(receiver))
                .await
        });
        parts
            .send(pb::UploadAttachmentRequest {
                part: Some(Part::Metadata(metadata(&comment, "half.bin"))),
            })
            .await
            .expect("send");
        for piece in content(512 * 1024).chunks(64 * 1024) {
            parts
                .send(pb::UploadAttachmentRequest {
                    part: Some(Part::Chunk(piece.to_vec())),
                })
                .await
                .expect("send");
        }
        let started = Arc::new(before);
        desk::eventually("everything sent is stored", || {
            let started = started.clone();
            let server = &server;
            // One stored piece per 64 KiB chunk.
            async move { server.count(Table::AttachmentChunks).await == started.1 + 8 }
        })
        .await;
        // The call is cancelled (its stream reset) while the sender is still open, with the
        // server waiting for the next chunk: no clean end of the upload ever arrives. (tonic
        // reads the cancel as the end of the stream; half a file must not be kept as a file.)
        call.abort();
        desk::eventually("the broken-off upload is discarded", || async {
            (
                server.count(Table::Attachments).await,
                server.count(Table::AttachmentChunks).await,
            ) == before
        })
        .await;
        drop(parts);
        server.stop().await;
    }
}
