//! Rights: the permission matrix of DESIGN §2, checked through the API and CheckPermission.

use clientele::{
    clock::Clock,
    proto::v1::{self as pb, PermissionLevel as L, PermissionReason as R},
};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::*;

/// Who asks, and what gives a customer rights on the group.
#[derive(Clone, Copy, Debug)]
enum Who {
    Admin,
    Agent {
        grant: Option<L>,
        manage_customers: bool,
    },
    Customer(Via),
    InvalidCustomer,
}

#[derive(Clone, Copy, Debug)]
enum Via {
    Grant(L),
    SameOrganisation(L),
    OtherOrganisations(L),
    AlwaysGroups,
    CompanyAlwaysGroups,
    AnotherOrganisationsGrant,
    GroupSupportOff,
}

/// Whether the other organisation and the other customer (for a customer row, its own
/// record and organisation too) are filed in a directory, and how the asking agent stands to
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// Nothing is filed.
    Unused,
    /// The agent is one of the directory's reader agents.
    NamedReader,
    /// The agent reads every ticket of the directory's reader group (the matrix's group).
    GroupReader,
    /// Neither.
    NotReader,
}

/// The resources of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Res {
    OwnOrganisation,
    OtherOrganisation,
    OwnRecord,
    OtherCustomer,
    Group,
}

const RESOURCES: [Res; 5] = [
    Res::OwnOrganisation,
    Res::OtherOrganisation,
    Res::OwnRecord,
    Res::OtherCustomer,
    Res::Group,
];

/// The expected answer for reading (RO) and writing (RW) each resource.
fn expected(who: Who, dir: Dir, resource: Res, level: L) -> (bool, R) {
    use Res::*;
    match who {
        Who::Agent {
            manage_customers, ..
        } if dir != Dir::Unused && matches!(resource, OtherOrganisation | OtherCustomer) => {
            match (dir, level) {
                (Dir::NotReader, _) => (false, R::Directory),
                (_, L::Ro) => (true, R::DirectoryReader),
                _ if manage_customers => (true, R::ManageCustomers),
                _ => (false, R::NoManageCustomers),
            }
        }
        Who::Admin => (true, R::Admin),
        Who::InvalidCustomer => (false, R::PrincipalInvalid),
        Who::Agent {
            grant,
            manage_customers,
        } => match (resource, level) {
            (Group, wanted) => match grant {
                Some(held) if held as i32 >= wanted as i32 => (true, R::OwnGrant),
                _ => (false, R::NoGrant),
            },
            (_, L::Ro) => (true, R::AgentReadsMasterData),
            _ if manage_customers => (true, R::ManageCustomers),
            _ => (false, R::NoManageCustomers),
        },
        Who::Customer(via) => match (resource, level) {
            (Group, wanted) => match via {
                Via::Grant(held) if held as i32 >= wanted as i32 => (true, R::OwnGrant),
                Via::SameOrganisation(held) | Via::OtherOrganisations(held)
                    if held as i32 >= wanted as i32 =>
                {
                    (true, R::OrganisationGrant)
                }
                Via::AlwaysGroups => (true, R::AlwaysGroups),
                Via::CompanyAlwaysGroups => (true, R::CompanyAlwaysGroups),
                Via::GroupSupportOff => (true, R::CustomerGroupSupportOff),
                _ => (false, R::NoGrant),
            },
            (_, L::Rw) => (false, R::CustomersReadOnly),
            (OwnOrganisation, _) => (true, R::OwnOrganisation),
            (OwnRecord, _) => (true, R::Self_),
            _ => (false, R::NotOwn),
        },
    }
}

/// The world one row of the matrix runs in.
struct World {
    group: pb::Group,
    own_organisation: pb::Organisation,
    other_organisation: pb::Organisation,
    own_record: pb::Customer,
    other_customer: pb::Customer,
}

/// Puts the settings back to their defaults.
async fn reset_settings(server: &TestServer) {
    customer_settings(server, true, &[], &[]).await;
}

async fn set_groups(server: &TestServer, path: &str, group: &pb::Group, support: bool) {
    let mut client = server.permissions();
    let current = client
        .get_settings(pb::GetSettingsRequest {})
        .await
        .expect("get")
        .into_inner()
        .settings
        .expect("settings");
    let mut settings = pb::Settings {
        etag: current.etag,
        customer_group_support: support,
        ..Default::default()
    };
    match path {
        "always_groups" => settings.always_groups = vec![group.id.clone()],
        "company_always_groups" => settings.company_always_groups = vec![group.id.clone()],
        _ => {}
    }
    let mut paths = vec!["customer_group_support".to_owned()];
    if !path.is_empty() {
        paths.push(path.to_owned());
    }
    client
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(settings),
            update_mask: Some(FieldMask { paths }),
        })
        .await
        .expect("update settings");
}

