//! The data the benchmark runs on: a group every customer may use, an agent with RW on it
//! (and RO on four more groups, so that its rights come from several grants), a customer whose
//! organisation has a SAME_ORGANISATION grant on it, and — on a server this tool started on an empty database — organisations, customers and
//! tickets written straight into the database in bulk.

use std::{collections::BTreeMap, time::Instant};

use clientele::{
    model::{Alerts, Customer, Organisation, SlaClocks, Ticket, TicketState, Validity},
    proto::v1 as pb,
    store::{Store, StoreOptions, Table},
};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::{Args, BenchError, server::Target};

/// Tickets generated and written at a time, so that a million never sit in memory at once.
const TICKET_CHUNK: usize = 20_000;

/// Agents of the mixed workload, each with a token and the grants of the benchmark's agent.
const MIXED_AGENTS: usize = 8;

/// What the scenarios use.
pub struct Fixture {
    /// The group of every seeded ticket.
    pub group_id: String,
    /// A token of an agent with RW on the group and RO on four others.
    pub agent_token: String,
    /// A token of a customer whose organisation has RO in SAME_ORGANISATION on the group.
    pub customer_token: String,
    /// Tickets of that organisation the customer reads through the organisation's grant (not
    /// its own).
    pub colleague_ticket_ids: Vec<String>,
    /// Organisations to read.
    pub organisation_ids: Vec<String>,
    /// Tickets to read.
    pub ticket_ids: Vec<String>,
    /// Customers to create tickets for.
    pub customer_ids: Vec<String>,
    /// Open tickets (new or open) of the group, to update and answer.
    pub open_ticket_ids: Vec<String>,
    /// Tokens of agents like the benchmark's, one per desk of the mixed workload.
    pub mixed_agent_tokens: Vec<String>,
    /// An email domain assigned to an organisation (`domain_assignment` on).
    pub customer_domain: String,
    /// A policy whose first response is due three seconds after creation.
    pub probe_policy_id: String,
    /// Rows in the database when the run began (organisations, customers, tickets).
    pub sizes: (i64, i64, i64),
    /// How long seeding took, if this run seeded.
    pub seeding: Option<std::time::Duration>,
}

