//! Concurrent writes of the same records: a race is answered as the request would have been
//! answered had it come second (done, NOT_FOUND, a stale etag, ALREADY_EXISTS), or ABORTED
//! with `RetryInfo` when the service's own runs again did not get through; never INTERNAL.
//! Every round and load here is bounded in count and time.

use std::time::{Duration, Instant};

use clientele::proto::v1 as pb;
use tonic::{Code, Status};

use crate::support::*;

/// How long the mixed load runs on each database.
const LOAD: Duration = Duration::from_secs(3);

/// A code a race may answer: anything a client is told to act on, nothing that says "bug".
fn is_an_answer_to_a_race(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::NotFound
            | Code::Aborted
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::InvalidArgument
    )
}

async fn ticket_for(server: &TestServer, group: &pb::Group, customer: &pb::Customer) -> pb::Ticket {
    server
        .tickets()
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                title: format!("ticket of {}", customer.email),
                group_id: group.id.clone(),
                customer_id: customer.id.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create ticket")
        .into_inner()
        .ticket
        .expect("ticket")
}

fn by_id(id: &str) -> pb::get_customer_request::Key {
    pb::get_customer_request::Key::Id(id.to_owned())
}

/// A customer of `desk`'s organisation, so that it may use the desk's group.
fn person(desk: &desk::Desk, email: &str) -> pb::Customer {
    pb::Customer {
        email: email.to_owned(),
        last_name: "Race".to_owned(),
        organisation_id: desk.organisation.id.clone(),
        ..Default::default()
    }
}

/// A write a client of the mixed load was told had happened.
enum Ack {
    /// A ticket made, with its number.
    Ticket(String, i64),
    /// A customer merged away or deleted.
    Gone(String),
    /// A customer's phone set to this.
    Phone(String),
    /// A transfer.
    Other,
}

/// Every ticket of the server, as the admin lists them.
async fn all_tickets(server: &TestServer) -> Vec<pb::Ticket> {
    let mut stream = server
        .tickets()
        .list_tickets(pb::ListTicketsRequest::default())
        .await
        .expect("list tickets")
        .into_inner();
    let mut tickets = Vec::new();
    while let Some(item) = stream.message().await.expect("ticket") {
        tickets.push(item.ticket.expect("ticket"));
    }
    tickets
}

/// Every ticket's customers exist; ticket numbers are unique.
async fn assert_tickets_whole(server: &TestServer) {
    let tickets = all_tickets(server).await;
    let mut numbers: Vec<i64> = tickets.iter().map(|t| t.number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), tickets.len(), "ticket numbers are unique");
    for ticket in &tickets {
        for id in std::iter::once(&ticket.customer_id).chain(&ticket.additional_customer_ids) {
            server
                .customers()
                .get_customer(pb::GetCustomerRequest {
                    key: Some(by_id(id)),
                })
                .await
                .unwrap_or_else(|e| panic!("ticket {} names customer {id}: {e:?}", ticket.number));
        }
    }
}