/// Makes the principal of a row: its token (if it can have one) and the CheckPermission form.
async fn principal(
    server: &TestServer,
    world: &World,
    who: Who,
    row: usize,
) -> (Option<String>, pb::Principal) {
    use pb::principal::Principal as P;
    use pb::subject::Subject as S;
    let org_subject = || S::OrganisationId(world.own_organisation.id.clone());
    match who {
        Who::Admin => (
            Some(server.admin_secret.clone()),
            pb::Principal {
                principal: Some(P::Admin(true)),
            },
        ),
        Who::Agent {
            grant,
            manage_customers,
        } => {
            let agent = server
                .agent(&format!("agent-{row}"), manage_customers)
                .await;
            if let Some(level) = grant {
                server
                    .grant(
                        S::AgentId(agent.id.clone()),
                        &world.group.id,
                        level,
                        pb::GrantContext::Unspecified,
                    )
                    .await;
            }
            let secret = server
                .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
                .await;
            (
                Some(secret),
                pb::Principal {
                    principal: Some(P::AgentId(agent.id)),
                },
            )
        }
        Who::Customer(via) => {
            let customer = &world.own_record;
            match via {
                Via::Grant(level) => {
                    server
                        .grant(
                            S::CustomerId(customer.id.clone()),
                            &world.group.id,
                            level,
                            pb::GrantContext::Unspecified,
                        )
                        .await;
                }
                Via::SameOrganisation(level) => {
                    server
                        .grant(
                            org_subject(),
                            &world.group.id,
                            level,
                            pb::GrantContext::SameOrganisation,
                        )
                        .await;
                }
                Via::OtherOrganisations(level) => {
                    server
                        .grant(
                            org_subject(),
                            &world.group.id,
                            level,
                            pb::GrantContext::OtherOrganisations,
                        )
                        .await;
                }
                Via::AnotherOrganisationsGrant => {
                    server
                        .grant(
                            S::OrganisationId(world.other_organisation.id.clone()),
                            &world.group.id,
                            L::Rw,
                            pb::GrantContext::OtherOrganisations,
                        )
                        .await;
                }
                Via::AlwaysGroups => set_groups(server, "always_groups", &world.group, true).await,
                Via::CompanyAlwaysGroups => {
                    set_groups(server, "company_always_groups", &world.group, true).await
                }
                Via::GroupSupportOff => set_groups(server, "", &world.group, false).await,
            }
            let secret = server
                .token(pb::token_owner::Owner::CustomerId(customer.id.clone()))
                .await;
            (
                Some(secret),
                pb::Principal {
                    principal: Some(P::CustomerId(customer.id.clone())),
                },
            )
        }
        Who::InvalidCustomer => {
            let customer = &world.own_record;
            let secret = server
                .token(pb::token_owner::Owner::CustomerId(customer.id.clone()))
                .await;
            server
                .customers()
                .deactivate_customer(pb::DeactivateCustomerRequest {
                    id: customer.id.clone(),
                    etag: server.customer_etag(&customer.id).await,
                    ..Default::default()
                })
                .await
                .expect("deactivate");
            (
                Some(secret),
                pb::Principal {
                    principal: Some(P::CustomerId(customer.id.clone())),
                },
            )
        }
    }
}

fn resource(world: &World, res: Res) -> pb::Resource {
    use pb::resource::Resource as X;
    pb::Resource {
        resource: Some(match res {
            Res::OwnOrganisation => X::OrganisationId(world.own_organisation.id.clone()),
            Res::OtherOrganisation => X::OrganisationId(world.other_organisation.id.clone()),
            Res::OwnRecord => X::CustomerId(world.own_record.id.clone()),
            Res::OtherCustomer => X::CustomerId(world.other_customer.id.clone()),
            Res::Group => X::GroupId(world.group.id.clone()),
        }),
    }
}

/// Reads or writes `res` through the API as `secret`; `None` for the group, which has no
/// ticket API yet.
async fn through_the_api(
    server: &TestServer,
    world: &World,
    secret: &str,
    res: Res,
    level: L,
) -> Option<Result<(), tonic::Status>> {
    let mut clients = server.as_token(secret);
    let organisation = |org: &pb::Organisation| org.clone();
    let outcome = match (res, level) {
        (Res::OwnOrganisation | Res::OtherOrganisation, L::Ro) => {
            let org = if res == Res::OwnOrganisation {
                &world.own_organisation
            } else {
                &world.other_organisation
            };
            clients
                .organisations
                .get_organisation(pb::GetOrganisationRequest {
                    key: Some(pb::get_organisation_request::Key::Id(org.id.clone())),
                })
                .await
                .map(|_| ())
        }
        (Res::OwnOrganisation | Res::OtherOrganisation, _) => {
            let org = if res == Res::OwnOrganisation {
                &world.own_organisation
            } else {
                &world.other_organisation
            };
            let current = server
                .organisations()
                .get_organisation(pb::GetOrganisationRequest {
                    key: Some(pb::get_organisation_request::Key::Id(org.id.clone())),
                })
                .await
                .expect("current")
                .into_inner()
                .organisation
                .expect("org");
            clients
                .organisations
                .update_organisation(pb::UpdateOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        comment: format!("{} by test", organisation(&current).comment),
                        ..current
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["comment".into()],
                    }),
                })
                .await
                .map(|_| ())
        }
        (Res::OwnRecord | Res::OtherCustomer, L::Ro) => {
            let customer = if res == Res::OwnRecord {
                &world.own_record
            } else {
                &world.other_customer
            };
            clients
                .customers
                .get_customer(pb::GetCustomerRequest {
                    key: Some(pb::get_customer_request::Key::Email(customer.email.clone())),
                })
                .await
                .map(|_| ())
        }
        (Res::OwnRecord | Res::OtherCustomer, _) => {
            let customer = if res == Res::OwnRecord {
                &world.own_record
            } else {
                &world.other_customer
            };
            let current = server.customer_by_id(&customer.id).await;
            clients
                .customers
                .update_customer(pb::UpdateCustomerRequest {
                    customer: Some(pb::Customer {
                        title: format!("{}.", current.title),
                        ..current
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["title".into()],
                    }),
                })
                .await
                .map(|_| ())
        }
        (Res::Group, _) => return None,
    };
    Some(outcome)
}

