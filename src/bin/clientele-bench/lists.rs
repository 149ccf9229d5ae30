//! The customer list and search as an agent calls them: the first page, a page deep into the
//! list, a search with one hit and one with many (issue: lists and search that do not grow
//! with the data).

use clientele::proto::v1::{self as pb, customer_service_client::CustomerServiceClient};

use crate::{
    Args, BenchError,
    load::{Measured, requests},
    seed::Fixture,
    server::{Authed, Target},
};

/// What the list scenarios measured.
#[derive(Clone, Debug, Default)]
pub struct Lists {
    /// ListCustomers, first page of 20, no filter.
    pub first_page: Measured,
    /// The page of 20 after the first 20,000 customers (or half of them, if fewer).
    pub deep_page: Measured,
    /// How deep the deep page is.
    pub depth: usize,
    /// A search with one hit: the local part of one customer's address.
    pub search_one: Measured,
    /// A search with many hits, ranked: "customer 12".
    pub search_many: Measured,
}

/// A page of 20 customers as an agent asks for it.
fn page(text: String, page_token: String) -> pb::ListCustomersRequest {
    pb::ListCustomersRequest {
        text,
        page_size: 20,
        page_token,
        ..Default::default()
    }
}

/// Runs the list scenarios as the fixture's agent over `agents`.
pub async fn lists(
    args: &Args,
    target: &Target,
    agents: &[Authed],
    fixture: &Fixture,
) -> Result<Lists, BenchError> {
    let clients: Vec<_> = agents
        .iter()
        .cloned()
        .map(CustomerServiceClient::new)
        .collect();
    let customers = usize::try_from(fixture.sizes.1.max(1)).unwrap_or(1);
    // The token of a page deep into the list, read the way a client pages there.
    let depth = (customers / 2).min(20_000);
    let mut client = clients[0].clone();
    let mut token = String::new();
    let mut read = 0;
    while read < depth {
        let size = (depth - read).min(1000);
        let response = client
            .list_customers(pb::ListCustomersRequest {
                page_size: i32::try_from(size).unwrap_or(1000),
                page_token: token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        read += response.customers.len();
        token = response.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let found = |response: Result<tonic::Response<pb::ListCustomersResponse>, tonic::Status>| {
        response.is_ok_and(|r| !r.into_inner().customers.is_empty())
    };
    eprintln!("ListCustomers, first page …");
    let first_page = requests(
        args,
        target,
        clients.clone(),
        move |mut client, _| async move {
            found(
                client
                    .list_customers(page(String::new(), String::new()))
                    .await,
            )
        },
    )
    .await;
    eprintln!("ListCustomers, a page {depth} customers deep …");
    let deep_page = requests(args, target, clients.clone(), {
        let token = token.clone();
        move |mut client, _| {
            let token = token.clone();
            async move { found(client.list_customers(page(String::new(), token)).await) }
        }
    })
    .await;
    eprintln!("ListCustomers, a search with one hit …");
    let search_one = requests(
        args,
        target,
        clients.clone(),
        move |mut client, n| async move {
            // The part of an address that is the customer's own (every seeded address shares
            // the domain, and every name "Bench Customer N": trigrams any search would share).
            let text = format!("c{}@", n % customers);
            found(client.list_customers(page(text, String::new())).await)
        },
    )
    .await;
    eprintln!("ListCustomers, a search with many hits …");
    let search_many = requests(args, target, clients, move |mut client, _| async move {
        found(
            client
                .list_customers(page("customer 12".into(), String::new()))
                .await,
        )
    })
    .await;
    Ok(Lists {
        first_page,
        deep_page,
        depth: read,
        search_one,
        search_many,
    })
}
