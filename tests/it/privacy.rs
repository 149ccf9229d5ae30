//! PrivacyService: a person erased everywhere Clientele keeps them (provably: the erased
//! values are searched in the raw bytes of the SQLite file and of a `pg_dump`), DeleteCustomer
//! as an erasure, the export of everything about a person, the history retention, and the
//! refusals that change nothing.

use clientele::{proto::v1 as pb, store::Table};
use jiff::SignedDuration;
use tonic::Code;

use crate::{
    attachments::upload,
    comments::{customer_party, on_ticket, write},
    support::{
        Backend, Clients, TestServer,
        desk::{Desk, eventually},
        expect_code, expect_invalid, reason,
    },
};

/// The person's distinctive values: none may survive an erasure anywhere in the database.
const CANARIES: &[&str] = &[
    "quill.canary7@erase.example",
    "quill.olddup7@erase.example",
    "quillcanary7",
    "Quillonius",
    "Canarywood",
    "Baroness Canary",
    "+49 30 7777 1234",
    "77771234",
    "+49 171 5550 9876",
    "canary-shoe-size-47",
    "ext-canary-7",
    "Oldquillon",
    "Quillon wrote this canary reply",
    "canary-attachment-bytes-7",
    "canary-contract-7.pdf",
    "Note: Quillonius prefers calls",
    "Quillon portal token",
];

/// The person, with a duplicate merged into them, a grant on the desk's group, a token, a
/// ticket (open) with their reply and its file, an agent's note about them and a private
/// comment to them; returns the person and the ticket.
async fn person_with_a_past(server: &TestServer, desk: &Desk) -> (pb::Customer, pb::Ticket) {
    let person = server
        .customer(pb::Customer {
            email: "quill.canary7@erase.example".into(),
            login: "quillcanary7".into(),
            first_name: "Quillonius".into(),
            last_name: "Canarywood".into(),
            title: "Baroness Canary".into(),
            phone: "+49 30 7777 1234".into(),
            organisation_id: desk.organisation.id.clone(),
            custom_fields: [("shoe".to_owned(), "canary-shoe-size-47".to_owned())].into(),
            external_id: "ext-canary-7".into(),
            ..Default::default()
        })
        .await;
    // An edit: the old phone number is in the change log.
    let mut customers = server.customers();
    let edited = customers
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                mobile: "+49 171 5550 9876".into(),
                phone: String::new(),
                ..person.clone()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["mobile".into(), "phone".into()],
            }),
        })
        .await
        .expect("edit")
        .into_inner()
        .customer
        .expect("customer");
    // A duplicate merged in: its address is kept as a secondary one.
    let duplicate = server
        .customer(pb::Customer {
            email: "quill.olddup7@erase.example".into(),
            first_name: "Oldquillon".into(),
            ..Default::default()
        })
        .await;
    customers
        .merge_customers(pb::MergeCustomersRequest {
            source_id: duplicate.id.clone(),
            target_id: person.id.clone(),
            source_etag: duplicate.etag.clone(),
            target_etag: edited.etag.clone(),
        })
        .await
        .expect("merge");
    server
        .grant(
            pb::subject::Subject::CustomerId(person.id.clone()),
            &desk.group.id,
            pb::PermissionLevel::Rw,
            pb::GrantContext::Unspecified,
        )
        .await;
    let secret = server
        .agents()
        .create_token(pb::CreateTokenRequest {
            owner: Some(pb::TokenOwner {
                owner: Some(pb::token_owner::Owner::CustomerId(person.id.clone())),
            }),
            description: "Quillon portal token".into(),
            ..Default::default()
        })
        .await
        .expect("token")
        .into_inner()
        .secret;
    let as_person = server.as_token(&secret);
    let ticket = as_person
        .tickets
        .clone()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                title: "Printer on fire".into(),
                group_id: desk.group.id.clone(),
                customer_id: person.id.clone(),
                ..Default::default()
            }),
            request_id: "portal-request-1".into(),
        })
        .await
        .expect("the person opens a ticket")
        .into_inner()
        .ticket
        .expect("ticket");
    let reply = write(
        &as_person,
        pb::Comment {
            body: "Quillon wrote this canary reply".into(),
            visibility: pb::CommentVisibility::Public.into(),
            parent: on_ticket(&ticket),
            ..Default::default()
        },
    )
    .await
    .expect("reply");
    upload(
        &as_person,
        pb::AttachmentMetadata {
            comment_id: reply.id.clone(),
            file_name: "canary-contract-7.pdf".into(),
            content_type: "application/pdf".into(),
            ..Default::default()
        },
        b"canary-attachment-bytes-7",
        8,
    )
    .await
    .expect("attach");
    let manager = server.agent("erase-manager", true).await;
    let as_manager = server.as_token(
        &server
            .token(pb::token_owner::Owner::AgentId(manager.id))
            .await,
    );
    write(
        &as_manager,
        pb::Comment {
            body: "Note: Quillonius prefers calls".into(),
            visibility: pb::CommentVisibility::Internal.into(),
            parent: Some(pb::CommentParent {
                parent: Some(pb::comment_parent::Parent::CustomerId(person.id.clone())),
            }),
            ..Default::default()
        },
    )
    .await
    .expect("note");
    write(
        &desk.as_agent,
        pb::Comment {
            body: "Only for you".into(),
            visibility: pb::CommentVisibility::Private.into(),
            parent: on_ticket(&ticket),
            recipients: vec![customer_party(&person.id)],
            ..Default::default()
        },
    )
    .await
    .expect("private comment");
    (server.customer_by_id(&person.id).await, ticket)
}