backend_tests! {
    async fn the_permission_matrix_holds_through_the_api_and_check_permission(server) {
        use Via::*;
        let rows: Vec<(&str, Who, Dir)> = vec![
            ("admin", Who::Admin, Dir::Unused),
            ("agent with rw", Who::Agent { grant: Some(L::Rw), manage_customers: false }, Dir::Unused),
            ("agent with ro", Who::Agent { grant: Some(L::Ro), manage_customers: false }, Dir::Unused),
            ("agent without grant", Who::Agent { grant: None, manage_customers: false }, Dir::Unused),
            ("customer administrator", Who::Agent { grant: None, manage_customers: true }, Dir::Unused),
            ("customer with a direct grant", Who::Customer(Grant(L::Rw)), Dir::Unused),
            ("customer via SAME_ORGANISATION", Who::Customer(SameOrganisation(L::Ro)), Dir::Unused),
            ("customer via OTHER_ORGANISATIONS", Who::Customer(OtherOrganisations(L::Rw)), Dir::Unused),
            ("customer via always_groups", Who::Customer(AlwaysGroups), Dir::Unused),
            ("organisation via company_always_groups", Who::Customer(CompanyAlwaysGroups), Dir::Unused),
            ("customer of another organisation", Who::Customer(AnotherOrganisationsGrant), Dir::Unused),
            ("invalid customer", Who::InvalidCustomer, Dir::Unused),
            ("customer_group_support off", Who::Customer(GroupSupportOff), Dir::Unused),
            // From here on directories are in use (the rows above run before the first one).
            ("admin, contacts in a directory", Who::Admin, Dir::NotReader),
            ("agent reading the directory by name", Who::Agent { grant: None, manage_customers: false }, Dir::NamedReader),
            ("customer administrator reading it through a group", Who::Agent { grant: Some(L::Ro), manage_customers: true }, Dir::GroupReader),
            ("agent with rw outside the directory", Who::Agent { grant: Some(L::Rw), manage_customers: false }, Dir::NotReader),
            ("customer administrator outside the directory", Who::Agent { grant: None, manage_customers: true }, Dir::NotReader),
            ("customer whose own contacts are filed", Who::Customer(Grant(L::Rw)), Dir::NotReader),
        ];
        for (row, (name, who, dir)) in rows.into_iter().enumerate() {
            reset_settings(&server).await;
            let world = World {
                group: server.group(&format!("G{row}")).await,
                own_organisation: server.organisation(&format!("OWN-{row}"), &[]).await,
                other_organisation: server.organisation(&format!("OTHER-{row}"), &[]).await,
                own_record: Default::default(),
                other_customer: Default::default(),
            };
            let world = World {
                own_record: server
                    .customer(pb::Customer { email: format!("me{row}@example.com"), organisation_id: world.own_organisation.id.clone(), ..Default::default() })
                    .await,
                other_customer: server
                    .customer(pb::Customer { email: format!("them{row}@example.com"), organisation_id: world.other_organisation.id.clone(), ..Default::default() })
                    .await,
                ..world
            };
            let (secret, asked) = principal(&server, &world, who, row).await;
            if dir != Dir::Unused {
                let agent = match &asked.principal {
                    Some(pb::principal::Principal::AgentId(id)) if dir == Dir::NamedReader => vec![id.as_str()],
                    _ => Vec::new(),
                };
                let groups = if dir == Dir::GroupReader { vec![world.group.id.as_str()] } else { Vec::new() };
                let directory = crate::directories::directory(&server, &format!("D{row}"), &agent, &groups).await;
                crate::directories::file_organisation(&server, &world.other_organisation, &directory.id).await;
                crate::directories::file_customer(&server, &world.other_customer.id, &directory.id).await;
                if matches!(who, Who::Customer(_)) {
                    crate::directories::file_organisation(&server, &world.own_organisation, &directory.id).await;
                    crate::directories::file_customer(&server, &world.own_record.id, &directory.id).await;
                }
            }
            for res in RESOURCES {
                for level in [L::Ro, L::Rw] {
                    let (allowed, reason) = expected(who, dir, res, level);
                    let answer = server
                        .permissions()
                        .check_permission(pb::CheckPermissionRequest {
                            principal: Some(asked.clone()),
                            level: level as i32,
                            resource: Some(resource(&world, res)),
                        })
                        .await
                        .expect("check permission")
                        .into_inner();
                    assert_eq!(
                        (answer.allowed, answer.reason()),
                        (allowed, reason),
                        "CheckPermission: {name}, {res:?}, {level:?}"
                    );
                    if matches!(reason, R::OwnGrant | R::OrganisationGrant) {
                        assert!(answer.grant.is_some(), "{name}: the deciding grant is named");
                    }
                    let Some(secret) = &secret else { continue };
                    let Some(outcome) = through_the_api(&server, &world, secret, res, level).await else { continue };
                    match (&outcome, matches!(who, Who::InvalidCustomer)) {
                        (Err(status), true) => assert_eq!(status.code(), Code::Unauthenticated, "{name}"),
                        (Ok(()), false) => assert!(allowed, "the API allowed what CheckPermission refuses: {name}, {res:?}, {level:?}"),
                        (Err(status), false) => {
                            assert!(!allowed, "the API refused what CheckPermission allows: {name}, {res:?}, {level:?}: {status:?}");
                            // A hidden contact is missing to the agent: NOT_FOUND, unless the
                            // method is refused to it before any contact is looked at.
                            let manages = matches!(who, Who::Agent { manage_customers: true, .. });
                            let code = if level == L::Ro || (reason == R::Directory && manages) { Code::NotFound } else { Code::PermissionDenied };
                            assert_eq!(status.code(), code, "{name}, {res:?}, {level:?}: unreadable is NOT_FOUND, unwritable PERMISSION_DENIED");
                        }
                        (Ok(()), true) => panic!("an invalid customer's token worked"),
                    }
                }
            }
        }
    }

    async fn company_always_groups_apply_in_the_same_organisation_context_only(server) {
        let group = server.group("Support").await;
        let org = server.organisation("ACME", &[]).await;
        let customer = server.customer(pb::Customer { email: "jane@example.com".into(), organisation_id: org.id.clone(), ..Default::default() }).await;
        set_groups(&server, "company_always_groups", &group, true).await;
        let effective = |subject: pb::subject::Subject| {
            let mut client = server.permissions();
            async move {
                client
                    .get_effective_permissions(pb::GetEffectivePermissionsRequest { subject: Some(pb::Subject { subject: Some(subject) }) })
                    .await
                    .expect("effective")
                    .into_inner()
                    .permissions
            }
        };
        let of_org = effective(pb::subject::Subject::OrganisationId(org.id.clone())).await;
        let scopes: Vec<(pb::TicketScope, pb::PermissionLevel, pb::PermissionReason)> =
            of_org.iter().map(|p| (p.scope(), p.level(), p.reason())).collect();
        assert_eq!(scopes, [(pb::TicketScope::Organisation, L::Rw, R::CompanyAlwaysGroups)]);
        let of_customer = effective(pb::subject::Subject::CustomerId(customer.id.clone())).await;
        let scopes: Vec<pb::TicketScope> = of_customer.iter().map(|p| p.scope()).collect();
        assert_eq!(scopes, [pb::TicketScope::Own, pb::TicketScope::Organisation], "never all tickets of the group");
    }

    async fn other_organisations_grants_reach_every_ticket_of_the_group(server) {
        let group = server.group("Partners").await;
        let org = server.organisation("PARTNER", &[]).await;
        let customer = server.customer(pb::Customer { email: "pat@example.com".into(), organisation_id: org.id.clone(), ..Default::default() }).await;
        server.grant(pb::subject::Subject::OrganisationId(org.id.clone()), &group.id, L::Ro, pb::GrantContext::OtherOrganisations).await;
        let permissions = server
            .permissions()
            .get_effective_permissions(pb::GetEffectivePermissionsRequest {
                subject: Some(pb::Subject { subject: Some(pb::subject::Subject::CustomerId(customer.id.clone())) }),
            })
            .await
            .expect("effective")
            .into_inner()
            .permissions;
        let scopes: Vec<(pb::TicketScope, pb::PermissionLevel)> = permissions.iter().map(|p| (p.scope(), p.level())).collect();
        assert_eq!(scopes, [(pb::TicketScope::Own, L::Ro), (pb::TicketScope::All, L::Ro)]);
    }

    async fn granting_on_an_invalid_group_or_to_an_invalid_subject_is_refused(server) {
        use pb::subject::Subject as S;
        let group = server.group("Closed").await;
        let agent = server.agent("temp", false).await;
        let org = server.organisation("ORG", &[]).await;
        let mut client = server.permissions();
        let grant = |subject: S, group_id: &str, level: L, context: pb::GrantContext| pb::GrantPermissionRequest {
            grant: Some(pb::Grant {
                subject: Some(pb::Subject { subject: Some(subject) }),
                group_id: group_id.to_owned(),
                level: level as i32,
                context: context as i32,
                ..Default::default()
            }),
        };
        let before = server.count(clientele::store::Table::Grants).await;
        let unknown_group = client.grant_permission(grant(S::AgentId(agent.id.clone()), &uuid::Uuid::now_v7().to_string(), L::Ro, pb::GrantContext::Unspecified)).await;
        expect_invalid(unknown_group, "grant.group_id");
        let unknown_agent = client.grant_permission(grant(S::AgentId(uuid::Uuid::now_v7().to_string()), &group.id, L::Ro, pb::GrantContext::Unspecified)).await;
        expect_invalid(unknown_agent, "grant.subject");
        let no_context = client.grant_permission(grant(S::OrganisationId(org.id.clone()), &group.id, L::Ro, pb::GrantContext::Unspecified)).await;
        expect_invalid(no_context, "grant.context");
        let agent_context = client.grant_permission(grant(S::AgentId(agent.id.clone()), &group.id, L::Ro, pb::GrantContext::SameOrganisation)).await;
        expect_invalid(agent_context, "grant.context");
        let no_level = client.grant_permission(grant(S::AgentId(agent.id.clone()), &group.id, L::Unspecified, pb::GrantContext::Unspecified)).await;
        expect_invalid(no_level, "grant.level");

        server
            .agents()
            .update_agent(pb::UpdateAgentRequest {
                agent: Some(pb::Agent { validity: pb::Validity::Invalid as i32, ..agent.clone() }),
                update_mask: Some(FieldMask { paths: vec!["validity".into()] }),
            })
            .await
            .expect("deactivate agent");
        let invalid_subject = client.grant_permission(grant(S::AgentId(agent.id.clone()), &group.id, L::Ro, pb::GrantContext::Unspecified)).await;
        let status = expect_code(invalid_subject, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("SUBJECT_INVALID"));

        server
            .groups()
            .update_group(pb::UpdateGroupRequest {
                group: Some(pb::Group { validity: pb::Validity::Invalid as i32, ..group.clone() }),
                update_mask: Some(FieldMask { paths: vec!["validity".into()] }),
            })
            .await
            .expect("deactivate group");
        let invalid_group = client.grant_permission(grant(S::OrganisationId(org.id.clone()), &group.id, L::Ro, pb::GrantContext::SameOrganisation)).await;
        let status = expect_code(invalid_group, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("GROUP_INVALID"));
        assert_eq!(server.count(clientele::store::Table::Grants).await, before, "nothing was granted");
    }

    async fn grants_are_changed_revoked_and_listed_by_subject_and_by_group(server) {
        use pb::subject::Subject as S;
        let first = server.group("First").await;
        let second = server.group("Second").await;
        let agent = server.agent("lister", false).await;
        let org = server.organisation("LISTED", &[]).await;
        let given = server.grant(S::AgentId(agent.id.clone()), &first.id, L::Ro, pb::GrantContext::Unspecified).await;
        // GrantPermission adds: the level held again changes nothing, another is refused.
        assert_eq!(server.grant(S::AgentId(agent.id.clone()), &first.id, L::Ro, pb::GrantContext::Unspecified).await, given);
        let before = server.snapshot().await;
        let other_level = pb::GrantPermissionRequest { grant: Some(pb::Grant { level: L::Rw as i32, ..given.clone() }) };
        let status = expect_code(server.permissions().grant_permission(other_level).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("GRANT_EXISTS"));
        assert_eq!(server.snapshot().await, before, "the level stays");
        // SetPermission sets, and says what the level was.
        let (raised, previous) = server.set_level(S::AgentId(agent.id.clone()), &first.id, L::Rw, pb::GrantContext::Unspecified).await;
        assert_eq!((raised.level(), previous, &raised.create_time), (L::Rw, L::Ro, &given.create_time), "the same grant");
        let (_, previous) = server.set_level(S::AgentId(agent.id.clone()), &second.id, L::Ro, pb::GrantContext::Unspecified).await;
        assert_eq!(previous, L::None, "a new grant had no level");
        server.grant(S::OrganisationId(org.id.clone()), &first.id, L::Ro, pb::GrantContext::SameOrganisation).await;
        server.grant(S::OrganisationId(org.id.clone()), &first.id, L::Rw, pb::GrantContext::OtherOrganisations).await;

        let mut client = server.permissions();
        let by_subject = client
            .list_grants(pb::ListGrantsRequest {
                of: Some(pb::list_grants_request::Of::Subject(pb::Subject { subject: Some(S::AgentId(agent.id.clone())) })),
                ..Default::default()
            })
            .await
            .expect("by subject")
            .into_inner()
            .grants;
        assert_eq!(by_subject.len(), 2);
        let mut paged = Vec::new();
        let mut request = pb::ListGrantsRequest { page_size: 2, of: Some(pb::list_grants_request::Of::GroupId(first.id.clone())), ..Default::default() };
        loop {
            let page = client.list_grants(request.clone()).await.expect("by group").into_inner();
            paged.extend(page.grants);
            if page.next_page_token.is_empty() { break; }
            request.page_token = page.next_page_token;
        }
        assert_eq!(paged.len(), 3, "the agent and the organisation in two contexts");

        let revoked = client
            .revoke_permission(pb::RevokePermissionRequest {
                subject: Some(pb::Subject { subject: Some(S::OrganisationId(org.id.clone())) }),
                group_id: first.id.clone(),
                context: pb::GrantContext::OtherOrganisations as i32,
            })
            .await
            .expect("revoke")
            .into_inner()
            .revoked;
        assert!(revoked);
        let again = client
            .revoke_permission(pb::RevokePermissionRequest {
                subject: Some(pb::Subject { subject: Some(S::OrganisationId(org.id.clone())) }),
                group_id: first.id.clone(),
                context: pb::GrantContext::OtherOrganisations as i32,
            })
            .await
            .expect("revoke again")
            .into_inner()
            .revoked;
        assert!(!again, "there was nothing left to revoke");
    }

    /// Every grant change is in the change log with what changed, through GrantPermission,
    /// RevokePermission and SetGroupPermissions alike: created with its subject, group,
    /// context and level; a level changed from the old to the new; taken away with the level
    /// it had.
    async fn every_grant_change_is_logged_with_what_changed(server) {
        use pb::subject::Subject as S;
        use serde_json::{Value, json};
        let group = server.group("Logged").await;
        let org = server.organisation("LOGGED", &[]).await;
        let agent = server.agent("logged", false).await;
        let log_of = |id: String| {
            let store = server.store.clone();
            async move {
                store
                    .changes_of(clientele::model::ResourceType::Grant, uuid::Uuid::parse_str(&id).expect("uuid"))
                    .await
                    .expect("log")
                    .into_iter()
                    .map(|event| {
                        let fields: Vec<(String, Value, Value)> =
                            event.changes.into_iter().map(|c| (c.field, c.old, c.new)).collect();
                        (event.kind, fields)
                    })
                    .collect::<Vec<_>>()
            }
        };
        let created = |subject: Value, context: &str, level: &str| {
            vec![
                ("subject".to_owned(), Value::Null, subject),
                ("group_id".to_owned(), Value::Null, json!(group.id)),
                ("context".to_owned(), Value::Null, json!(context)),
                ("level".to_owned(), Value::Null, json!(level)),
            ]
        };
        let level = |old: Value, new: Value| vec![("level".to_owned(), old, new)];
        let id_of = |subject: clientele::model::Subject, context: clientele::model::GrantContext| {
            let store = server.store.clone();
            let group_id = uuid::Uuid::parse_str(&group.id).expect("uuid");
            async move { store.grant(subject, group_id, context).await.expect("read").expect("the grant").id.to_string() }
        };
        let org_id = uuid::Uuid::parse_str(&org.id).expect("uuid");
        let agent_id = uuid::Uuid::parse_str(&agent.id).expect("uuid");

        // One grant given, raised and taken away, one call each.
        server.grant(S::OrganisationId(org.id.clone()), &group.id, L::Ro, pb::GrantContext::SameOrganisation).await;
        let given = id_of(clientele::model::Subject::Organisation(org_id), clientele::model::GrantContext::SameOrganisation).await;
        server.set_level(S::OrganisationId(org.id.clone()), &group.id, L::Rw, pb::GrantContext::SameOrganisation).await;
        let mut client = server.permissions();
        client
            .revoke_permission(pb::RevokePermissionRequest {
                subject: Some(pb::Subject { subject: Some(S::OrganisationId(org.id.clone())) }),
                group_id: group.id.clone(),
                context: pb::GrantContext::SameOrganisation as i32,
            })
            .await
            .expect("revoke");
        assert_eq!(
            log_of(given).await,
            vec![
                ("created".to_owned(), created(json!({"kind": "organisation", "id": org.id}), "same_organisation", "ro")),
                ("updated".to_owned(), level(json!("ro"), json!("rw"))),
                ("deleted".to_owned(), level(json!("rw"), Value::Null)),
            ]
        );

        // The same through SetGroupPermissions.
        let set = |level: L| pb::SetGroupPermissionsRequest {
            group_id: group.id.clone(),
            kind: pb::SubjectKind::Agent as i32,
            level: level as i32,
            context: 0,
            subject_ids: vec![agent.id.clone()],
        };
        client.set_group_permissions(set(L::Ro)).await.expect("ro");
        let grant = id_of(clientele::model::Subject::Agent(agent_id), clientele::model::GrantContext::None).await;
        client.set_group_permissions(set(L::Rw)).await.expect("rw");
        client.set_group_permissions(set(L::None)).await.expect("none");
        assert_eq!(
            log_of(grant).await,
            vec![
                ("created".to_owned(), created(json!({"kind": "agent", "id": agent.id}), "none", "ro")),
                ("updated".to_owned(), level(json!("ro"), json!("rw"))),
                ("deleted".to_owned(), level(json!("rw"), Value::Null)),
            ]
        );
    }

    async fn one_level_is_set_for_every_subject_of_a_group_in_one_call(server) {
        let group = server.group("Column").await;
        let agents = [
            server.agent("a1", false).await,
            server.agent("a2", false).await,
            server.agent("a3", false).await,
        ];
        server
            .agents()
            .update_agent(pb::UpdateAgentRequest {
                agent: Some(pb::Agent { validity: pb::Validity::Invalid as i32, ..agents[2].clone() }),
                update_mask: Some(FieldMask { paths: vec!["validity".into()] }),
            })
            .await
            .expect("deactivate a3");
        let mut client = server.permissions();
        let set = |level: L, ids: Vec<String>| pb::SetGroupPermissionsRequest {
            group_id: group.id.clone(),
            kind: pb::SubjectKind::Agent as i32,
            level: level as i32,
            context: 0,
            subject_ids: ids,
        };
        let changed = client.set_group_permissions(set(L::Ro, vec![])).await.expect("all ro").into_inner().changed;
        assert_eq!(changed, 2, "every valid agent");
        let unchanged = client.set_group_permissions(set(L::Ro, vec![])).await.expect("all ro again").into_inner().changed;
        assert_eq!(unchanged, 0);
        let one = client.set_group_permissions(set(L::Rw, vec![agents[0].id.clone()])).await.expect("one rw").into_inner().changed;
        assert_eq!(one, 1);
        let refused = client.set_group_permissions(set(L::Rw, vec![agents[2].id.clone()])).await;
        expect_code(refused, Code::FailedPrecondition);
        let removed = client.set_group_permissions(set(L::None, vec![])).await.expect("none").into_inner().changed;
        assert_eq!(removed, 2);
        assert_eq!(server.count(clientele::store::Table::Grants).await, 0);
    }

    async fn a_customers_grants_move_with_a_merge_and_go_with_a_delete(server) {
        use pb::subject::Subject as S;
        let group = server.group("Moved").await;
        let other = server.group("Kept").await;
        let source = server.customer(pb::Customer { email: "dup@example.com".into(), ..Default::default() }).await;
        let target = server.customer(pb::Customer { email: "main@example.com".into(), ..Default::default() }).await;
        server.grant(S::CustomerId(source.id.clone()), &group.id, L::Rw, pb::GrantContext::Unspecified).await;
        server.grant(S::CustomerId(source.id.clone()), &other.id, L::Rw, pb::GrantContext::Unspecified).await;
        server.grant(S::CustomerId(target.id.clone()), &other.id, L::Ro, pb::GrantContext::Unspecified).await;
        server
            .customers()
            .merge_customers(pb::MergeCustomersRequest { source_id: source.id.clone(), target_id: target.id.clone(), source_etag: server.customer_etag(&source.id).await, target_etag: server.customer_etag(&target.id).await })
            .await
            .expect("merge");
        let grants = server
            .permissions()
            .list_grants(pb::ListGrantsRequest {
                of: Some(pb::list_grants_request::Of::Subject(pb::Subject { subject: Some(S::CustomerId(target.id.clone())) })),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .grants;
        let mut levels: Vec<(String, pb::PermissionLevel)> = grants.iter().map(|g| (g.group_id.clone(), g.level())).collect();
        levels.sort();
        let mut expected = vec![(group.id.clone(), L::Rw), (other.id.clone(), L::Rw)];
        expected.sort();
        assert_eq!(levels, expected, "moved, and the higher level kept");
        server
            .customers()
            .delete_customer(pb::DeleteCustomerRequest { id: target.id.clone(), etag: server.customer_etag(&target.id).await })
            .await
            .expect("delete");
        assert_eq!(server.count(clientele::store::Table::Grants).await, 0);
    }

    async fn a_customer_reads_itself_and_its_organisations_and_nothing_else(server) {
        let own = server.organisation("MINE", &[]).await;
        let second = server.organisation("ALSO-MINE", &[]).await;
        let foreign = server.organisation("FOREIGN", &[]).await;
        let me = server
            .customer(pb::Customer { email: "me@example.com".into(), organisation_id: own.id.clone(), secondary_organisation_ids: vec![second.id.clone()], ..Default::default() })
            .await;
        server.customer(pb::Customer { email: "colleague@example.com".into(), organisation_id: own.id.clone(), ..Default::default() }).await;
        let secret = server.token(pb::token_owner::Owner::CustomerId(me.id.clone())).await;
        let mut clients = server.as_token(&secret);
        let organisations: Vec<String> = clients
            .organisations
            .list_organisations(pb::ListOrganisationsRequest::default())
            .await
            .expect("list organisations")
            .into_inner()
            .organisations
            .into_iter()
            .map(|o| o.code)
            .collect();
        assert_eq!(organisations, ["ALSO-MINE", "MINE"]);
        let customers: Vec<String> = clients
            .customers
            .list_customers(pb::ListCustomersRequest { organisation_id: own.id.clone(), ..Default::default() })
            .await
            .expect("list customers")
            .into_inner()
            .customers
            .into_iter()
            .map(|c| c.email)
            .collect();
        assert_eq!(customers, ["me@example.com"], "not even colleagues");
        let foreign_by_key = clients
            .organisations
            .get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Code(foreign.code.clone())) })
            .await;
        expect_code(foreign_by_key, Code::NotFound);
        // By id too: a foreign organisation is not found, its own ones are.
        let foreign_by_id = clients
            .organisations
            .get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Id(foreign.id.clone())) })
            .await;
        expect_code(foreign_by_id, Code::NotFound);
        for mine in [&own, &second] {
            let found = clients
                .organisations
                .get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Id(mine.id.clone())) })
                .await
                .expect("its own organisation")
                .into_inner()
                .organisation
                .expect("an organisation");
            assert_eq!(found.id, mine.id);
        }
        let whoami = clients.agents.who_am_i(pb::WhoAmIRequest {}).await.expect("whoami").into_inner();
        assert_eq!(whoami.customer_id, me.id);
        assert_eq!(whoami.organisation_ids.len(), 2);
    }
}

