//! The permission matrix of the rights issue, extended to tickets: for every kind of
//! principal, which of three tickets of one group it may read and work on — its own (or a
//! colleague's own), one of its organisation's, and one of another organisation — through
//! GetTicket, UpdateTicket and ListTickets, with CheckPermission giving the same answers and
//! the path that decided.

use clientele::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{Clients, TestServer, desk, expect_code};

use pb::subject::Subject as S;
use pb::{GrantContext as C, PermissionLevel as L};

/// Three tickets of one group: the principal's own (for customers), its organisation's, and
/// another organisation's.
struct World {
    group: pb::Group,
    own_org: pb::Organisation,
    other_org: pb::Organisation,
    me: pb::Customer,
    stranger: pb::Customer,
    own: pb::Ticket,
    colleagues: pb::Ticket,
    others: pb::Ticket,
}

async fn world(server: &TestServer, name: &str) -> World {
    let group = server.group(name).await;
    let own_org = server.organisation(&format!("{name}-own"), &[]).await;
    let other_org = server.organisation(&format!("{name}-other"), &[]).await;
    let customer = |email: String, org: &pb::Organisation| pb::Customer {
        email,
        organisation_id: org.id.clone(),
        ..Default::default()
    };
    let me = server
        .customer(customer(format!("me@{name}.example"), &own_org))
        .await;
    let colleague = server
        .customer(customer(format!("colleague@{name}.example"), &own_org))
        .await;
    let stranger = server
        .customer(customer(
            format!("stranger@{name}-other.example"),
            &other_org,
        ))
        .await;
    // Direct grants only make the tickets creatable; a direct grant reaches its holder's own
    // tickets only, so the colleague's and the stranger's do not widen what `me` sees.
    let mut made = Vec::new();
    for holder in [&me, &colleague, &stranger] {
        made.push(
            server
                .grant(
                    S::CustomerId(holder.id.clone()),
                    &group.id,
                    L::Rw,
                    C::Unspecified,
                )
                .await,
        );
    }
    let create = |customer: &pb::Customer, title: &str| {
        let mut tickets = server.tickets();
        let ticket = pb::Ticket {
            title: title.into(),
            group_id: group.id.clone(),
            customer_id: customer.id.clone(),
            ..Default::default()
        };
        async move {
            tickets
                .create_ticket(pb::CreateTicketRequest {
                    ticket: Some(ticket),
                    request_id: String::new(),
                })
                .await
                .expect("create")
                .into_inner()
                .ticket
                .expect("ticket")
        }
    };
    let own = create(&me, "own").await;
    let colleagues = create(&colleague, "colleague's").await;
    let others = create(&stranger, "other organisation's").await;
    // `me` keeps no grant of its own unless its row gives it one.
    server
        .permissions()
        .revoke_permission(pb::RevokePermissionRequest {
            subject: made[0].subject.clone(),
            group_id: group.id.clone(),
            context: C::Unspecified.into(),
        })
        .await
        .expect("revoke");
    World {
        group,
        own_org,
        other_org,
        me,
        stranger,
        own,
        colleagues,
        others,
    }
}

/// What a principal may do with a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum May {
    Nothing,
    Read,
    Work,
}

/// How a principal comes by its rights.
#[derive(Clone, Copy, Debug)]
enum Row {
    Admin,
    Agent(Option<L>),
    DirectGrant,
    SameOrganisation(L),
    OtherOrganisations(L),
    /// `me` is also a (secondary) member of the other organisation, which grants nothing.
    SameOrganisationOfOneOfTwo,
    /// The other organisation's customer, while `me`'s organisation holds SAME_ORGANISATION.
    CustomerOfAnotherOrganisation,
    AlwaysGroups,
    CompanyAlwaysGroups,
    CustomerGroupSupportOff,
}

async fn settings(server: &TestServer, support: bool, always: Vec<String>, company: Vec<String>) {
    let mut client = server.permissions();
    let current = client
        .get_settings(pb::GetSettingsRequest {})
        .await
        .expect("get")
        .into_inner()
        .settings
        .expect("settings");
    client
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::Settings {
                etag: current.etag,
                customer_group_support: support,
                always_groups: always,
                company_always_groups: company,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec![
                    "customer_group_support".into(),
                    "always_groups".into(),
                    "company_always_groups".into(),
                ],
            }),
        })
        .await
        .expect("settings");
}