backend_tests! {
    async fn merges_crosswise_at_the_same_moment_leave_one_merged_and_answer_the_other_as_second(server) {
        let desk = server.desk("crosswise").await;
        let group = &desk.group;
        for round in 0..8 {
            let a = server.customer(person(&desk, &format!("a{round}@crosswise.example"))).await;
            let b = server.customer(person(&desk, &format!("b{round}@crosswise.example"))).await;
            let ticket_a = ticket_for(&server, group, &a).await;
            let ticket_b = ticket_for(&server, group, &b).await;
            let (a_etag, b_etag) = (server.customer_etag(&a.id).await, server.customer_etag(&b.id).await);
            let mut one = server.customers();
            let mut other = server.customers();
            let (ab, ba) = tokio::join!(
                one.merge_customers(pb::MergeCustomersRequest { source_id: a.id.clone(), target_id: b.id.clone(), source_etag: a_etag.clone(), target_etag: b_etag.clone() }),
                other.merge_customers(pb::MergeCustomersRequest { source_id: b.id.clone(), target_id: a.id.clone(), source_etag: b_etag, target_etag: a_etag }),
            );
            let (survivor, second) = match (ab, ba) {
                (Ok(merged), Err(second)) | (Err(second), Ok(merged)) => (merged.into_inner().customer.expect("customer"), second),
                (ab, ba) => panic!("round {round}: exactly one merge goes through: {ab:?} / {ba:?}"),
            };
            assert!(
                matches!(second.code(), Code::NotFound | Code::Aborted),
                "round {round}: the second merge finds its source or target gone or changed: {second:?}"
            );
            for id in [&ticket_a.id, &ticket_b.id] {
                assert_eq!(desk::ticket(&server, id).await.customer_id, survivor.id, "round {round}: both tickets are the survivor's");
            }
        }
        assert_tickets_whole(&server).await;
    }

    async fn merges_transfers_deletions_updates_and_creates_under_load_never_answer_internal_and_keep_every_acknowledged_write(server) {
        let desk = server.desk("load").await;
        let mut people = Vec::new();
        for n in 0..12 {
            let customer = server.customer(person(&desk, &format!("p{n}@load.example"))).await;
            ticket_for(&server, &desk.group, &customer).await;
            people.push(customer.id);
        }
        let people = std::sync::Arc::new(people);
        let group = desk.group.id.clone();
        let deadline = Instant::now() + LOAD;
        let mut clients = Vec::new();
        for worker in 0..6usize {
            let server_customers = server.customers();
            let server_tickets = server.tickets();
            let (people, group) = (people.clone(), group.clone());
            clients.push(tokio::spawn(async move {
                let (mut customers, mut tickets) = (server_customers, server_tickets);
                let mut answers: Vec<Result<Ack, Status>> = Vec::new();
                let mut n = worker;
                let mut count = 0usize;
                while Instant::now() < deadline {
                    n = n.wrapping_mul(31).wrapping_add(7);
                    count += 1;
                    let first = people[n % people.len()].clone();
                    let second = people[(n / 7 + 1 + worker) % people.len()].clone();
                    if first == second {
                        continue;
                    }
                    let etag_of = |customer: Result<tonic::Response<pb::GetCustomerResponse>, Status>| customer.ok().and_then(|c| c.into_inner().customer).map(|c| c.etag).unwrap_or_default();
                    let first_etag = etag_of(customers.get_customer(pb::GetCustomerRequest { key: Some(by_id(&first)) }).await);
                    let second_etag = etag_of(customers.get_customer(pb::GetCustomerRequest { key: Some(by_id(&second)) }).await);
                    if first_etag.is_empty() || second_etag.is_empty() {
                        continue;
                    }
                    let answer = match n % 5 {
                        0 => customers.merge_customers(pb::MergeCustomersRequest { source_id: first.clone(), target_id: second, source_etag: first_etag, target_etag: second_etag }).await.map(|_| Ack::Gone(first)),
                        1 => tickets.transfer_tickets(pb::TransferTicketsRequest { from_customer_id: first, to_customer_id: second, open_only: false }).await.map(|_| Ack::Other),
                        2 => customers.delete_customer(pb::DeleteCustomerRequest { id: first.clone(), etag: first_etag }).await.map(|_| Ack::Gone(first)),
                        3 => {
                            let phone = format!("+49 30 {worker}{count:06}");
                            customers.update_customer(pb::UpdateCustomerRequest {
                                customer: Some(pb::Customer { id: first, etag: first_etag, phone: phone.clone(), ..Default::default() }),
                                update_mask: Some(prost_types::FieldMask { paths: vec!["phone".into()] }),
                            }).await.map(|_| Ack::Phone(phone))
                        }
                        _ => tickets.create_ticket(pb::CreateTicketRequest {
                            ticket: Some(pb::Ticket { title: format!("load {worker}/{count}"), group_id: group.clone(), customer_id: first, ..Default::default() }),
                            request_id: String::new(),
                        }).await.map(|made| {
                            let ticket = made.into_inner().ticket.unwrap_or_default();
                            Ack::Ticket(ticket.id, ticket.number)
                        }),
                    };
                    answers.push(answer);
                }
                answers
            }));
        }
        let mut acknowledged = Vec::new();
        for client in clients {
            let mut numbers = Vec::new();
            for answer in client.await.expect("client") {
                match answer {
                    Ok(Ack::Ticket(id, number)) => {
                        numbers.push(number);
                        acknowledged.push(Ack::Ticket(id, number));
                    }
                    Ok(ack) => acknowledged.push(ack),
                    Err(status) => assert!(is_an_answer_to_a_race(&status), "a race is answered with a code a client acts on: {status:?}"),
                }
            }
            assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "one client's tickets are numbered in the order it created them: {numbers:?}");
        }
        assert!(acknowledged.iter().any(|ack| matches!(ack, Ack::Ticket(..))), "some tickets were created");
        assert!(acknowledged.iter().any(|ack| matches!(ack, Ack::Gone(..))), "some customers were merged or deleted");
        assert!(acknowledged.iter().any(|ack| matches!(ack, Ack::Phone(..))), "some customers were updated");
        // Every acknowledged write is there: each ticket made; each merged or deleted customer
        // gone; each surviving customer's phone is one a client was told was written (a merge
        // fills the survivor's empty fields from the merged customer).
        let mut customers = server.customers();
        for ack in &acknowledged {
            match ack {
                Ack::Ticket(id, number) => assert_eq!(desk::ticket(&server, id).await.number, *number, "acknowledged ticket {id} is there"),
                Ack::Gone(id) => {
                    let found = customers.get_customer(pb::GetCustomerRequest { key: Some(by_id(id)) }).await;
                    assert_eq!(found.map(|_| ()).expect_err("a merged or deleted customer stays gone").code(), Code::NotFound);
                }
                Ack::Phone(_) | Ack::Other => {}
            }
        }
        for id in people.iter() {
            let Ok(found) = customers.get_customer(pb::GetCustomerRequest { key: Some(by_id(id)) }).await else { continue };
            let phone = found.into_inner().customer.expect("customer").phone;
            assert!(
                phone.is_empty() || acknowledged.iter().any(|ack| matches!(ack, Ack::Phone(sent) if *sent == phone)),
                "customer {id} has phone {phone:?}, which no acknowledged update wrote (of it, or of a customer merged into it)"
            );
        }
        assert_tickets_whole(&server).await;
    }

    async fn identical_imports_at_once_count_rows_as_unchanged_not_failed(server) {
        let rows: Vec<pb::ImportCustomersRequest> = (0..30)
            .map(|n| pb::ImportCustomersRequest {
                row: Some(pb::CustomerImportRow {
                    email: format!("row{n}@imports.example"),
                    first_name: "Row".into(),
                    last_name: format!("{n}"),
                    external_id: format!("ext-{n}"),
                    ..Default::default()
                }),
            })
            .collect();
        let import = |rows: Vec<pb::ImportCustomersRequest>| {
            let mut customers = server.customers();
            async move { customers.import_customers(tokio_stream::iter(rows)).await.expect("import").into_inner().summary.expect("summary") }
        };
        let summaries = futures_join4(import(rows.clone()), import(rows.clone()), import(rows.clone()), import(rows)).await;
        for summary in &summaries {
            assert_eq!(summary.failed, 0, "no row fails for another import of the same rows: {:?}", summary.errors);
            assert_eq!(summary.created + summary.updated + summary.unchanged, 30);
        }
        assert_eq!(summaries.iter().map(|s| s.created).sum::<i64>(), 30, "each row is created once");
    }
}