backend_tests! {
    async fn an_invalid_agent_has_no_effective_permissions(server) {
        let group = server.group("support").await;
        let agent = server.agent("leaver", false).await;
        server.grant(pb::subject::Subject::AgentId(agent.id.clone()), &group.id, pb::PermissionLevel::Rw, pb::GrantContext::Unspecified).await;
        let effective = |server: &TestServer, id: String| {
            let mut permissions = server.permissions();
            async move {
                permissions
                    .get_effective_permissions(pb::GetEffectivePermissionsRequest {
                        subject: Some(pb::Subject { subject: Some(pb::subject::Subject::AgentId(id)) }),
                    })
                    .await
                    .expect("effective")
                    .into_inner()
                    .permissions
            }
        };
        assert_eq!(effective(&server, agent.id.clone()).await.len(), 1);
        server
            .agents()
            .update_agent(pb::UpdateAgentRequest {
                agent: Some(pb::Agent { validity: pb::Validity::Invalid.into(), ..agent.clone() }),
                update_mask: Some(FieldMask { paths: vec!["validity".into()] }),
            })
            .await
            .expect("deactivate the agent");
        assert!(effective(&server, agent.id.clone()).await.is_empty(), "its grants give an invalid agent nothing");
    }

    async fn an_invalid_customer_has_no_effective_permissions(server) {
        use pb::subject::Subject as S;
        let group = server.group("portal").await;
        customer_settings(&server, true, &[], &[]).await;
        let customer = server
            .customer(pb::Customer { email: "gone@portal.example".into(), ..Default::default() })
            .await;
        server.grant(S::CustomerId(customer.id.clone()), &group.id, L::Rw, pb::GrantContext::Unspecified).await;
        let effective = || {
            let mut permissions = server.permissions();
            let id = customer.id.clone();
            async move {
                permissions
                    .get_effective_permissions(pb::GetEffectivePermissionsRequest {
                        subject: Some(pb::Subject { subject: Some(S::CustomerId(id)) }),
                    })
                    .await
                    .expect("effective")
                    .into_inner()
                    .permissions
            }
        };
        assert_eq!(effective().await.len(), 1, "its own grant");
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest { id: customer.id.clone(), etag: server.customer_etag(&customer.id).await, ..Default::default() })
            .await
            .expect("deactivate the customer");
        assert!(effective().await.is_empty(), "its grants give an invalid customer nothing");
    }
}