/// Sets the row up; returns the principal's clients and its CheckPermission form.
async fn principal(server: &TestServer, world: &World, row: Row) -> (Clients, pb::Principal) {
    use pb::principal::Principal as P;
    let customer = || {
        (
            P::CustomerId(world.me.id.clone()),
            pb::token_owner::Owner::CustomerId(world.me.id.clone()),
        )
    };
    let (asked, owner) = match row {
        Row::Admin => {
            return (
                server.as_token(&server.admin_secret),
                pb::Principal {
                    principal: Some(P::Admin(true)),
                },
            );
        }
        Row::Agent(level) => {
            let agent = server
                .agent(&format!("{}-agent", world.group.name), false)
                .await;
            if let Some(level) = level {
                server
                    .grant(
                        S::AgentId(agent.id.clone()),
                        &world.group.id,
                        level,
                        C::Unspecified,
                    )
                    .await;
            }
            (
                P::AgentId(agent.id.clone()),
                pb::token_owner::Owner::AgentId(agent.id),
            )
        }
        Row::DirectGrant => {
            server
                .grant(
                    S::CustomerId(world.me.id.clone()),
                    &world.group.id,
                    L::Rw,
                    C::Unspecified,
                )
                .await;
            customer()
        }
        Row::SameOrganisation(level) | Row::OtherOrganisations(level) => {
            let context = match row {
                Row::SameOrganisation(_) => C::SameOrganisation,
                _ => C::OtherOrganisations,
            };
            server
                .grant(
                    S::OrganisationId(world.own_org.id.clone()),
                    &world.group.id,
                    level,
                    context,
                )
                .await;
            customer()
        }
        Row::SameOrganisationOfOneOfTwo => {
            server
                .grant(
                    S::OrganisationId(world.own_org.id.clone()),
                    &world.group.id,
                    L::Rw,
                    C::SameOrganisation,
                )
                .await;
            let current = server.customer_by_id(&world.me.id).await;
            server
                .customers()
                .update_customer(pb::UpdateCustomerRequest {
                    customer: Some(pb::Customer {
                        secondary_organisation_ids: vec![world.other_org.id.clone()],
                        ..current
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["secondary_organisation_ids".into()],
                    }),
                })
                .await
                .expect("join the other organisation");
            customer()
        }
        Row::CustomerOfAnotherOrganisation => {
            server
                .grant(
                    S::OrganisationId(world.own_org.id.clone()),
                    &world.group.id,
                    L::Rw,
                    C::SameOrganisation,
                )
                .await;
            (
                P::CustomerId(world.stranger.id.clone()),
                pb::token_owner::Owner::CustomerId(world.stranger.id.clone()),
            )
        }
        Row::AlwaysGroups => {
            settings(server, true, vec![world.group.id.clone()], vec![]).await;
            customer()
        }
        Row::CompanyAlwaysGroups => {
            settings(server, true, vec![], vec![world.group.id.clone()]).await;
            customer()
        }
        Row::CustomerGroupSupportOff => {
            settings(server, false, vec![], vec![]).await;
            customer()
        }
    };
    (
        server.as_token(&server.token(owner).await),
        pb::Principal {
            principal: Some(asked),
        },
    )
}

/// What `clients` may do with `ticket`, found through the API: GetTicket, then an update.
async fn through_the_api(server: &TestServer, clients: &Clients, ticket: &pb::Ticket) -> May {
    let read = clients
        .tickets
        .clone()
        .get_ticket(pb::GetTicketRequest {
            key: Some(pb::get_ticket_request::Key::Id(ticket.id.clone())),
        })
        .await;
    if let Err(status) = read {
        assert_eq!(
            status.code(),
            Code::NotFound,
            "an unreadable ticket is NOT_FOUND: {status:?}"
        );
        return May::Nothing;
    }
    let current = desk::ticket(server, &ticket.id).await;
    let title = format!("{} (edited)", current.title);
    match desk::update(clients, pb::Ticket { title, ..current }, &["title"]).await {
        Ok(_) => May::Work,
        Err(status) => {
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "a readable ticket is PERMISSION_DENIED to write: {status:?}"
            );
            May::Read
        }
    }
}

