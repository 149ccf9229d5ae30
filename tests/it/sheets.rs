//! RenderCustomerSheet: the printable sheet of an organisation or a customer, read back with
//! poppler's `pdftotext`: master data, contacts, open tickets with their deadlines, notes for
//! staff; what the caller may not read is not on it; the stream's pieces join to the file.

use std::collections::HashMap;

use clientele::{clock::Clock, proto::v1 as pb};
use jiff::SignedDuration;
use tonic::Code;

use crate::{clients::available, support::*};

type CustomersClient = clientele::proto::v1::customer_service_client::CustomerServiceClient<Authed>;

/// A rendered sheet: the first message's metadata, the pieces' sizes and the file.
#[derive(Debug)]
struct Rendered {
    head: pb::RenderCustomerSheetResponse,
    pieces: Vec<usize>,
    file: Vec<u8>,
}

async fn render(
    mut client: CustomersClient,
    subject: pb::render_customer_sheet_request::Subject,
    time_zone: &str,
) -> Result<Rendered, tonic::Status> {
    let mut stream = client
        .render_customer_sheet(pb::RenderCustomerSheetRequest {
            subject: Some(subject),
            time_zone: time_zone.into(),
        })
        .await?
        .into_inner();
    let mut head = None;
    let mut pieces = Vec::new();
    let mut file = Vec::new();
    while let Some(message) = stream.message().await? {
        pieces.push(message.chunk.len());
        file.extend_from_slice(&message.chunk);
        head.get_or_insert(pb::RenderCustomerSheetResponse {
            chunk: Vec::new(),
            ..message
        });
    }
    Ok(Rendered {
        head: head.expect("at least one message"),
        pieces,
        file,
    })
}

fn of_customer(id: &str) -> pb::render_customer_sheet_request::Subject {
    pb::render_customer_sheet_request::Subject::CustomerId(id.into())
}

fn of_organisation(id: &str) -> pb::render_customer_sheet_request::Subject {
    pb::render_customer_sheet_request::Subject::OrganisationId(id.into())
}