/// Sets the three settings that give customers rights.
async fn customer_settings(
    server: &TestServer,
    support: bool,
    always: &[&pb::Group],
    company_always: &[&pb::Group],
) {
    let mut client = server.permissions();
    let current = client
        .get_settings(pb::GetSettingsRequest {})
        .await
        .expect("get")
        .into_inner()
        .settings
        .expect("settings");
    let ids = |groups: &[&pb::Group]| groups.iter().map(|g| g.id.clone()).collect();
    client
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::Settings {
                etag: current.etag,
                customer_group_support: support,
                always_groups: ids(always),
                company_always_groups: ids(company_always),
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
        .expect("update settings");
}

backend_tests! {
    /// When several grants and rules give the same access, CheckPermission and
    /// GetEffectivePermissions name the clearest cause: a grant of one's own before an
    /// organisation's, grants before always_groups, always_groups before
    /// company_always_groups, and those before customer_group_support being off. The causes
    /// are made in the opposite order, so that the first one found is never the answer by
    /// accident; each step takes the best one away.
    async fn the_clearest_of_several_causes_is_named(server) {
        use pb::subject::Subject as S;
        let group = server.group("Many ways").await;
        let org = server.organisation("MANYWAYS", &[]).await;
        let customer = server.customer(pb::Customer { email: "many@example.com".into(), organisation_id: org.id.clone(), ..Default::default() }).await;
        customer_settings(&server, false, &[&group], &[&group]).await;
        server.grant(S::OrganisationId(org.id.clone()), &group.id, L::Rw, pb::GrantContext::SameOrganisation).await;
        server.grant(S::CustomerId(customer.id.clone()), &group.id, L::Rw, pb::GrantContext::Unspecified).await;
        let mut client = server.permissions();
        let check = |mut client: pb::permission_service_client::PermissionServiceClient<Authed>| {
            let (customer, group) = (customer.id.clone(), group.id.clone());
            async move {
                let checked = client
                    .check_permission(pb::CheckPermissionRequest {
                        principal: Some(pb::Principal { principal: Some(pb::principal::Principal::CustomerId(customer.clone())) }),
                        level: L::Rw as i32,
                        resource: Some(pb::Resource { resource: Some(pb::resource::Resource::GroupId(group.clone())) }),
                    })
                    .await
                    .expect("check")
                    .into_inner();
                assert!(checked.allowed);
                let effective = client
                    .get_effective_permissions(pb::GetEffectivePermissionsRequest { subject: Some(pb::Subject { subject: Some(S::CustomerId(customer)) }) })
                    .await
                    .expect("effective")
                    .into_inner()
                    .permissions;
                let own = effective.iter().find(|p| p.group_id == group && p.scope() == pb::TicketScope::Own).expect("own tickets of the group");
                assert_eq!(own.reason(), checked.reason(), "GetEffectivePermissions names the same cause");
                assert_eq!(own.grant, checked.grant);
                (checked.reason(), checked.grant.and_then(|g| g.subject).and_then(|s| s.subject))
            }
        };
        assert_eq!(check(client.clone()).await, (R::OwnGrant, Some(S::CustomerId(customer.id.clone()))));
        let revoke = |subject: S, context: pb::GrantContext| pb::RevokePermissionRequest {
            subject: Some(pb::Subject { subject: Some(subject) }),
            group_id: group.id.clone(),
            context: context as i32,
        };
        client.revoke_permission(revoke(S::CustomerId(customer.id.clone()), pb::GrantContext::Unspecified)).await.expect("revoke own");
        assert_eq!(check(client.clone()).await, (R::OrganisationGrant, Some(S::OrganisationId(org.id.clone()))));
        client.revoke_permission(revoke(S::OrganisationId(org.id.clone()), pb::GrantContext::SameOrganisation)).await.expect("revoke the organisation's");
        assert_eq!(check(client.clone()).await, (R::AlwaysGroups, None));
        customer_settings(&server, false, &[], &[&group]).await;
        assert_eq!(check(client.clone()).await, (R::CompanyAlwaysGroups, None));
        customer_settings(&server, false, &[], &[]).await;
        assert_eq!(check(client.clone()).await, (R::CustomerGroupSupportOff, None));
    }
}

clock_tests! {
    /// A changed level is the level from then on, for SetGroupPermissions and GrantPermission
    /// alike, and moves the grant's update_time (not its create_time).
    async fn a_changed_level_takes_effect_and_dates_the_grant(server, clock) {
        use pb::subject::Subject as S;
        let group = server.group("Levels").await;
        let (first, second) = (server.agent("first", false).await, server.agent("second", false).await);
        let mut client = server.permissions();
        let set = |level: L, ids: Vec<String>| pb::SetGroupPermissionsRequest {
            group_id: group.id.clone(),
            kind: pb::SubjectKind::Agent as i32,
            level: level as i32,
            context: 0,
            subject_ids: ids,
        };
        let start = clock.now();
        client.set_group_permissions(set(L::Ro, vec![])).await.expect("all ro");
        clock.set(start + jiff::SignedDuration::from_hours(1));
        let changed = client.set_group_permissions(set(L::Rw, vec![first.id.clone()])).await.expect("first rw").into_inner().changed;
        assert_eq!(changed, 1);
        clock.set(start + jiff::SignedDuration::from_hours(2));
        let second_rw = pb::GrantPermissionRequest {
            grant: Some(pb::Grant {
                subject: Some(pb::Subject { subject: Some(S::AgentId(second.id.clone())) }),
                group_id: group.id.clone(),
                level: L::Rw as i32,
                ..Default::default()
            }),
        };
        client.set_permission(pb::SetPermissionRequest { grant: second_rw.grant.clone() }).await.expect("second rw");
        let grants = client
            .list_grants(pb::ListGrantsRequest { of: Some(pb::list_grants_request::Of::GroupId(group.id.clone())), ..Default::default() })
            .await
            .expect("list")
            .into_inner()
            .grants;
        let of = |agent: &pb::Agent| {
            let grant = grants.iter().find(|g| g.subject == Some(pb::Subject { subject: Some(S::AgentId(agent.id.clone())) })).expect("grant");
            (grant.level(), desk::time(&grant.create_time), desk::time(&grant.update_time))
        };
        let hours = |n: i64| Some(start + jiff::SignedDuration::from_hours(n));
        assert_eq!(of(&first), (L::Rw, hours(0), hours(1)), "SetGroupPermissions");
        assert_eq!(of(&second), (L::Rw, hours(0), hours(2)), "SetPermission");
        // Granting the level a grant already has changes nothing: no event, no new time.
        clock.set(start + jiff::SignedDuration::from_hours(3));
        let events = server.count(clientele::store::Table::ChangeEvents).await;
        let again = client
            .grant_permission(second_rw)
            .await
            .expect("second rw again")
            .into_inner()
            .grant
            .expect("grant");
        assert_eq!(desk::time(&again.update_time), hours(2));
        assert_eq!(server.count(clientele::store::Table::ChangeEvents).await, events);
        for agent in [&first, &second] {
            let checked = client
                .check_permission(pb::CheckPermissionRequest {
                    principal: Some(pb::Principal { principal: Some(pb::principal::Principal::AgentId(agent.id.clone())) }),
                    level: L::Rw as i32,
                    resource: Some(pb::Resource { resource: Some(pb::resource::Resource::GroupId(group.id.clone())) }),
                })
                .await
                .expect("check")
                .into_inner();
            assert!(checked.allowed, "{} may write now", agent.login);
        }
    }
}
