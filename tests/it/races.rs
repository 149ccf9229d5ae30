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

    async fn merges_transfers_deletions_and_updates_under_load_never_answer_internal(server) {
        let desk = server.desk("load").await;
        let mut people = Vec::new();
        for n in 0..12 {
            let customer = server.customer(person(&desk, &format!("p{n}@load.example"))).await;
            ticket_for(&server, &desk.group, &customer).await;
            people.push(customer.id);
        }
        let people = std::sync::Arc::new(people);
        let deadline = Instant::now() + LOAD;
        let mut clients = Vec::new();
        for worker in 0..6usize {
            let server_customers = server.customers();
            let server_tickets = server.tickets();
            let people = people.clone();
            clients.push(tokio::spawn(async move {
                let (mut customers, mut tickets) = (server_customers, server_tickets);
                let mut answers: Vec<Result<(), Status>> = Vec::new();
                let mut n = worker;
                while Instant::now() < deadline {
                    n = n.wrapping_mul(31).wrapping_add(7);
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
                    let answer = match n % 4 {
                        0 => customers.merge_customers(pb::MergeCustomersRequest { source_id: first, target_id: second, source_etag: first_etag, target_etag: second_etag }).await.map(|_| ()),
                        1 => tickets.transfer_tickets(pb::TransferTicketsRequest { from_customer_id: first, to_customer_id: second, open_only: false }).await.map(|_| ()),
                        2 => customers.delete_customer(pb::DeleteCustomerRequest { id: first, etag: first_etag }).await.map(|_| ()),
                        _ => customers.update_customer(pb::UpdateCustomerRequest {
                            customer: Some(pb::Customer { id: first, etag: first_etag, phone: format!("+49 30 {n:06}"), ..Default::default() }),
                            update_mask: Some(prost_types::FieldMask { paths: vec!["phone".into()] }),
                        }).await.map(|_| ()),
                    };
                    answers.push(answer);
                }
                answers
            }));
        }
        let mut done = 0;
        for client in clients {
            for answer in client.await.expect("client") {
                match answer {
                    Ok(()) => done += 1,
                    Err(status) => assert!(is_an_answer_to_a_race(&status), "a race is answered with a code a client acts on: {status:?}"),
                }
            }
        }
        assert!(done > 0, "some writes went through");
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