async fn erase(
    clients: &mut pb::privacy_service_client::PrivacyServiceClient<crate::support::Authed>,
    request: pb::EraseCustomerRequest,
) -> Result<pb::EraseCustomerResponse, tonic::Status> {
    Ok(clients.erase_customer(request).await?.into_inner())
}

/// The history of a resource as the admin reads it.
async fn history(server: &TestServer, kind: pb::ResourceType, id: &str) -> Vec<pb::ChangeEvent> {
    server
        .changes()
        .get_history(pb::GetHistoryRequest {
            resource_type: kind.into(),
            resource_id: id.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner()
        .events
}

/// Every byte the database keeps: the SQLite file with its write-ahead log, or a dump of
/// the PostgreSQL database.
fn stored_bytes(server: &TestServer) -> Vec<u8> {
    match server.backend() {
        Backend::Sqlite => {
            let path = server
                .database
                .url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .expect("path")
                .to_owned();
            let mut bytes = std::fs::read(&path).expect("read the database file");
            for suffix in ["-wal", "-journal"] {
                if let Ok(more) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend(more);
                }
            }
            bytes
        }
        Backend::Postgres => {
            let dump = std::process::Command::new("pg_dump")
                .arg("--dbname")
                .arg(&server.database.url)
                .output()
                .expect("pg_dump runs (Debian's postgresql-client)");
            assert!(
                dump.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&dump.stderr)
            );
            dump.stdout
        }
    }
}

/// The canaries found in the stored bytes, as text, lower-cased, or (PostgreSQL's bytea) hex.
fn canaries_in(bytes: &[u8]) -> Vec<String> {
    let haystack = bytes.to_ascii_lowercase();
    CANARIES
        .iter()
        .filter(|canary| {
            let lower = canary.to_ascii_lowercase();
            let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
            [lower.as_bytes(), hex.as_bytes()]
                .iter()
                .any(|needle| haystack.windows(needle.len()).any(|w| w == *needle))
        })
        .map(|canary| (*canary).to_owned())
        .collect()
}

fn item_kinds(items: &[pb::ExportCustomerDataResponse]) -> Vec<&'static str> {
    use pb::export_customer_data_response::Item;
    items
        .iter()
        .map(|item| match item.item.as_ref().expect("item") {
            Item::Customer(_) => "customer",
            Item::Organisation(_) => "organisation",
            Item::Grant(_) => "grant",
            Item::Token(_) => "token",
            Item::Ticket(_) => "ticket",
            Item::Comment(_) => "comment",
            Item::Change(_) => "change",
        })
        .collect()
}