async fn futures_join4<T>(
    a: impl Future<Output = T>,
    b: impl Future<Output = T>,
    c: impl Future<Output = T>,
    d: impl Future<Output = T>,
) -> [T; 4] {
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    [a, b, c, d]
}

/// The database itself answers a customer update as it answers a race: on PostgreSQL a
/// trigger raises a serialization failure (40001) or a deadlock (40P01), counted by a sequence,
/// which no rollback undoes; on SQLite (whose triggers cannot raise a chosen code) a trigger
/// writes a row whose foreign key names no customer, as a customer deleted meanwhile would.
/// The service runs the request again until it goes through; one that never does is answered
/// ABORTED `CONCURRENT_WRITE` with `RetryInfo` (after exactly five runs, PostgreSQL counts),
/// and changes nothing.
mod injected {
    use clientele::{error::CONFLICT_MARK, retry::ATTEMPTS};
    use sea_orm::{ConnectionTrait, DatabaseConnection};
    use tonic_types::StatusExt;

    use super::*;

    const INJECT_POSTGRES: &str = r#"
        CREATE SEQUENCE injected_conflicts;
        CREATE FUNCTION inject_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.phone = '+49 30 1' AND nextval('injected_conflicts') <= 2 THEN
                RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
            ELSIF NEW.phone = '+49 30 2' THEN
                PERFORM nextval('injected_conflicts');
                RAISE EXCEPTION 'injected deadlock' USING ERRCODE = '40P01';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER inject_conflict BEFORE UPDATE ON customers
            FOR EACH ROW EXECUTE FUNCTION inject_conflict();
    "#;