/// What CheckPermission says `asked` may do with `ticket`, with the path and the reason of
/// the answer to reading it.
async fn through_check(
    server: &TestServer,
    asked: &pb::Principal,
    ticket: &pb::Ticket,
) -> (May, pb::TicketScope, pb::PermissionReason) {
    let check = |level: L| {
        let mut permissions = server.permissions();
        let request = pb::CheckPermissionRequest {
            principal: Some(asked.clone()),
            level: level.into(),
            resource: Some(pb::Resource {
                resource: Some(pb::resource::Resource::TicketId(ticket.id.clone())),
            }),
        };
        async move {
            permissions
                .check_permission(request)
                .await
                .expect("check")
                .into_inner()
        }
    };
    let read = check(L::Ro).await;
    let write = check(L::Rw).await;
    let may = match (read.allowed, write.allowed) {
        (true, true) => May::Work,
        (true, false) => May::Read,
        (false, false) => May::Nothing,
        (false, true) => panic!("RW without RO on {}: {write:?}", ticket.number),
    };
    (may, read.scope(), read.reason())
}

backend_tests! {
    async fn every_principal_reads_and_works_on_exactly_the_tickets_its_rights_reach(server) {
        use May::*;
        use pb::PermissionReason as R;
        use pb::TicketScope as Path;
        let u = Path::Unspecified;
        let no = R::NoGrant;
        let org = R::OrganisationGrant;
        // (row, [own, colleague's, other organisation's], read paths, reasons of the reads)
        type Expected = ([May; 3], [Path; 3], [R; 3]);
        let rows: Vec<(&str, Row, Expected)> = vec![
            ("admin", Row::Admin, ([Work, Work, Work], [u, u, u], [R::Admin; 3])),
            ("agent with rw", Row::Agent(Some(L::Rw)), ([Work, Work, Work], [Path::All; 3], [R::OwnGrant; 3])),
            ("agent with ro", Row::Agent(Some(L::Ro)), ([Read, Read, Read], [Path::All; 3], [R::OwnGrant; 3])),
            ("agent without grant", Row::Agent(None), ([Nothing, Nothing, Nothing], [u, u, u], [no; 3])),
            ("customer with a direct grant", Row::DirectGrant, ([Work, Nothing, Nothing], [Path::Own, u, u], [R::OwnGrant, no, no])),
            ("customer via its organisation, SAME_ORGANISATION rw", Row::SameOrganisation(L::Rw), ([Work, Work, Nothing], [Path::Own, Path::Organisation, u], [org, org, no])),
            ("customer via its organisation, SAME_ORGANISATION ro", Row::SameOrganisation(L::Ro), ([Read, Read, Nothing], [Path::Own, Path::Organisation, u], [org, org, no])),
            ("customer via its organisation, OTHER_ORGANISATIONS ro", Row::OtherOrganisations(L::Ro), ([Read, Read, Read], [Path::Own, Path::All, Path::All], [org; 3])),
            ("customer via its organisation, OTHER_ORGANISATIONS rw", Row::OtherOrganisations(L::Rw), ([Work, Work, Work], [Path::Own, Path::All, Path::All], [org; 3])),
            ("customer of two organisations, one with SAME_ORGANISATION", Row::SameOrganisationOfOneOfTwo, ([Work, Work, Nothing], [Path::Own, Path::Organisation, u], [org, org, no])),
            ("customer of another organisation", Row::CustomerOfAnotherOrganisation, ([Nothing, Nothing, Work], [u, u, Path::Own], [no, no, R::OwnGrant])),
            ("customer via always_groups", Row::AlwaysGroups, ([Work, Nothing, Nothing], [Path::Own, u, u], [R::AlwaysGroups, no, no])),
            ("organisation via company_always_groups", Row::CompanyAlwaysGroups, ([Work, Work, Nothing], [Path::Own, Path::Organisation, u], [R::CompanyAlwaysGroups, R::CompanyAlwaysGroups, no])),
            ("customer_group_support off", Row::CustomerGroupSupportOff, ([Work, Nothing, Nothing], [Path::Own, u, u], [R::CustomerGroupSupportOff, no, no])),
        ];
        for (index, (name, row, (expected, paths, reasons))) in rows.into_iter().enumerate() {
            let world = world(&server, &format!("w{index}")).await;
            let (clients, asked) = principal(&server, &world, row).await;
            let tickets = [&world.own, &world.colleagues, &world.others];
            let mut api = Vec::new();
            let mut checked = Vec::new();
            let mut checked_paths = Vec::new();
            let mut checked_reasons = Vec::new();
            for ticket in tickets {
                let (may, path, reason) = through_check(&server, &asked, ticket).await;
                checked.push(may);
                checked_paths.push(path);
                checked_reasons.push(reason);
                api.push(through_the_api(&server, &clients, ticket).await);
            }
            assert_eq!(api, expected, "{name}: through the API");
            assert_eq!(checked, expected, "{name}: through CheckPermission");
            if !matches!(row, Row::Admin) {
                assert_eq!(checked_paths, paths, "{name}: the path CheckPermission names");
            }
            assert_eq!(checked_reasons, reasons, "{name}: the reason CheckPermission gives");
            // ListTickets streams exactly the readable ones.
            let mut listed: Vec<i64> = Vec::new();
            let mut stream = clients.tickets.clone().list_tickets(pb::ListTicketsRequest { group_ids: vec![world.group.id.clone()], ..Default::default() }).await.expect("list").into_inner();
            while let Some(item) = stream.message().await.expect("stream") {
                listed.push(item.ticket.expect("ticket").number);
            }
            let readable: Vec<i64> = tickets.iter().zip(expected).filter(|(_, may)| *may != Nothing).map(|(t, _)| t.number).collect();
            assert_eq!(listed, readable, "{name}: ListTickets");
            settings(&server, true, vec![], vec![]).await;
        }
    }

    async fn an_invalid_customer_has_no_rights_on_tickets_and_its_token_stops_working(server) {
        let world = world(&server, "invalid").await;
        let (clients, asked) = principal(&server, &world, Row::DirectGrant).await;
        assert_eq!(through_the_api(&server, &clients, &world.own).await, May::Work);
        server.tickets().update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket { state: pb::TicketState::Closed.into(), ..desk::ticket(&server, &world.own.id).await }),
            update_mask: Some(FieldMask { paths: vec!["state".into()] }),
        }).await.expect("close its ticket");
        server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: world.me.id.clone(), etag: server.customer_etag(&world.me.id).await, ..Default::default() }).await.expect("deactivate");
        expect_code(clients.tickets.clone().get_ticket(pb::GetTicketRequest { key: Some(pb::get_ticket_request::Key::Id(world.own.id.clone())) }).await, Code::Unauthenticated);
        let check = server.permissions().check_permission(pb::CheckPermissionRequest {
            principal: Some(asked), level: L::Ro.into(),
            resource: Some(pb::Resource { resource: Some(pb::resource::Resource::TicketId(world.own.id.clone())) }),
        }).await.expect("check").into_inner();
        assert!(!check.allowed);
        assert_eq!(check.reason(), pb::PermissionReason::PrincipalInvalid);
    }
}