async fn export(
    clients: &Clients,
    id: &str,
) -> Result<Vec<pb::ExportCustomerDataResponse>, tonic::Status> {
    let mut stream = clients
        .privacy
        .clone()
        .export_customer_data(pb::ExportCustomerDataRequest { id: id.into() })
        .await?
        .into_inner();
    let mut items = Vec::new();
    while let Some(item) = stream.message().await? {
        items.push(item);
    }
    Ok(items)
}

backend_tests! {
    async fn an_erased_person_is_gone_from_every_byte_of_the_database_and_their_tickets_stay(server) {
        let desk = server.desk("erase").await;
        let (person, ticket) = person_with_a_past(&server, &desk).await;
        assert!(!canaries_in(&stored_bytes(&server)).is_empty(), "the canaries are found before");
        assert_eq!(server.count(Table::IdempotencyKeys).await, 1, "the person's request id is kept");
        let mut privacy = server.privacy();

        // Open tickets stand in the way unless the request says what becomes of them.
        let before = server.snapshot().await;
        let refused = expect_code(
            erase(&mut privacy, pb::EraseCustomerRequest { id: person.id.clone(), ..Default::default() }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&refused).as_deref(), Some("OPEN_TICKETS"));
        assert!(refused.message().contains(&ticket.number.to_string()), "{}", refused.message());
        assert_eq!(server.snapshot().await, before, "a refused erasure changes nothing");

        let report = erase(
            &mut privacy,
            pb::EraseCustomerRequest {
                id: person.id.clone(),
                etag: person.etag.clone(),
                open_ticket_handling: pb::OpenTicketHandling::Keep.into(),
                ..Default::default()
            },
        )
        .await
        .expect("erase");
        assert!(report.tombstone);
        assert_eq!(
            (report.tickets_kept, report.comments_deleted, report.comments_kept, report.notes_deleted),
            (1, 1, 0, 1)
        );
        assert_eq!((report.attachments_deleted, report.grants_deleted, report.tokens_deleted), (1, 1, 1));
        assert!(report.changes_erased >= 6, "{report:?}");

        // Not one erased value in the database's bytes.
        assert_eq!(canaries_in(&stored_bytes(&server)), Vec::<String>::new());
        assert_eq!(server.count(Table::IdempotencyKeys).await, 0, "the person's request ids are gone");
        // The agent's private comment to the person stays, addressed to nobody now (read by
        // its author: to anyone else a private comment is a stub).
        let thread = desk
            .as_agent
            .comments
            .clone()
            .list_comments(pb::ListCommentsRequest { parent: on_ticket(&ticket), page_size: 100, ..Default::default() })
            .await
            .expect("comments")
            .into_inner()
            .comments;
        let bodies: Vec<&str> = thread.iter().map(|c| c.body.as_str()).collect();
        assert_eq!(bodies, ["Only for you"], "the person's reply is gone, the agent's comment stays");
        assert!(thread[0].recipients.is_empty(), "{:?}", thread[0].recipients);

        // The tombstone keeps the ticket; the person's addresses find nobody.
        let tombstone = server.customer_by_id(&person.id).await;
        assert!(tombstone.erased);
        assert_eq!(tombstone.last_name, "Erased customer");
        assert_eq!(tombstone.email, format!("erased-{}@erased.invalid", person.id.replace('-', "")));
        assert_eq!(tombstone.validity, i32::from(pb::Validity::Invalid));
        assert!(tombstone.organisation_id.is_empty() && tombstone.secondary_emails.is_empty());
        let kept = crate::support::desk::ticket(&server, &ticket.id).await;
        assert_eq!(kept.customer_id, person.id);
        for address in ["quill.canary7@erase.example", "quill.olddup7@erase.example"] {
            let found = server
                .customers()
                .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email(address.into())) })
                .await;
            expect_code(found, Code::NotFound);
        }

        // History: every earlier entry keeps its fields without values; the erasure is the
        // last entry, with what was done.
        let entries = history(&server, pb::ResourceType::Customer, &person.id).await;
        let (last, earlier) = entries.split_last().expect("entries");
        assert_eq!(last.kind, i32::from(pb::ChangeKind::Erased));
        assert!(!last.values_erased);
        assert!(earlier.len() >= 3, "created, updated, merged: {earlier:?}");
        for entry in earlier {
            assert!(entry.values_erased, "{entry:?}");
            assert!(!entry.changes.is_empty());
            for change in &entry.changes {
                for value in [&change.old_value, &change.new_value] {
                    assert!(
                        matches!(value.as_ref().and_then(|v| v.kind.as_ref()), Some(prost_types::value::Kind::NullValue(_))),
                        "{change:?}"
                    );
                }
            }
        }

        // The erasure is in the feed for followers.
        let feed = server
            .changes()
            .list_changes(pb::ListChangesRequest { resource_id: person.id.clone(), page_size: 1000, ..Default::default() })
            .await
            .expect("feed")
            .into_inner()
            .events;
        assert!(feed.iter().any(|event| event.kind == i32::from(pb::ChangeKind::Erased)));

        // The same person cannot be erased twice, nor exported.
        expect_code(
            erase(&mut privacy, pb::EraseCustomerRequest { id: person.id.clone(), open_ticket_handling: pb::OpenTicketHandling::Keep.into(), ..Default::default() }).await,
            Code::NotFound,
        );
        let admin = server.as_token(&server.admin_secret);
        expect_code(export(&admin, &person.id).await, Code::NotFound);
        // The desk's other customer is untouched.
        assert_eq!(server.customer_by_id(&desk.customer.id).await, desk.customer);
    }

    async fn a_kept_conversation_stays_under_the_tombstone(server) {
        let desk = server.desk("keep").await;
        let ticket = desk.create(desk.ticket("Invoice question")).await;
        let reply = write(
            &desk.as_customer,
            pb::Comment {
                body: "Thanks, that settles it".into(),
                visibility: pb::CommentVisibility::Public.into(),
                parent: on_ticket(&ticket),
                ..Default::default()
            },
        )
        .await
        .expect("reply");
        let mut tickets = desk.as_agent.tickets.clone();
        let current = crate::support::desk::ticket(&server, &ticket.id).await;
        crate::support::desk::update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..current }, &["state"])
            .await
            .expect("close");
        let report = erase(
            &mut server.privacy(),
            pb::EraseCustomerRequest { id: desk.customer.id.clone(), keep_conversation: true, ..Default::default() },
        )
        .await
        .expect("erase a customer whose tickets are closed");
        assert!(report.tombstone);
        assert_eq!((report.tickets_kept, report.comments_kept, report.comments_deleted), (1, 1, 0));
        let kept = server
            .comments()
            .get_comment(pb::GetCommentRequest { id: reply.id.clone() })
            .await
            .expect("the reply stays")
            .into_inner()
            .comment
            .expect("comment");
        assert_eq!(kept.body, "Thanks, that settles it");
        assert_eq!(kept.author, Some(customer_party(&desk.customer.id)), "the tombstone is the author");
        // The customer's token works no more.
        let gone = desk.as_customer.agents.clone().who_am_i(pb::WhoAmIRequest {}).await;
        expect_code(gone, Code::Unauthenticated);
        tickets
            .get_ticket(pb::GetTicketRequest { key: Some(pb::get_ticket_request::Key::Id(ticket.id.clone())) })
            .await
            .expect("the ticket stays for the company's records");
    }

    async fn delete_customer_is_an_erasure(server) {
        let person = server
            .customer(pb::Customer {
                email: "quill.canary7@erase.example".into(),
                first_name: "Quillonius".into(),
                last_name: "Canarywood".into(),
                phone: "+49 30 7777 1234".into(),
                ..Default::default()
            })
            .await;
        let manager = server.agent("delete-manager", true).await;
        let as_manager = server.as_token(&server.token(pb::token_owner::Owner::AgentId(manager.id)).await);
        let note = write(
            &as_manager,
            pb::Comment {
                body: "Note: Quillonius prefers calls".into(),
                visibility: pb::CommentVisibility::Internal.into(),
                parent: Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::CustomerId(person.id.clone())) }),
                ..Default::default()
            },
        )
        .await
        .expect("note");
        server
            .customers()
            .delete_customer(pb::DeleteCustomerRequest { id: person.id.clone(), etag: person.etag.clone() })
            .await
            .expect("delete");
        assert_eq!(canaries_in(&stored_bytes(&server)), Vec::<String>::new());
        let entries = history(&server, pb::ResourceType::Customer, &person.id).await;
        let kinds: Vec<i32> = entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [i32::from(pb::ChangeKind::Created), i32::from(pb::ChangeKind::Deleted)]);
        assert!(entries[0].values_erased);
        // A deleted note has no history to show; its entries are kept, without their values.
        let note_log = server
            .store
            .changes_of(clientele::model::ResourceType::Comment, note.id.parse().expect("uuid"))
            .await
            .expect("log");
        let kinds: Vec<&str> = note_log.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "deleted"]);
        assert!(note_log[0].values_erased, "the note's text is gone from its history");
        expect_code(
            server.customers().get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Id(person.id.clone())) }).await,
            Code::NotFound,
        );
    }

    async fn erasures_that_cannot_be_done_are_refused_clearly_and_change_nothing(server) {
        let desk = server.desk("refuse").await;
        desk.create(desk.ticket("Open one")).await;
        let before = server.snapshot().await;
        let mut privacy = server.privacy();
        expect_invalid(erase(&mut privacy, pb::EraseCustomerRequest { id: "not-an-id".into(), ..Default::default() }).await, "id");
        expect_code(
            erase(&mut privacy, pb::EraseCustomerRequest { id: uuid::Uuid::now_v7().to_string(), ..Default::default() }).await,
            Code::NotFound,
        );
        expect_invalid(
            erase(&mut privacy, pb::EraseCustomerRequest { id: desk.customer.id.clone(), open_ticket_handling: 7, ..Default::default() }).await,
            "open_ticket_handling",
        );
        expect_code(
            erase(&mut privacy, pb::EraseCustomerRequest { id: desk.customer.id.clone(), etag: "v0".into(), open_ticket_handling: pb::OpenTicketHandling::Keep.into(), ..Default::default() }).await,
            Code::Aborted,
        );
        let denied = expect_code(
            erase(&mut desk.as_agent.privacy.clone(), pb::EraseCustomerRequest { id: desk.customer.id.clone(), open_ticket_handling: pb::OpenTicketHandling::Keep.into(), ..Default::default() }).await,
            Code::PermissionDenied,
        );
        assert_eq!(reason(&denied).as_deref(), Some("NO_MANAGE_CUSTOMERS"));
        expect_code(
            erase(&mut desk.as_customer.privacy.clone(), pb::EraseCustomerRequest { id: desk.customer.id.clone(), open_ticket_handling: pb::OpenTicketHandling::Keep.into(), ..Default::default() }).await,
            Code::PermissionDenied,
        );
        assert_eq!(server.snapshot().await, before);
        // The tombstones' domain is nobody's address.
        let refused = server
            .customers()
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer { email: "someone@erased.invalid".into(), ..Default::default() }),
                request_id: String::new(),
            })
            .await;
        expect_invalid(refused, "customer.email");
    }

    async fn the_export_holds_what_is_stored_about_the_person_as_the_caller_may_read_it(server) {
        let desk = server.desk("export").await;
        let (person, ticket) = person_with_a_past(&server, &desk).await;
        let internal = write(
            &desk.as_agent,
            pb::Comment { body: "Agents only".into(), visibility: pb::CommentVisibility::Internal.into(), parent: on_ticket(&ticket), ..Default::default() },
        )
        .await
        .expect("internal comment");
        let admin = server.as_token(&server.admin_secret);
        let items = export(&admin, &person.id).await.expect("export");
        let kinds = item_kinds(&items);
        let first_change = kinds.iter().position(|k| *k == "change").expect("changes");
        assert_eq!(
            kinds[..first_change],
            ["customer", "organisation", "grant", "token", "ticket", "comment", "comment", "comment", "comment"],
            "the record, its organisation, grant, token, ticket, the reply, the private comment, the internal one, the note"
        );
        assert!(kinds[first_change..].iter().all(|k| *k == "change"));
        use pb::export_customer_data_response::Item;
        let Some(Item::Customer(record)) = &items[0].item else { panic!("the record first") };
        assert_eq!(record.secondary_emails, ["quill.olddup7@erase.example"]);
        let comments: Vec<&pb::Comment> = items.iter().filter_map(|i| match &i.item { Some(Item::Comment(c)) => Some(c), _ => None }).collect();
        let reply = comments.iter().find(|c| c.body.contains("canary reply")).expect("the reply");
        assert_eq!(reply.attachments.len(), 1, "with its attachment's metadata");
        assert_eq!(reply.attachments[0].file_name, "canary-contract-7.pdf");
        let changed: Vec<(i32, String)> = items
            .iter()
            .filter_map(|i| match &i.item { Some(Item::Change(c)) => Some((c.resource_type, c.resource_id.clone())), _ => None })
            .collect();
        assert!(changed.contains(&(pb::ResourceType::Customer.into(), person.id.clone())));
        assert!(changed.iter().any(|(kind, _)| *kind == i32::from(pb::ResourceType::Grant)));
        assert!(changed.iter().any(|(kind, _)| *kind == i32::from(pb::ResourceType::Token)));
        assert!(changed.contains(&(pb::ResourceType::Ticket.into(), ticket.id.clone())));
        assert!(changed.contains(&(pb::ResourceType::Comment.into(), internal.id.clone())));

        // The person with their own token: what they may read, no internal comment or note.
        let secret = server.token(pb::token_owner::Owner::CustomerId(person.id.clone())).await;
        let as_person = server.as_token(&secret);
        let own = export(&as_person, &person.id).await.expect("own export");
        let own_comments: Vec<String> = own.iter().filter_map(|i| match &i.item { Some(Item::Comment(c)) => Some(c.body.clone()), _ => None }).collect();
        assert_eq!(own_comments, ["Quillon wrote this canary reply", "Only for you"]);
        assert!(!own.iter().any(|i| matches!(&i.item, Some(Item::Change(c)) if c.resource_id == internal.id)));
        // Nobody else's data, and agents without the customer administration right get none.
        expect_code(export(&as_person, &desk.customer.id).await, Code::NotFound);
        let denied = expect_code(export(&desk.as_agent, &person.id).await, Code::PermissionDenied);
        assert_eq!(reason(&denied).as_deref(), Some("NO_MANAGE_CUSTOMERS"));
        expect_invalid(export(&admin, "nope").await, "id");
        expect_code(export(&admin, &uuid::Uuid::now_v7().to_string()).await, Code::NotFound);
    }
}

