//! Directories (address books): contacts filed in one are read by admins, its reader agents
//! and the agents of its reader groups only; for every other agent they do not exist. A
//! contact group is not a directory: joining one grants nothing.

use clientele::proto::v1::{self as pb, PermissionLevel as L, PermissionReason as R};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::*;

/// A directory read by `agents` and the agents of `groups`.
pub(crate) async fn directory(
    server: &TestServer,
    name: &str,
    agents: &[&str],
    groups: &[&str],
) -> pb::Directory {
    server
        .directories()
        .create_directory(pb::CreateDirectoryRequest {
            directory: Some(pb::Directory {
                name: name.into(),
                reader_agent_ids: agents.iter().map(|id| (*id).to_owned()).collect(),
                reader_group_ids: groups.iter().map(|id| (*id).to_owned()).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create directory")
        .into_inner()
        .directory
        .expect("directory")
}

/// Files customer `id` in `directory` (empty: in none), as an admin.
pub(crate) async fn file_customer(server: &TestServer, id: &str, directory: &str) -> pb::Customer {
    let current = server.customer_by_id(id).await;
    server
        .customers()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                directory_id: directory.into(),
                ..current
            }),
            update_mask: Some(FieldMask {
                paths: vec!["directory_id".into()],
            }),
        })
        .await
        .expect("file customer")
        .into_inner()
        .customer
        .expect("customer")
}

/// Files organisation `org` in `directory`, as an admin.
pub(crate) async fn file_organisation(
    server: &TestServer,
    org: &pb::Organisation,
    directory: &str,
) -> pb::Organisation {
    let current = server
        .organisations()
        .get_organisation(pb::GetOrganisationRequest {
            key: Some(pb::get_organisation_request::Key::Id(org.id.clone())),
        })
        .await
        .expect("organisation")
        .into_inner()
        .organisation
        .expect("organisation");
    server
        .organisations()
        .update_organisation(pb::UpdateOrganisationRequest {
            organisation: Some(pb::Organisation {
                directory_id: directory.into(),
                ..current
            }),
            update_mask: Some(FieldMask {
                paths: vec!["directory_id".into()],
            }),
        })
        .await
        .expect("file organisation")
        .into_inner()
        .organisation
        .expect("organisation")
}

fn by_id(id: &str) -> pb::GetCustomerRequest {
    pb::GetCustomerRequest {
        key: Some(pb::get_customer_request::Key::Id(id.into())),
    }
}

fn organisation_by_id(id: &str) -> pb::GetOrganisationRequest {
    pb::GetOrganisationRequest {
        key: Some(pb::get_organisation_request::Key::Id(id.into())),
    }
}