/// The text of `pdf` as pdftotext reads it, with every run of white space made one space;
/// `None` when pdftotext is not installed (and not required).
fn text_of(pdf: &[u8]) -> Option<String> {
    if !available("pdftotext", &["-v"]) {
        return None;
    }
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), pdf).expect("write the sheet");
    let output = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(file.path())
        .arg("-")
        .output()
        .expect("pdftotext");
    assert!(
        output.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 text");
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A note on `parent` by the admin.
async fn note(server: &TestServer, parent: pb::comment_parent::Parent, body: &str) {
    server
        .comments()
        .create_comment(pb::CreateCommentRequest {
            comment: Some(pb::Comment {
                body: body.into(),
                visibility: pb::CommentVisibility::Internal.into(),
                parent: Some(pb::CommentParent {
                    parent: Some(parent),
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("note");
}

clock_tests! {
    async fn an_organisation_sheet_shows_its_data_contacts_open_tickets_with_deadlines_and_notes(server, clock) {
        let desk = server.desk("acme").await;
        let org = server
            .organisations()
            .update_organisation(pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    name: "Acme Corporation".into(),
                    street: "Invalidenstraße 1".into(),
                    zip: "10115".into(),
                    city: "Berlin".into(),
                    url: "https://acme.example".into(),
                    custom_fields: HashMap::from([("tier".to_owned(), "gold".to_owned())]),
                    ..desk.organisation.clone()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: ["name", "street", "zip", "city", "url", "custom_fields"].map(String::from).to_vec(),
                }),
            })
            .await
            .expect("update organisation")
            .into_inner()
            .organisation
            .expect("organisation");
        server.customer(pb::Customer {
            email: "anna.mueller@acme.example".into(),
            first_name: "Anna".into(),
            last_name: "Müller".into(),
            phone: "+49 30 1234567".into(),
            organisation_id: org.id.clone(),
            ..Default::default()
        }).await;
        let policy = server.policy("Fast", Some(SignedDuration::from_hours(1)), None, Some(SignedDuration::from_hours(8)), 0, "").await;
        let open = desk.create(pb::Ticket { sla_policy_id: policy.id.clone(), ..desk.ticket("Printer on fire") }).await;
        let done = desk.create(desk.ticket("An old closed matter")).await;
        desk::update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..done }, &["state"]).await.expect("close");
        note(&server, pb::comment_parent::Parent::OrganisationId(org.id.clone()), "Gate code 4711, ask for Mrs. Weiß at the desk.").await;
        clock.set(clock.now() + SignedDuration::from_mins(90));
        desk::eventually("the first response escalates", || {
            let server = &server;
            let id = open.id.clone();
            async move { desk::ticket(server, &id).await.first_response_escalation() == pb::Escalation::Escalated }
        }).await;

        let sheet = render(server.customers(), of_organisation(&org.id), "Europe/Berlin").await.expect("render");
        assert_eq!(sheet.head.content_type, "application/pdf");
        assert_eq!(sheet.head.file_name, format!("organisation-{}.pdf", org.id));
        assert_eq!(usize::try_from(sheet.head.size).expect("size"), sheet.file.len());
        assert!(sheet.file.starts_with(b"%PDF-"));
        let Some(text) = text_of(&sheet.file) else { return };
        for expected in [
            "Acme Corporation",
            "Organisation sheet · key acme",
            "times in Europe/Berlin",
            "Invalidenstraße 1 10115 Berlin DE",
            "https://acme.example",
            "tier gold",
            // Contacts.
            "Anna Müller",
            "anna.mueller@acme.example · phone +49 30 1234567",
            "Some One",
            // The open ticket, its deadlines in Berlin time (created 09:00), its alert.
            &format!("#{} Printer on fire", open.number),
            "First response due 2026-11-30 10:00 (ESCALATED) · solution due 2026-11-30 17:00",
            "1 open, 1 closed; of the open ones 1 escalated",
            // Notes, for staff.
            "Gate code 4711, ask for Mrs. Weiß at the desk.",
            "page 1 of 1",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        assert!(!text.contains("An old closed matter"), "closed tickets are counted, not listed");
    }
}

backend_tests! {
    async fn a_customer_gets_its_own_sheet_without_notes_and_no_one_elses(server) {
        let desk = server.desk("acme").await;
        let elsewhere = server.desk("elsewhere").await;
        let ticket = desk.create(desk.ticket("My printer")).await;
        note(&server, pb::comment_parent::Parent::CustomerId(desk.customer.id.clone()), "Prefers calls after 3 pm").await;
        let own = render(desk.as_customer.customers.clone(), of_customer(&desk.customer.id), "").await.expect("own sheet");
        assert_eq!(own.head.file_name, format!("customer-{}.pdf", desk.customer.id));
        if let Some(text) = text_of(&own.file) {
            for expected in ["Some One", "someone@acme.example", "acme Ltd (acme)", "times in UTC", &format!("#{} My printer", ticket.number)] {
                assert!(text.contains(expected), "{expected:?} not in {text}");
            }
            assert!(!text.contains("Prefers calls"), "notes are for staff: {text}");
            assert!(!text.contains("Notes ("), "{text}");
        }
        // Staff see the notes, the newest first.
        note(&server, pb::comment_parent::Parent::CustomerId(desk.customer.id.clone()), "Moved to the Hamburg office").await;
        let staff = render(desk.as_agent.customers.clone(), of_customer(&desk.customer.id), "").await.expect("agent's sheet");
        if let Some(text) = text_of(&staff.file) {
            assert!(text.contains("Notes (2)"), "{text}");
            let newer = text.find("Moved to the Hamburg office").expect("the newer note");
            let older = text.find("Prefers calls after 3 pm").expect("the older note");
            assert!(newer < older, "{text}");
        }
        // Another customer's sheet, or another organisation's, is not found.
        let before = server.snapshot().await;
        expect_code(render(desk.as_customer.customers.clone(), of_customer(&elsewhere.customer.id), "").await, Code::NotFound);
        expect_code(render(desk.as_customer.customers.clone(), of_organisation(&elsewhere.organisation.id), "").await, Code::NotFound);
        expect_code(render(server.customers(), of_customer(&uuid::Uuid::now_v7().to_string()), "").await, Code::NotFound);
        // Bad requests name their field.
        let mut client = server.customers();
        let none = client.render_customer_sheet(pb::RenderCustomerSheetRequest::default()).await;
        expect_invalid(none.map(|_| ()), "subject");
        expect_invalid(render(server.customers(), of_customer("not-an-id"), "").await, "customer_id");
        expect_invalid(render(server.customers(), of_organisation("\0"), "").await, "organisation_id");
        expect_invalid(render(server.customers(), of_customer(&desk.customer.id), "Mars/Olympus_Mons").await, "time_zone");
        expect_invalid(render(server.customers(), of_customer(&desk.customer.id), "Europe/\0Berlin").await, "time_zone");
        assert_eq!(server.snapshot().await, before, "a sheet writes nothing");
    }

    async fn a_long_sheet_runs_over_pages_and_its_pieces_join_to_the_file(server) {
        let desk = server.desk("acme").await;
        let mut last = None;
        for n in 1..=90 {
            last = Some(desk.create(desk.ticket(&format!("Ticket number {n} about the office printer"))).await);
        }
        let last = last.expect("tickets");
        let long: String = (1..=2500).map(|n| format!("word{n} ")).collect();
        note(&server, pb::comment_parent::Parent::CustomerId(desk.customer.id.clone()), &long).await;
        let sheet = render(server.customers(), of_customer(&desk.customer.id), "Asia/Tokyo").await.expect("render");
        assert!(sheet.pieces.len() >= 2, "{} bytes in {:?}", sheet.file.len(), sheet.pieces);
        let (tail, full) = sheet.pieces.split_last().expect("pieces");
        assert!(full.iter().all(|size| *size == 48 * 1024), "{:?}", sheet.pieces);
        assert!(*tail > 0 && *tail <= 48 * 1024);
        assert_eq!(usize::try_from(sheet.head.size).expect("size"), sheet.file.len());
        let Some(text) = text_of(&sheet.file) else { return };
        let pages = text
            .split("page 1 of ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u32>().ok())
            .expect("a page count in the footer");
        assert!(pages >= 3, "{pages} pages");
        assert!(text.contains(&format!("page {pages} of {pages}")));
        assert!(text.contains("Open tickets (90)"));
        assert!(text.contains(&format!("#{} Ticket number 90 about the office printer", last.number)), "{text}");
        assert!(text.contains("word1 word2 word3") && text.contains("word2499 word2500"), "the note is whole");
    }
}