mod the_retention_erases_old_values_of_customers_and_keeps_the_entries {
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
        let clock = std::sync::Arc::new(clientele::clock::ManualClock::new(
            crate::support::desk::MONDAY_0900_BERLIN
                .parse()
                .expect("start time"),
        ));
        let Some(server) = TestServer::start_with(backend, |config| {
            config.clock = clock.clone();
            config.customer_history_retention = Some(std::time::Duration::from_secs(30 * 86_400));
        })
        .await
        else {
            return;
        };
        let desk = server.desk("retain").await;
        let ticket = desk.create(desk.ticket("Kept as it is")).await;
        let person = server
            .customer(pb::Customer {
                email: "old.values@retain.example".into(),
                phone: "+1 555 0101".into(),
                ..Default::default()
            })
            .await;
        clock.advance(SignedDuration::from_hours(24 * 31));
        eventually("the old customer values are erased", || async {
            history(&server, pb::ResourceType::Customer, &person.id)
                .await
                .iter()
                .all(|e| e.values_erased)
        })
        .await;
        let entries = history(&server, pb::ResourceType::Customer, &person.id).await;
        assert_eq!(entries.len(), 1);
        assert!(
            entries[0].changes.iter().any(|c| c.field == "phone"),
            "the field names stay: {entries:?}"
        );
        // A change made now keeps its values; tickets keep theirs whatever their age.
        let fresh = server
            .customer(pb::Customer {
                email: "new.values@retain.example".into(),
                ..Default::default()
            })
            .await;
        assert!(
            history(&server, pb::ResourceType::Customer, &fresh.id)
                .await
                .iter()
                .all(|e| !e.values_erased)
        );
        assert!(
            history(&server, pb::ResourceType::Ticket, &ticket.id)
                .await
                .iter()
                .all(|e| !e.values_erased)
        );
        server.stop().await;
    }
}