/// The ids of the customers `clients` lists.
async fn listed_customers(clients: &mut Clients) -> Vec<String> {
    clients
        .customers
        .list_customers(pb::ListCustomersRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list customers")
        .into_inner()
        .customers
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn listed_organisations(clients: &mut Clients) -> Vec<String> {
    clients
        .organisations
        .list_organisations(pb::ListOrganisationsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list organisations")
        .into_inner()
        .organisations
        .into_iter()
        .map(|o| o.id)
        .collect()
}

/// The ids of the customers and organisations whose changes `clients` sees in the feed.
async fn fed_contacts(clients: &mut Clients) -> Vec<String> {
    clients
        .changes
        .list_changes(pb::ListChangesRequest {
            page_size: 1000,
            resource_types: vec![
                pb::ResourceType::Customer.into(),
                pb::ResourceType::Organisation.into(),
            ],
            ..Default::default()
        })
        .await
        .expect("list changes")
        .into_inner()
        .events
        .into_iter()
        .map(|event| event.resource_id)
        .collect()
}

async fn check(
    server: &TestServer,
    agent: &pb::Agent,
    customer: &pb::Customer,
    level: L,
) -> (bool, R) {
    let answer = server
        .permissions()
        .check_permission(pb::CheckPermissionRequest {
            principal: Some(pb::Principal {
                principal: Some(pb::principal::Principal::AgentId(agent.id.clone())),
            }),
            level: level as i32,
            resource: Some(pb::Resource {
                resource: Some(pb::resource::Resource::CustomerId(customer.id.clone())),
            }),
        })
        .await
        .expect("check permission")
        .into_inner();
    (answer.allowed, answer.reason())
}

backend_tests! {
    async fn an_agent_learns_nothing_of_the_contacts_of_a_directory_it_may_not_read(server) {
        let group = server.group("Board support").await;
        let reader = server.agent("reader", false).await;
        let member = server.agent("member", false).await;
        let stranger = server.agent("stranger", true).await;
        server.grant(pb::subject::Subject::AgentId(member.id.clone()), &group.id, L::Ro, pb::GrantContext::Unspecified).await;
        let board = directory(&server, "Board", &[&reader.id], &[&group.id]).await;
        let org = server.organisation("BOARD", &[]).await;
        let org = file_organisation(&server, &org, &board.id).await;
        assert_eq!(org.directory_id, board.id);
        let chair = server.customer(pb::Customer { email: "chair@board.example".into(), ..Default::default() }).await;
        let chair = file_customer(&server, &chair.id, &board.id).await;
        let public = server.customer(pb::Customer { email: "jane@example.com".into(), organisation_id: org.id.clone(), ..Default::default() }).await;
        let token = |agent: &pb::Agent| server.token(pb::token_owner::Owner::AgentId(agent.id.clone()));
        let (mut as_reader, mut as_member, mut as_stranger) = (
            server.as_token(&token(&reader).await),
            server.as_token(&token(&member).await),
            server.as_token(&token(&stranger).await),
        );

        // The readers, by name and through their group, read the filed contacts.
        for clients in [&mut as_reader, &mut as_member] {
            let got = clients.customers.get_customer(by_id(&chair.id)).await.expect("a reader reads").into_inner().customer.expect("customer");
            assert_eq!(got.directory_id, board.id);
            clients.organisations.get_organisation(organisation_by_id(&org.id)).await.expect("a reader reads the organisation");
            assert!(listed_customers(clients).await.contains(&chair.id));
            assert!(fed_contacts(clients).await.contains(&chair.id));
        }
        // Anyone else: as if they did not exist, wherever it looks.
        for request in [by_id(&chair.id), pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email("chair@board.example".into())) }] {
            expect_code(as_stranger.customers.get_customer(request).await, Code::NotFound);
        }
        expect_code(as_stranger.organisations.get_organisation(organisation_by_id(&org.id)).await, Code::NotFound);
        expect_code(as_stranger.organisations.get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Code("board".into())) }).await, Code::NotFound);
        // Nor does a search find it.
        let search = |clients: &mut Clients| {
            let mut customers = clients.customers.clone();
            async move {
                customers.list_customers(pb::ListCustomersRequest { text: "chair@board".into(), ..Default::default() })
                    .await.expect("search").into_inner().customers.len()
            }
        };
        assert_eq!((search(&mut as_stranger).await, search(&mut as_reader).await), (0, 1));
        let listed = listed_customers(&mut as_stranger).await;
        assert!(!listed.contains(&chair.id) && listed.contains(&public.id), "{listed:?}");
        assert!(!listed_organisations(&mut as_stranger).await.contains(&org.id));
        let fed = fed_contacts(&mut as_stranger).await;
        assert!(!fed.contains(&chair.id) && !fed.contains(&org.id) && fed.contains(&public.id), "{fed:?}");
        for (resource_type, id) in [(pb::ResourceType::Customer, &chair.id), (pb::ResourceType::Organisation, &org.id)] {
            expect_code(as_stranger.changes.get_history(pb::GetHistoryRequest { resource_type: resource_type.into(), resource_id: id.clone(), ..Default::default() }).await, Code::NotFound);
        }
        // A watch of the feed shows the stranger the next change it may see, not the hidden
        // one committed before it; the reader sees both.
        let watch = |clients: &mut Clients| {
            let mut changes = clients.changes.clone();
            async move {
                changes.watch_changes(pb::WatchChangesRequest { from_now: true, resource_types: vec![pb::ResourceType::Customer.into()], ..Default::default() })
                    .await.expect("watch").into_inner()
            }
        };
        let (mut strangers, mut readers) = (ChangeEvents::new(watch(&mut as_stranger).await), ChangeEvents::new(watch(&mut as_reader).await));
        for id in [&chair.id, &public.id] {
            let current = server.customer_by_id(id).await;
            server.customers().update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer { title: "Prof.".into(), ..current }),
                update_mask: Some(FieldMask { paths: vec!["title".into()] }),
            }).await.expect("update");
        }
        // Both changes may come in one message (on PostgreSQL, one run of the sequencer can
        // place both): the events are taken one by one.
        assert_eq!(strangers.next().await.resource_id, public.id, "the hidden change is not streamed");
        assert_eq!(readers.next().await.resource_id, chair.id);
        assert_eq!(readers.next().await.resource_id, public.id);

        // Nor in the overviews, the sheet or an export.
        expect_code(as_stranger.tickets.get_customer_overview(pb::GetCustomerOverviewRequest { key: Some(pb::get_customer_overview_request::Key::Id(chair.id.clone())), ..Default::default() }).await, Code::NotFound);
        expect_code(as_stranger.tickets.get_organisation_overview(pb::GetOrganisationOverviewRequest { key: Some(pb::get_organisation_overview_request::Key::Id(org.id.clone())), ..Default::default() }).await, Code::NotFound);
        as_reader.tickets.get_customer_overview(pb::GetCustomerOverviewRequest { key: Some(pb::get_customer_overview_request::Key::Id(chair.id.clone())), ..Default::default() }).await.expect("a reader's overview");
        let sheet = as_stranger.customers.render_customer_sheet(pb::RenderCustomerSheetRequest { subject: Some(pb::render_customer_sheet_request::Subject::CustomerId(chair.id.clone())), time_zone: String::new() }).await;
        match sheet {
            Err(status) => assert_eq!(status.code(), Code::NotFound),
            Ok(stream) => {
                let first = stream.into_inner().message().await;
                assert!(matches!(&first, Err(status) if status.code() == Code::NotFound), "{first:?}");
            }
        }
        let export = as_stranger.privacy.export_customer_data(pb::ExportCustomerDataRequest { id: chair.id.clone() }).await;
        match export {
            Err(status) => assert_eq!(status.code(), Code::NotFound),
            Ok(stream) => {
                let first = stream.into_inner().message().await;
                assert!(matches!(&first, Err(status) if status.code() == Code::NotFound), "{first:?}");
            }
        }

        // ... nor may it change them, though it manages customers: NOT_FOUND, and nothing changes.
        let before = server.snapshot().await;
        let current = server.customer_by_id(&chair.id).await;
        expect_code(as_stranger.customers.update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { title: "Dr.".into(), ..current.clone() }),
            update_mask: Some(FieldMask { paths: vec!["title".into()] }),
        }).await, Code::NotFound);
        expect_code(as_stranger.customers.delete_customer(pb::DeleteCustomerRequest { id: chair.id.clone(), etag: current.etag.clone() }).await, Code::NotFound);
        expect_code(as_stranger.customers.deactivate_customer(pb::DeactivateCustomerRequest { id: chair.id.clone(), etag: current.etag.clone(), ..Default::default() }).await, Code::NotFound);
        expect_code(as_stranger.customers.merge_customers(pb::MergeCustomersRequest { source_id: public.id.clone(), target_id: chair.id.clone(), source_etag: server.customer_etag(&public.id).await, target_etag: current.etag.clone() }).await, Code::NotFound);
        // It may not file what it sees into a directory it may not read, nor put a customer
        // into an organisation it cannot see.
        let public_now = server.customer_by_id(&public.id).await;
        expect_invalid(as_stranger.customers.update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { directory_id: board.id.clone(), ..public_now.clone() }),
            update_mask: Some(FieldMask { paths: vec!["directory_id".into()] }),
        }).await, "customer.directory_id");
        expect_invalid(as_stranger.customers.create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer { email: "new@board.example".into(), organisation_id: org.id.clone(), ..Default::default() }),
            request_id: String::new(),
        }).await, "customer.organisation_id");
        // Its address stays taken: creating it again conflicts as for any customer, and
        // FindOrCreateCustomer does not hand the hidden record over.
        expect_code(as_stranger.customers.create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer { email: "chair@board.example".into(), ..Default::default() }),
            request_id: String::new(),
        }).await, Code::AlreadyExists);
        expect_code(as_stranger.customers.find_or_create_customer(pb::FindOrCreateCustomerRequest {
            customer: Some(pb::Customer { email: "chair@board.example".into(), ..Default::default() }),
        }).await, Code::AlreadyExists);
        assert_eq!(server.snapshot().await, before, "refused writes change nothing");

        // CheckPermission explains it, and a caller that may not read the contact learns not
        // even that it exists.
        assert_eq!(check(&server, &stranger, &chair, L::Ro).await, (false, R::Directory));
        assert_eq!(check(&server, &stranger, &chair, L::Rw).await, (false, R::Directory));
        assert_eq!(check(&server, &member, &chair, L::Ro).await, (true, R::DirectoryReader));
        assert_eq!(check(&server, &reader, &chair, L::Rw).await, (false, R::NoManageCustomers));
        assert_eq!(check(&server, &stranger, &public, L::Ro).await, (true, R::AgentReadsMasterData));
        let asked = |resource| pb::CheckPermissionRequest {
            principal: Some(pb::Principal { principal: Some(pb::principal::Principal::AgentId(reader.id.clone())) }),
            level: L::Ro as i32,
            resource: Some(pb::Resource { resource: Some(resource) }),
        };
        expect_code(as_stranger.permissions.check_permission(asked(pb::resource::Resource::CustomerId(chair.id.clone()))).await, Code::NotFound);
        as_reader.permissions.check_permission(asked(pb::resource::Resource::CustomerId(chair.id.clone()))).await.expect("a reader asks about it");

        // Notes on the hidden contact are hidden with it (the stranger may write notes).
        let on_chair = Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::CustomerId(chair.id.clone())) });
        let note = |body: &str| pb::CreateCommentRequest {
            comment: Some(pb::Comment { body: body.into(), visibility: pb::CommentVisibility::Internal.into(), parent: on_chair.clone(), ..Default::default() }),
            request_id: String::new(),
        };
        server.comments().create_comment(note("Prefers phone calls")).await.expect("an admin's note");
        let notes = |clients: &mut Clients| {
            let mut comments = clients.comments.clone();
            let parent = on_chair.clone();
            async move {
                comments.list_comments(pb::ListCommentsRequest { parent, ..Default::default() }).await
                    .map(|r| r.into_inner().comments.into_iter().map(|c| c.body).collect::<Vec<_>>())
            }
        };
        assert_eq!(notes(&mut as_reader).await.expect("a reader's notes"), ["Prefers phone calls"]);
        match notes(&mut as_stranger).await {
            Ok(bodies) => assert!(bodies.is_empty(), "{bodies:?}"),
            Err(status) => assert_eq!(status.code(), Code::NotFound),
        }
        // As for a customer that does not exist.
        expect_invalid(as_stranger.comments.create_comment(note("Mine")).await, "comment.parent.customer_id");

        // The seed's example: putting the contact into a contact group grants nobody access.
        let colleagues = crate::contact_groups::contact_group(&server, "Colleagues of the board", "Colleagues", &[]).await;
        assert_eq!(crate::contact_groups::join(&server, &colleagues, &[&chair, &public], &[]).await, 2);
        expect_code(as_stranger.customers.get_customer(by_id(&chair.id)).await, Code::NotFound);
        let members: Vec<String> = as_stranger.contact_groups.list_contact_group_members(pb::ListContactGroupMembersRequest { contact_group_id: colleagues.id.clone(), ..Default::default() })
            .await.expect("members").into_inner().members.into_iter().filter_map(|m| match m.member { Some(pb::contact_group_member::Member::CustomerId(id)) => Some(id), _ => None }).collect();
        assert_eq!(members, vec![public.id.clone()], "the hidden member is left out");
        expect_code(as_stranger.contact_groups.list_contact_group_memberships(pb::ListContactGroupMembershipsRequest {
            member: Some(pb::list_contact_group_memberships_request::Member::CustomerId(chair.id.clone())),
            ..Default::default()
        }).await, Code::NotFound);
        // The membership change names the hidden customer: the stranger sees only that it
        // happened, a reader what it was.
        let joined = |clients: &mut Clients| {
            let mut changes = clients.changes.clone();
            let group = colleagues.id.clone();
            async move {
                changes.list_changes(pb::ListChangesRequest { page_size: 1000, resource_types: vec![pb::ResourceType::ContactGroup.into()], resource_id: group, ..Default::default() })
                    .await.expect("changes").into_inner().events.into_iter().find(|e| e.kind() == pb::ChangeKind::MembersAdded).expect("members added")
            }
        };
        assert!(joined(&mut as_stranger).await.changes.is_empty(), "the stranger's entry is a stub");
        assert!(!joined(&mut as_reader).await.changes.is_empty());
        // Its grants and rights are not there to be asked about, nor its organisation's
        // customers to be listed.
        let chair_subject = || Some(pb::Subject { subject: Some(pb::subject::Subject::CustomerId(chair.id.clone())) });
        server.grant(pb::subject::Subject::CustomerId(chair.id.clone()), &group.id, L::Ro, pb::GrantContext::Unspecified).await;
        let grants = as_stranger.permissions.list_grants(pb::ListGrantsRequest { of: Some(pb::list_grants_request::Of::Subject(pb::Subject { subject: Some(pb::subject::Subject::CustomerId(chair.id.clone())) })), ..Default::default() }).await.expect("grants").into_inner().grants;
        assert!(grants.is_empty(), "{grants:?}");
        let of_group = as_stranger.permissions.list_grants(pb::ListGrantsRequest { of: Some(pb::list_grants_request::Of::GroupId(group.id.clone())), ..Default::default() }).await.expect("grants").into_inner().grants;
        assert_eq!(of_group.len(), 1, "the member's grant only: {of_group:?}");
        expect_invalid(as_stranger.permissions.get_effective_permissions(pb::GetEffectivePermissionsRequest { subject: chair_subject() }).await, "subject");
        as_reader.permissions.get_effective_permissions(pb::GetEffectivePermissionsRequest { subject: chair_subject() }).await.expect("a reader asks");
        expect_code(as_stranger.permissions.check_permission(pb::CheckPermissionRequest {
            principal: Some(pb::Principal { principal: Some(pb::principal::Principal::CustomerId(chair.id.clone())) }),
            level: L::Ro as i32,
            resource: Some(pb::Resource { resource: Some(pb::resource::Resource::GroupId(group.id.clone())) }),
        }).await, Code::NotFound);
        let of_org = as_stranger.customers.list_customers(pb::ListCustomersRequest { organisation_id: org.id.clone(), ..Default::default() }).await.expect("list").into_inner().customers;
        assert!(of_org.is_empty(), "a hidden organisation has no customers to list: {of_org:?}");

        expect_invalid(as_stranger.contact_groups.add_contact_group_members(pb::AddContactGroupMembersRequest {
            contact_group_id: colleagues.id.clone(),
            customer_ids: vec![chair.id.clone()],
            organisation_ids: Vec::new(),
        }).await, "customer_ids");

        // Taken out of the directory, the contact is everyone's again.
        file_customer(&server, &chair.id, "").await;
        as_stranger.customers.get_customer(by_id(&chair.id)).await.expect("unfiled, every agent reads it");
    }

    async fn a_writer_is_not_told_the_code_of_an_organisation_it_may_not_read(server) {
        let stranger = server.agent("stranger", true).await;
        let board = directory(&server, "Board", &[], &[]).await;
        let org = server.organisation("SECRETCO", &[]).await;
        let org = file_organisation(&server, &org, &board.id).await;
        // A customer the stranger reads, of an organisation it may not read; the organisation
        // goes out of use, and the customer with it.
        let public = server.customer(pb::Customer { email: "jane@public.example".into(), organisation_id: org.id.clone(), ..Default::default() }).await;
        server.organisations().deactivate_organisation(pb::DeactivateOrganisationRequest { id: org.id.clone(), validity: pb::Validity::Invalid.into(), etag: org.etag.clone() }).await.expect("deactivate organisation");
        let current = server.customer_by_id(&public.id).await;
        assert_eq!(current.validity, i32::from(pb::Validity::Invalid));
        let reactivate = pb::ReactivateCustomerRequest { id: public.id.clone(), etag: current.etag.clone() };
        let mut as_stranger = server.as_token(&server.token(pb::token_owner::Owner::AgentId(stranger.id.clone())).await);
        let status = expect_code(as_stranger.customers.reactivate_customer(reactivate.clone()).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("ORGANISATION_INVALID"));
        let told = format!("{} {}", status.message(), String::from_utf8_lossy(status.details()));
        assert!(!told.to_lowercase().contains("secretco"), "{told}");
        // An admin reads it, and is told which.
        let status = expect_code(server.customers().reactivate_customer(reactivate).await, Code::FailedPrecondition);
        assert!(status.message().contains("SECRETCO"), "{}", status.message());
        assert_eq!(server.customer_by_id(&public.id).await.etag, current.etag);
    }

    async fn a_change_of_readers_holds_at_once_here_and_soon_on_the_other_replica(server) {
        let agent = server.agent("auditor", false).await;
        let secret = server.token(pb::token_owner::Owner::AgentId(agent.id.clone())).await;
        let vault = directory(&server, "Vault", &[&agent.id], &[]).await;
        let customer = server.customer(pb::Customer { email: "secret@vault.example".into(), ..Default::default() }).await;
        file_customer(&server, &customer.id, &vault.id).await;
        let replica = server.replica().await;
        let mut there = pb::customer_service_client::CustomerServiceClient::new(replica.authed(&secret));
        let mut here = server.as_token(&secret);
        here.customers.get_customer(by_id(&customer.id)).await.expect("a reader reads");
        there.get_customer(by_id(&customer.id)).await.expect("a reader reads on the replica");
        let updated = server.directories().update_directory(pb::UpdateDirectoryRequest {
            directory: Some(pb::Directory { reader_agent_ids: Vec::new(), ..vault.clone() }),
            update_mask: Some(FieldMask { paths: vec!["reader_agent_ids".into()] }),
        }).await.expect("update").into_inner().directory.expect("directory");
        assert!(updated.reader_agent_ids.is_empty());
        assert_ne!(updated.etag, vault.etag);
        expect_code(here.customers.get_customer(by_id(&customer.id)).await, Code::NotFound);
        desk::eventually("the replica hides the contact", || {
            let mut there = there.clone();
            let request = by_id(&customer.id);
            async move { matches!(there.get_customer(request).await, Err(status) if status.code() == Code::NotFound) }
        })
        .await;
        // The first directory turns directories on: contacts filed in none stay everyone's.
        let other = server.customer(pb::Customer { email: "open@example.com".into(), ..Default::default() }).await;
        here.customers.get_customer(by_id(&other.id)).await.expect("an unfiled contact");
        replica.stop().await;
    }

    async fn directories_are_checked_named_once_and_kept_by_admins(server) {
        let group = server.group("Sales").await;
        let agent = server.agent("sales", true).await;
        let first = directory(&server, "Partners", &[&agent.id], &[&group.id]).await;
        let agent_secret = server.token(pb::token_owner::Owner::AgentId(agent.id.clone())).await;
        assert_eq!(first.reader_group_ids, vec![group.id.clone()]);
        let got = server.directories().get_directory(pb::GetDirectoryRequest { id: first.id.clone() }).await.expect("get").into_inner().directory.expect("directory");
        assert_eq!(got, first);
        let before = server.snapshot().await;
        let create = |directory: pb::Directory| pb::CreateDirectoryRequest { directory: Some(directory), request_id: String::new() };
        let mut admin = server.directories();
        expect_invalid(admin.create_directory(create(pb::Directory::default())).await, "directory.name");
        expect_invalid(admin.create_directory(create(pb::Directory { name: "Bad\0name".into(), ..Default::default() })).await, "directory.name");
        expect_invalid(admin.create_directory(create(pb::Directory { name: "X".into(), reader_agent_ids: vec!["not-an-id".into()], ..Default::default() })).await, "directory.reader_agent_ids[0]");
        expect_invalid(admin.create_directory(create(pb::Directory { name: "X".into(), reader_group_ids: vec![uuid::Uuid::now_v7().to_string()], ..Default::default() })).await, "directory.reader_group_ids[0]");
        expect_invalid(admin.create_directory(create(pb::Directory { name: "X".into(), reader_agent_ids: (0..101).map(|_| agent.id.clone()).collect(), ..Default::default() })).await, "directory.reader_agent_ids");
        let taken = expect_code(admin.create_directory(create(pb::Directory { name: "partners".into(), ..Default::default() })).await, Code::AlreadyExists);
        assert_eq!(reason(&taken).as_deref(), Some("NAME_TAKEN"));
        expect_code(admin.update_directory(pb::UpdateDirectoryRequest {
            directory: Some(pb::Directory { name: "Renamed".into(), etag: "stale".into(), ..first.clone() }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
        }).await, Code::Aborted);
        let mut as_agent = server.as_token(&agent_secret);
        expect_code(as_agent.directories.create_directory(create(pb::Directory { name: "Mine".into(), ..Default::default() })).await, Code::PermissionDenied);
        assert_eq!(server.snapshot().await, before, "refused calls change nothing");
        let customer = server.customer(pb::Customer { email: "c@example.com".into(), ..Default::default() }).await;
        let secret = server.token(pb::token_owner::Owner::CustomerId(customer.id.clone())).await;
        let before = server.snapshot().await;
        expect_code(server.as_token(&secret).directories.list_directories(pb::ListDirectoriesRequest::default()).await, Code::PermissionDenied);
        expect_invalid(server.customers().update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { directory_id: uuid::Uuid::now_v7().to_string(), ..customer.clone() }),
            update_mask: Some(FieldMask { paths: vec!["directory_id".into()] }),
        }).await, "customer.directory_id");
        assert_eq!(server.snapshot().await, before, "refused calls change nothing");
        // Staff list them by name; an agent files a customer into one it reads.
        let second = directory(&server, "Board", &[], &[]).await;
        let names: Vec<String> = as_agent.directories.list_directories(pb::ListDirectoriesRequest { page_size: 1, ..Default::default() }).await.expect("list").into_inner().directories.into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["Board"]);
        let filed = as_agent.customers.create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer { email: "partner@example.com".into(), directory_id: first.id.clone(), ..Default::default() }),
            request_id: String::new(),
        }).await.expect("file into a directory it reads").into_inner().customer.expect("customer");
        assert_eq!(filed.directory_id, first.id);
        expect_invalid(as_agent.customers.create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer { email: "board@example.com".into(), directory_id: second.id.clone(), ..Default::default() }),
            request_id: String::new(),
        }).await, "customer.directory_id");
        // The changes are in the log.
        let history = server.changes().get_history(pb::GetHistoryRequest { resource_type: pb::ResourceType::Directory.into(), resource_id: first.id.clone(), ..Default::default() }).await.expect("history").into_inner();
        assert_eq!(history.events.len(), 1);
        assert_eq!(history.events[0].kind(), pb::ChangeKind::Created);
    }
}