/// GetTicket of `ticket` through `tickets`: the code it answers with (OK or NOT_FOUND).
async fn reads_with(
    mut tickets: pb::ticket_service_client::TicketServiceClient<crate::support::Authed>,
    ticket: &pb::Ticket,
) -> Code {
    match tickets
        .get_ticket(pb::GetTicketRequest {
            key: Some(pb::get_ticket_request::Key::Id(ticket.id.clone())),
        })
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// GetTicket of `ticket` as `clients`.
async fn reads(clients: &Clients, ticket: &pb::Ticket) -> Code {
    reads_with(clients.tickets.clone(), ticket).await
}

backend_tests! {
    /// A server started on a database that already holds the grants gives every holder its
    /// rights from its first call, before any change has moved its rights on.
    async fn a_server_started_on_existing_grants_applies_them_from_its_first_call(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Before the start")).await;
        let agent = server.token(pb::token_owner::Owner::AgentId(desk.agent.id.clone())).await;
        let customer = server.token(pb::token_owner::Owner::CustomerId(desk.customer.id.clone())).await;
        let replica = server.replica().await;
        for (who, secret) in [("the agent", &agent), ("the customer", &customer)] {
            let tickets = pb::ticket_service_client::TicketServiceClient::new(replica.authed(secret));
            assert_eq!(reads_with(tickets, &ticket).await, Code::Ok, "{who}");
        }
        replica.stop().await;
    }

    /// Rights are kept between calls, and every change that shapes them takes effect on this
    /// server before the call that made it returns: a grant revoked, the settings changed, a
    /// group or an agent deactivated.
    async fn kept_rights_follow_every_change_at_once(server) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Kept")).await;
        // The agent's grant goes, and comes back.
        assert_eq!(reads(&desk.as_agent, &ticket).await, Code::Ok);
        let mut permissions = server.permissions();
        permissions.revoke_permission(pb::RevokePermissionRequest {
            subject: Some(pb::Subject { subject: Some(S::AgentId(desk.agent.id.clone())) }),
            group_id: desk.group.id.clone(),
            context: 0,
        }).await.expect("revoke");
        assert_eq!(reads(&desk.as_agent, &ticket).await, Code::NotFound, "the revoked grant");
        server.grant(S::AgentId(desk.agent.id.clone()), &desk.group.id, L::Ro, C::Unspecified).await;
        assert_eq!(reads(&desk.as_agent, &ticket).await, Code::Ok, "the new grant");
        // A colleague reads Acme's ticket through Acme's SAME_ORGANISATION grant, and not once
        // it moves to another organisation; an edit of its phone keeps what was read.
        let colleague = server.customer(pb::Customer { email: "colleague@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let as_colleague = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(colleague.id.clone())).await);
        assert_eq!(reads(&as_colleague, &ticket).await, Code::Ok);
        let elsewhere = server.organisation("ELSEWHERE", &[]).await;
        let moved = server.customers().update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { phone: "+49 30 1234".into(), ..colleague.clone() }),
            update_mask: Some(FieldMask { paths: vec!["phone".into()] }),
        }).await.expect("phone").into_inner().customer.expect("customer");
        assert_eq!(reads(&as_colleague, &ticket).await, Code::Ok);
        server.customers().update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { organisation_id: elsewhere.id.clone(), ..moved }),
            update_mask: Some(FieldMask { paths: vec!["organisation_id".into()] }),
        }).await.expect("move");
        assert_eq!(reads(&as_colleague, &ticket).await, Code::NotFound, "moved away");
        // The customer reads through its organisation's grant; the settings give its own
        // tickets to every customer once customer_group_support is off.
        assert_eq!(reads(&desk.as_customer, &ticket).await, Code::Ok);
        permissions.revoke_permission(pb::RevokePermissionRequest {
            subject: Some(pb::Subject { subject: Some(S::OrganisationId(desk.organisation.id.clone())) }),
            group_id: desk.group.id.clone(),
            context: C::SameOrganisation as i32,
        }).await.expect("revoke the organisation's");
        assert_eq!(reads(&desk.as_customer, &ticket).await, Code::NotFound);
        let settings = permissions.get_settings(pb::GetSettingsRequest {}).await.expect("settings").into_inner().settings.expect("settings");
        permissions.update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::Settings { customer_group_support: false, ..settings }),
            update_mask: Some(FieldMask { paths: vec!["customer_group_support".into()] }),
        }).await.expect("group support off");
        assert_eq!(reads(&desk.as_customer, &ticket).await, Code::Ok, "its own ticket, by the settings");
        // The group is deactivated: nobody but admins reads its tickets.
        let group = server.groups().get_group(pb::GetGroupRequest { key: Some(pb::get_group_request::Key::Id(desk.group.id.clone())) }).await.expect("group").into_inner().group.expect("group");
        server.groups().update_group(pb::UpdateGroupRequest {
            group: Some(pb::Group { validity: pb::Validity::Invalid.into(), ..group }),
            update_mask: Some(FieldMask { paths: vec!["validity".into()] }),
        }).await.expect("deactivate the group");
        assert_eq!(reads(&desk.as_agent, &ticket).await, Code::NotFound, "the agent");
        assert_eq!(reads(&desk.as_customer, &ticket).await, Code::NotFound, "the customer");
    }
}

/// Across replicas on PostgreSQL: rights one server keeps follow a grant revoked on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn kept_rights_follow_a_change_made_on_another_replica() {
    let Some(server) = TestServer::start(crate::support::Backend::Postgres).await else {
        return;
    };
    let desk = server.desk("acme").await;
    let ticket = desk.create(desk.ticket("Elsewhere")).await;
    let replica = server.replica().await;
    let secret = server
        .token(pb::token_owner::Owner::AgentId(desk.agent.id.clone()))
        .await;
    let on_replica = pb::ticket_service_client::TicketServiceClient::new(replica.authed(&secret));
    assert_eq!(reads_with(on_replica.clone(), &ticket).await, Code::Ok);
    server
        .permissions()
        .revoke_permission(pb::RevokePermissionRequest {
            subject: Some(pb::Subject {
                subject: Some(S::AgentId(desk.agent.id.clone())),
            }),
            group_id: desk.group.id.clone(),
            context: 0,
        })
        .await
        .expect("revoke on the first server");
    desk::eventually(
        "the replica no longer lets the agent read the ticket",
        || async { reads_with(on_replica.clone(), &ticket).await == Code::NotFound },
    )
    .await;
    drop(on_replica);
    replica.stop().await;
    server.stop().await;
}