impl Fixture {
    /// Makes (or finds) the fixture on `target`.
    pub async fn prepare(args: &Args, target: &Target) -> Result<Self, BenchError> {
        let admin = target.admin().await?;
        let run = Uuid::now_v7().simple().to_string();
        let mut groups = pb::group_service_client::GroupServiceClient::new(admin.clone());
        let group = group_named(&mut groups, "bench").await?;
        let mut agents = pb::agent_service_client::AgentServiceClient::new(admin.clone());
        let mut permissions =
            pb::permission_service_client::PermissionServiceClient::new(admin.clone());
        let mut extra_groups = Vec::new();
        for extra in 1..=4 {
            extra_groups.push(
                group_named(&mut groups, &format!("bench-extra-{extra}"))
                    .await?
                    .id,
            );
        }
        let mut desk = Desk {
            agents: &mut agents,
            permissions: &mut permissions,
            group_id: &group.id,
            extra_groups: &extra_groups,
        };
        let agent_token = desk.agent(&format!("bench-{run}")).await?;
        let mut mixed_agent_tokens = Vec::new();
        for n in 0..MIXED_AGENTS {
            mixed_agent_tokens.push(desk.agent(&format!("bench-{run}-desk-{n}")).await?);
        }
        // Every customer may use the group: the seeded ones have no grants of their own.
        let settings = permissions
            .get_settings(pb::GetSettingsRequest {})
            .await?
            .into_inner()
            .settings
            .ok_or("no settings")?;
        if !settings.always_groups.contains(&group.id) {
            let mut always = settings.always_groups.clone();
            always.push(group.id.clone());
            permissions
                .update_settings(pb::UpdateSettingsRequest {
                    settings: Some(pb::Settings {
                        always_groups: always,
                        etag: settings.etag,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["always_groups".into()],
                    }),
                })
                .await?;
        }
        let probe_policy_id = pb::sla_service_client::SlaServiceClient::new(admin.clone())
            .create_sla_policy(pb::CreateSlaPolicyRequest {
                request_id: String::new(),
                sla_policy: Some(pb::SlaPolicy {
                    name: format!("bench probe {run}"),
                    first_response_within: Some(prost_types::Duration {
                        seconds: 3,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .sla_policy
            .ok_or("no policy")?
            .id;

        let mut seeding = None;
        let mut sizes = (0, 0, 0);
        if let (Some(url), true) = (&target.database_url, target.pid().is_some()) {
            let store = Store::connect(url, &StoreOptions::default()).await?;
            if store.count_rows(Table::Tickets).await? == 0 {
                let started = Instant::now();
                let group_id = Uuid::parse_str(&group.id)?;
                seed(&store, args, group_id).await?;
                store.analyze().await?;
                seeding = Some(started.elapsed());
            }
            sizes = (
                store.count_rows(Table::Organisations).await?,
                store.count_rows(Table::Customers).await?,
                store.count_rows(Table::Tickets).await?,
            );
            store.close().await;
        }

        let organisation_ids =
            pb::organisation_service_client::OrganisationServiceClient::new(admin.clone())
                .list_organisations(pb::ListOrganisationsRequest {
                    page_size: 1000,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .organisations
                .into_iter()
                .map(|o| o.id)
                .collect::<Vec<_>>();
        let mut stream = pb::ticket_service_client::TicketServiceClient::new(admin.clone())
            .list_tickets(pb::ListTicketsRequest {
                group_ids: vec![group.id.clone()],
                limit: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut ticket_ids = Vec::new();
        let mut customer_ids = Vec::new();
        let mut colleague = None;
        while let Some(item) = stream.message().await? {
            let ticket = item.ticket.ok_or("no ticket")?;
            if colleague.is_none() && !ticket.organisation_id.is_empty() {
                colleague = Some((ticket.customer_id.clone(), ticket.organisation_id.clone()));
            }
            ticket_ids.push(ticket.id);
            customer_ids.push(ticket.customer_id);
        }
        let (customer_id, organisation_id) =
            colleague.ok_or("no ticket of the group `bench` has an organisation")?;
        grant(
            &mut permissions,
            pb::subject::Subject::OrganisationId(organisation_id),
            &group.id,
            pb::PermissionLevel::Ro,
            pb::GrantContext::SameOrganisation as i32,
        )
        .await?;
        let customer_token = agents
            .create_token(pb::CreateTokenRequest {
                owner: Some(pb::TokenOwner {
                    owner: Some(pb::token_owner::Owner::CustomerId(customer_id.clone())),
                }),
                description: "clientele-bench customer".into(),
                expire_time: None,
            })
            .await?
            .into_inner()
            .secret;
        let mut as_customer = pb::ticket_service_client::TicketServiceClient::new(
            target.channel(&customer_token).await?,
        );
        let mut stream = as_customer
            .list_tickets(pb::ListTicketsRequest {
                group_ids: vec![group.id.clone()],
                limit: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut colleague_ticket_ids = Vec::new();
        while let Some(item) = stream.message().await? {
            let ticket = item.ticket.ok_or("no ticket")?;
            if ticket.customer_id != customer_id {
                colleague_ticket_ids.push(ticket.id);
            }
        }
        if colleague_ticket_ids.is_empty() {
            return Err("the customer's organisation has no tickets of other customers".into());
        }
        customer_ids.sort();
        customer_ids.dedup();
        let mut admin_tickets = pb::ticket_service_client::TicketServiceClient::new(admin.clone());
        let mut stream = admin_tickets
            .list_tickets(pb::ListTicketsRequest {
                group_ids: vec![group.id.clone()],
                states: vec![pb::TicketState::New as i32, pb::TicketState::Open as i32],
                limit: 1000,
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut open_ticket_ids = Vec::new();
        while let Some(item) = stream.message().await? {
            open_ticket_ids.push(item.ticket.ok_or("no ticket")?.id);
        }
        let customer_domain = format!("{run}.bench.example");
        pb::organisation_service_client::OrganisationServiceClient::new(admin.clone())
            .create_organisation(pb::CreateOrganisationRequest {
                request_id: String::new(),
                organisation: Some(pb::Organisation {
                    name: format!("Bench assigned {run}"),
                    code: format!("ASSIGNED-{run}"),
                    country: "DE".into(),
                    email_domains: vec![customer_domain.clone()],
                    domain_assignment: true,
                    ..Default::default()
                }),
            })
            .await?;
        if organisation_ids.is_empty() || ticket_ids.is_empty() {
            return Err(
                "the database has no organisations or tickets in the group `bench` to read".into(),
            );
        }
        Ok(Self {
            group_id: group.id,
            agent_token,
            customer_token,
            colleague_ticket_ids,
            organisation_ids,
            ticket_ids,
            customer_ids,
            open_ticket_ids,
            mixed_agent_tokens,
            customer_domain,
            probe_policy_id,
            sizes,
            seeding,
        })
    }
}

/// Makes agents with the benchmark's grants: RW on its group, RO on four more.
struct Desk<'a> {
    agents: &'a mut pb::agent_service_client::AgentServiceClient<crate::server::Authed>,
    permissions:
        &'a mut pb::permission_service_client::PermissionServiceClient<crate::server::Authed>,
    group_id: &'a str,
    extra_groups: &'a [String],
}

impl Desk<'_> {
    /// A new agent called `login` with the grants, and a token of it.
    async fn agent(&mut self, login: &str) -> Result<String, BenchError> {
        let agent = self
            .agents
            .create_agent(pb::CreateAgentRequest {
                request_id: String::new(),
                agent: Some(pb::Agent {
                    login: login.into(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .agent
            .ok_or("no agent")?;
        let subject = pb::subject::Subject::AgentId(agent.id.clone());
        grant(
            self.permissions,
            subject.clone(),
            self.group_id,
            pb::PermissionLevel::Rw,
            0,
        )
        .await?;
        for other in self.extra_groups {
            grant(
                self.permissions,
                subject.clone(),
                other,
                pb::PermissionLevel::Ro,
                0,
            )
            .await?;
        }
        Ok(self
            .agents
            .create_token(pb::CreateTokenRequest {
                owner: Some(pb::TokenOwner {
                    owner: Some(pb::token_owner::Owner::AgentId(agent.id)),
                }),
                description: "clientele-bench".into(),
                expire_time: None,
            })
            .await?
            .into_inner()
            .secret)
    }
}

/// The group named `name`, made if there is none.
async fn group_named(
    groups: &mut pb::group_service_client::GroupServiceClient<crate::server::Authed>,
    name: &str,
) -> Result<pb::Group, BenchError> {
    let found = groups
        .get_group(pb::GetGroupRequest {
            key: Some(pb::get_group_request::Key::Name(name.into())),
        })
        .await;
    let group = match found {
        Ok(found) => found.into_inner().group,
        Err(_) => {
            groups
                .create_group(pb::CreateGroupRequest {
                    request_id: String::new(),
                    group: Some(pb::Group {
                        name: name.into(),
                        ..Default::default()
                    }),
                })
                .await?
                .into_inner()
                .group
        }
    };
    group.ok_or_else(|| "no group".into())
}

/// Grants `subject` `level` on `group_id` in `context` (0 for none).
async fn grant(
    permissions: &mut pb::permission_service_client::PermissionServiceClient<crate::server::Authed>,
    subject: pb::subject::Subject,
    group_id: &str,
    level: pb::PermissionLevel,
    context: i32,
) -> Result<(), BenchError> {
    permissions
        .grant_permission(pb::GrantPermissionRequest {
            grant: Some(pb::Grant {
                subject: Some(pb::Subject {
                    subject: Some(subject),
                }),
                group_id: group_id.into(),
                level: level.into(),
                context,
                ..Default::default()
            }),
        })
        .await?;
    Ok(())
}

/// Writes the organisations, customers and tickets `args` asks for.
async fn seed(store: &Store, args: &Args, group_id: Uuid) -> Result<(), BenchError> {
    let now = Timestamp::now();
    let organisations: Vec<Organisation> = (0..args.organisations.max(1))
        .map(|i| Organisation {
            id: Uuid::now_v7(),
            code: format!("B{i:07}"),
            name: format!("Bench Organisation {i}"),
            street: format!("Benchstraße {i}"),
            zip: "10115".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            url: String::new(),
            comment: String::new(),
            validity: Validity::Valid,
            email_domains: Vec::new(),
            domain_assignment: false,
            external_id: None,
            custom_fields: BTreeMap::new(),
            sla_policy_id: None,
            default_assignee_id: None,
            create_time: now,
            update_time: now,
            version: 1,
            directory_id: None,
        })
        .collect();
    store.seed_organisations(&organisations).await?;
    eprintln!("seeded {} organisations", organisations.len());
    let customers: Vec<(Uuid, Uuid)> = {
        let customers: Vec<Customer> = (0..args.customers.max(1))
            .map(|i| Customer {
                id: Uuid::now_v7(),
                email: format!("c{i}@bench.example"),
                secondary_emails: Vec::new(),
                login: None,
                first_name: "Bench".into(),
                last_name: format!("Customer {i}"),
                title: String::new(),
                phone: String::new(),
                mobile: String::new(),
                organisation_id: Some(organisations[i % organisations.len()].id),
                secondary_organisation_ids: Vec::new(),
                customer_type: String::new(),
                custom_fields: BTreeMap::new(),
                external_id: None,
                validity: Validity::Valid,
                create_time: now,
                update_time: now,
                version: 1,
                directory_id: None,
                source: None,
            })
            .collect();
        store.seed_customers(&customers).await?;
        customers
            .iter()
            .map(|c| (c.id, c.organisation_id.unwrap_or_default()))
            .collect()
    };
    eprintln!("seeded {} customers", customers.len());
    let start = now - SignedDuration::from_secs(args.tickets as i64);
    let mut written = 0;
    while written < args.tickets {
        let chunk: Vec<Ticket> = (written..(written + TICKET_CHUNK).min(args.tickets))
            .map(|i| {
                let (customer, organisation) = customers[i % customers.len()];
                let created = start + SignedDuration::from_secs(i as i64);
                // Two in five open, the rest closed.
                let state = if i % 5 < 2 {
                    TicketState::Open
                } else {
                    TicketState::Closed
                };
                // An open ticket's solution is due in three months: every open ticket is in
                // the scheduler's index, none comes due while the benchmark runs.
                let solution_due = (state == TicketState::Open)
                    .then(|| created + SignedDuration::from_hours(24 * 90));
                Ticket {
                    id: Uuid::now_v7(),
                    // A day of its own, far from real numbers, wide enough for any size.
                    number: 20_000_101 * 10_000_000 + i as i64,
                    title: format!("Bench ticket {i}: printer on floor {}", i % 40),
                    group_id,
                    customer_id: customer,
                    organisation_id: Some(organisation),
                    additional_customer_ids: Vec::new(),
                    state,
                    priority: (i % 5 + 1) as u8,
                    assignee_id: None,
                    sla_policy_id: None,
                    applied_sla_policy_id: None,
                    pending_until: None,
                    first_response_time: None,
                    close_time: (state == TicketState::Closed).then_some(created),
                    last_customer_contact: created,
                    last_agent_response: None,
                    pending_since: None,
                    clocks: SlaClocks::default(),
                    first_response_due: None,
                    update_due: None,
                    solution_due,
                    alerts: Alerts::default(),
                    next_event_time: solution_due,
                    create_time: created,
                    update_time: created,
                    version: 1,
                    merged_into: None,
                    severity: None,
                    sla_contact_group_id: None,
                    reader_group_id: None,
                }
            })
            .collect();
        store.seed_tickets(&chunk).await?;
        written += chunk.len();
        if written % 200_000 == 0 || written == args.tickets {
            eprintln!("seeded {written} tickets");
        }
    }
    Ok(())
}