    const INJECT_SQLITE: &str = "
        CREATE TABLE injected (customer_id BLOB NOT NULL REFERENCES customers (id));
        CREATE TRIGGER inject_conflict BEFORE UPDATE ON customers
            WHEN NEW.phone = '+49 30 2'
            BEGIN INSERT INTO injected (customer_id) VALUES (X'00'); END;
    ";

    /// How many runs the PostgreSQL trigger counted.
    async fn runs(database: &DatabaseConnection) -> i64 {
        let row = database
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT last_value FROM injected_conflicts",
            ))
            .await
            .expect("read the sequence")
            .expect("a row");
        row.try_get_by_index(0).expect("last_value")
    }

    backend_tests! {
        async fn a_write_that_meets_a_concurrent_one_is_run_again_before_the_client_sees_aborted(server) {
            let database = sea_orm::Database::connect(&server.database.url).await.expect("connect");
            let postgres = server.backend() == Backend::Postgres;
            database.execute_unprepared(if postgres { INJECT_POSTGRES } else { INJECT_SQLITE }).await.expect("install the trigger");
            let customer = server.customer(pb::Customer { email: "rerun@races.example".into(), last_name: "Rerun".into(), ..Default::default() }).await;
            let update = |etag: String, phone: &str| pb::UpdateCustomerRequest {
                customer: Some(pb::Customer { id: customer.id.clone(), etag, phone: phone.into(), ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["phone".into()] }),
            };

            // On PostgreSQL two runs fail and the third goes through: the client sees only
            // the success.
            let updated = server.customers().update_customer(update(customer.etag.clone(), "+49 30 1")).await.expect("run again until it went through").into_inner().customer.expect("customer");
            assert_eq!(updated.phone, "+49 30 1");
            if postgres {
                assert_eq!(runs(&database).await, 3, "two failed runs and the one that went through");
            }

            // Every run fails: ABORTED with its reason and retry delay, without the service's
            // internal mark or the database's text, and nothing changed.
            let before = server.snapshot().await;
            let status = server.customers().update_customer(update(updated.etag.clone(), "+49 30 2")).await.expect_err("never goes through");
            assert_eq!(status.code(), Code::Aborted, "{status:?}");
            if postgres {
                assert_eq!(runs(&database).await, 3 + i64::from(ATTEMPTS), "five runs in all");
            }
            assert_eq!(status.get_details_error_info().map(|info| info.reason), Some("CONCURRENT_WRITE".to_owned()));
            assert!(status.get_details_retry_info().and_then(|info| info.retry_delay).is_some(), "a retry delay");
            assert!(!status.metadata().contains_key(CONFLICT_MARK), "the mark stays inside");
            assert!(!status.message().contains("injected") && !status.message().contains("FOREIGN KEY"), "the database's text is not sent: {}", status.message());
            assert_eq!(server.snapshot().await, before, "nothing changed");
            assert_eq!(server.customer_by_id(&customer.id).await.phone, "+49 30 1");
            database.close().await.expect("close");
        }
    }
}
