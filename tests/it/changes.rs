//! ChangeService: the change feed (ListChanges, WatchChanges) and the history of every
//! resource (GetHistory). Every change once, in commit order, from any cursor, also when
//! PostgreSQL transactions commit out of sequence order and writers run on two replicas;
//! rights decide what each caller sees.

use std::collections::{BTreeMap, HashSet};

use clientele::proto::v1::{self as pb, change_service_client::ChangeServiceClient};
use prost_types::value::Kind;
use tonic::Code;

use crate::{
    comments::{customer_party, on_ticket, write},
    support::{desk::eventually, *},
};

type Changes = ChangeServiceClient<Authed>;

/// Every change after `cursor` as `client` sees it, listed in pages of `page_size`, and the
/// cursor after the last.
async fn list_from(
    client: &Changes,
    cursor: &str,
    page_size: i32,
    filter: pb::ListChangesRequest,
) -> (Vec<pb::ChangeEvent>, String) {
    let mut client = client.clone();
    let mut cursor = cursor.to_owned();
    let mut changes = Vec::new();
    loop {
        let page = client
            .list_changes(pb::ListChangesRequest {
                cursor: cursor.clone(),
                page_size,
                ..filter.clone()
            })
            .await
            .expect("list changes")
            .into_inner();
        assert!(page.events.len() <= usize::try_from(page_size).expect("size"));
        changes.extend(page.events);
        cursor = page.next_cursor;
        if !page.more {
            return (changes, cursor);
        }
    }
}

async fn list_all(client: &Changes) -> Vec<pb::ChangeEvent> {
    list_from(client, "", 1000, pb::ListChangesRequest::default())
        .await
        .0
}

fn string(value: &Option<prost_types::Value>) -> Option<&str> {
    match value.as_ref()?.kind.as_ref()? {
        Kind::StringValue(text) => Some(text),
        _ => None,
    }
}

fn field<'a>(change: &'a pb::ChangeEvent, name: &str) -> &'a pb::FieldChange {
    change
        .changes
        .iter()
        .find(|c| c.field == name)
        .unwrap_or_else(|| panic!("{name} in {change:?}"))
}

fn kinds(changes: &[pb::ChangeEvent]) -> Vec<pb::ChangeKind> {
    changes.iter().map(|c| c.kind()).collect()
}

/// Renames customer `id` to `name`, reading its etag first and trying again when another
/// writer changed it in between.
pub async fn rename(
    customers: &mut pb::customer_service_client::CustomerServiceClient<Authed>,
    id: &str,
    name: &str,
) {
    loop {
        let current = customers
            .get_customer(pb::GetCustomerRequest {
                key: Some(pb::get_customer_request::Key::Id(id.into())),
            })
            .await
            .expect("read customer")
            .into_inner()
            .customer
            .expect("customer");
        let renamed = customers
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    first_name: name.into(),
                    ..current
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["first_name".into()],
                }),
            })
            .await;
        match renamed {
            Ok(_) => return,
            Err(status) if status.code() == Code::Aborted => continue,
            Err(status) => panic!("rename: {status:?}"),
        }
    }
}

backend_tests! {
    async fn the_feed_lists_every_change_once_in_order_with_its_fields(server) {
        let organisation = server.organisation("FEED", &[]).await;
        let customer = server.customer(pb::Customer {
            email: "ada@feed.example".into(),
            first_name: "Ada".into(),
            organisation_id: organisation.id.clone(),
            ..Default::default()
        }).await;
        rename(&mut server.customers(), &customer.id, "Augusta").await;
        let changes = server.changes();
        let all = list_all(&changes).await;
        // Pages of two give the same changes as one page, each once.
        let (paged, end) = list_from(&changes, "", 2, pb::ListChangesRequest::default()).await;
        assert_eq!(paged, all);
        let cursors: HashSet<&str> = all.iter().map(|c| c.cursor.as_str()).collect();
        assert_eq!(cursors.len(), all.len(), "every change has a cursor of its own");
        // Commit order: the organisation before its customer, the customer's creation before
        // its rename.
        let at = |id: &str, kind: pb::ChangeKind| {
            all.iter().position(|c| c.resource_id == id && c.kind() == kind).expect("change")
        };
        assert!(at(&organisation.id, pb::ChangeKind::Created) < at(&customer.id, pb::ChangeKind::Created));
        assert!(at(&customer.id, pb::ChangeKind::Created) < at(&customer.id, pb::ChangeKind::Updated));
        let renamed = &all[at(&customer.id, pb::ChangeKind::Updated)];
        assert_eq!(renamed.resource_type(), pb::ResourceType::Customer);
        assert!(renamed.actor.starts_with("admin:"), "{}", renamed.actor);
        assert!(!renamed.redacted);
        assert!(renamed.time.is_some());
        let first_name = field(renamed, "first_name");
        assert_eq!(string(&first_name.old_value), Some("Ada"));
        assert_eq!(string(&first_name.new_value), Some("Augusta"));
        // From the end nothing more, and the cursor stays; from a change's cursor, what
        // followed it.
        let (after_end, same) = list_from(&changes, &end, 10, pb::ListChangesRequest::default()).await;
        assert!(after_end.is_empty());
        assert_eq!(same, end);
        let middle = at(&customer.id, pb::ChangeKind::Created);
        let (rest, _) = list_from(&changes, &all[middle].cursor, 1000, pb::ListChangesRequest::default()).await;
        assert_eq!(rest, all[middle + 1..]);
        // A change written now follows.
        rename(&mut server.customers(), &customer.id, "Lovelace").await;
        let (next, _) = list_from(&changes, &end, 10, pb::ListChangesRequest::default()).await;
        assert_eq!(kinds(&next), [pb::ChangeKind::Updated]);
        assert_eq!(string(&field(&next[0], "first_name").old_value), Some("Augusta"));
        assert!(next[0].resource.is_none(), "no resource unless asked for");
        // Asked for, each change carries its resource as it is now.
        let (with, _) = list_from(&changes, "", 1000, pb::ListChangesRequest { include_resources: true, ..Default::default() }).await;
        for change in &with {
            match (change.resource_type(), &change.resource) {
                (pb::ResourceType::Customer, Some(pb::change_event::Resource::Customer(now))) => {
                    assert_eq!((now.id.as_str(), now.first_name.as_str()), (customer.id.as_str(), "Lovelace"));
                }
                (pb::ResourceType::Organisation, Some(pb::change_event::Resource::Organisation(now))) => {
                    assert_eq!(now.id, change.resource_id);
                }
                (pb::ResourceType::Customer | pb::ResourceType::Organisation, other) => panic!("{other:?}"),
                (_, resource) => assert!(resource.is_none()),
            }
        }
    }

    async fn the_feed_filters_by_resource_type_and_id_and_refuses_bad_filters(server) {
        let organisation = server.organisation("FILTER", &[]).await;
        let first = server.customer(pb::Customer { email: "one@filter.example".into(), ..Default::default() }).await;
        let second = server.customer(pb::Customer { email: "two@filter.example".into(), ..Default::default() }).await;
        let changes = server.changes();
        let customers = list_from(&changes, "", 1, pb::ListChangesRequest {
            resource_types: vec![pb::ResourceType::Customer.into()],
            ..Default::default()
        }).await.0;
        let ids: Vec<&str> = customers.iter().map(|c| c.resource_id.as_str()).collect();
        assert_eq!(ids, [first.id.as_str(), second.id.as_str()]);
        let both = list_from(&changes, "", 1000, pb::ListChangesRequest {
            resource_types: vec![pb::ResourceType::Customer.into(), pb::ResourceType::Organisation.into()],
            ..Default::default()
        }).await.0;
        assert_eq!(both.len(), 3);
        assert_eq!(both[0].resource_id, organisation.id);
        let one = list_from(&changes, "", 1000, pb::ListChangesRequest {
            resource_id: second.id.clone(),
            ..Default::default()
        }).await.0;
        assert_eq!(kinds(&one), [pb::ChangeKind::Created]);
        assert_eq!(one[0].resource_id, second.id);

        let mut client = changes.clone();
        for (request, field) in [
            (pb::ListChangesRequest { cursor: "not-a-cursor".into(), ..Default::default() }, "cursor"),
            (pb::ListChangesRequest { cursor: "Y2hnMTotNQ".into(), ..Default::default() }, "cursor"),
            (pb::ListChangesRequest { page_size: -1, ..Default::default() }, "page_size"),
            (pb::ListChangesRequest { resource_id: "x".into(), ..Default::default() }, "resource_id"),
            (pb::ListChangesRequest { resource_types: vec![0], ..Default::default() }, "resource_types[0]"),
            (pb::ListChangesRequest { resource_types: vec![1, 99], ..Default::default() }, "resource_types[1]"),
        ] {
            expect_invalid(client.list_changes(request).await, field);
        }
        expect_invalid(
            client.watch_changes(pb::WatchChangesRequest { cursor: one[0].cursor.clone(), from_now: true, ..Default::default() }).await,
            "from_now",
        );
    }

    async fn rights_decide_which_changes_each_caller_sees(server) {
        let acme = server.desk("acme").await;
        let globex = server.desk("globex").await;
        let acme_ticket = acme.create(acme.ticket("Printer")).await;
        let globex_ticket = globex.create(globex.ticket("Fax")).await;
        // A colleague of acme's customer: reads acme's tickets, not a private comment
        // addressed to someone else.
        let colleague = server.customer(pb::Customer {
            email: "colleague@acme.example".into(),
            organisation_id: acme.organisation.id.clone(),
            ..Default::default()
        }).await;
        let as_colleague = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(colleague.id.clone())).await);
        let private = write(&acme.as_agent, pb::Comment {
            body: "For your eyes".into(),
            visibility: pb::CommentVisibility::Private.into(),
            recipients: vec![customer_party(&acme.customer.id)],
            parent: on_ticket(&acme_ticket),
            ..Default::default()
        }).await.expect("private comment");
        let internal = write(&acme.as_agent, pb::Comment {
            body: "Agents only".into(),
            visibility: pb::CommentVisibility::Internal.into(),
            parent: on_ticket(&acme_ticket),
            ..Default::default()
        }).await.expect("internal comment");

        let admin = list_all(&server.changes()).await;
        let agent = list_all(&acme.as_agent.changes).await;
        let customer = list_all(&acme.as_customer.changes).await;
        let other = list_all(&as_colleague.changes).await;
        let ids = |changes: &[pb::ChangeEvent]| -> HashSet<String> { changes.iter().map(|c| c.resource_id.clone()).collect() };
        // Admins see everything, tokens included.
        assert!(admin.iter().any(|c| c.resource_type() == pb::ResourceType::Token));
        for id in [&acme_ticket.id, &globex_ticket.id, &private.id, &internal.id, &globex.organisation.id] {
            assert!(ids(&admin).contains(id.as_str()));
        }
        // An agent: all master data, its own group's tickets and comments, no tokens.
        assert!(ids(&agent).contains(&globex.organisation.id), "agents read all master data");
        assert!(ids(&agent).contains(&globex.customer.id));
        assert!(ids(&agent).contains(&acme_ticket.id) && ids(&agent).contains(&internal.id) && ids(&agent).contains(&private.id));
        assert!(!ids(&agent).contains(&globex_ticket.id), "another group's ticket");
        assert!(agent.iter().all(|c| c.resource_type() != pb::ResourceType::Token));
        assert!(agent.iter().all(|c| !c.redacted));
        // Customers: their tickets and the comments they may read, no master data.
        for seen in [&customer, &other] {
            assert!(seen.iter().all(|c| matches!(c.resource_type(), pb::ResourceType::Ticket | pb::ResourceType::Comment)), "{seen:?}");
            assert!(ids(seen).contains(&acme_ticket.id));
            assert!(!ids(seen).contains(&globex_ticket.id));
            assert!(!ids(seen).contains(&internal.id), "internal comments are the agents'");
        }
        let private_for = |seen: &[pb::ChangeEvent]| seen.iter().find(|c| c.resource_id == private.id).cloned().expect("the private comment's change");
        let addressed = private_for(&customer);
        assert!(!addressed.redacted && !addressed.changes.is_empty());
        let stub = private_for(&other);
        assert!(stub.redacted, "{stub:?}");
        assert!(stub.changes.is_empty() && stub.actor.is_empty());
        assert_eq!(stub.kind(), pb::ChangeKind::Created);
        assert_eq!(stub.cursor, addressed.cursor);
        // A follower's cursor passes the changes it may not see: listing on from it finds
        // nothing old.
        let (_, end) = list_from(&acme.as_customer.changes, "", 1000, pb::ListChangesRequest::default()).await;
        let (none, _) = list_from(&acme.as_customer.changes, &end, 1000, pb::ListChangesRequest::default()).await;
        assert!(none.is_empty());
        // Resources come with the caller's rights: the agent's ticket, nothing of another's.
        let (with, _) = list_from(&acme.as_agent.changes, "", 1000, pb::ListChangesRequest { include_resources: true, ..Default::default() }).await;
        let ticket_change = with.iter().find(|c| c.resource_id == acme_ticket.id).expect("ticket change");
        assert!(matches!(&ticket_change.resource, Some(pb::change_event::Resource::Ticket(t)) if t.id == acme_ticket.id));
        // History follows the same rights.
        let history = |clients: &Clients, kind: pb::ResourceType, id: &str| {
            let mut client = clients.changes.clone();
            let id = id.to_owned();
            async move {
                client.get_history(pb::GetHistoryRequest { resource_type: kind.into(), resource_id: id, ..Default::default() }).await
            }
        };
        expect_code(history(&acme.as_customer, pb::ResourceType::Customer, &acme.customer.id).await, Code::NotFound);
        expect_code(history(&acme.as_agent, pb::ResourceType::Ticket, &globex_ticket.id).await, Code::NotFound);
        expect_code(history(&acme.as_customer, pb::ResourceType::Comment, &internal.id).await, Code::NotFound);
        expect_code(history(&acme.as_agent, pb::ResourceType::Token, &acme.agent.id).await, Code::NotFound);
        let stubbed = history(&as_colleague, pb::ResourceType::Comment, &private.id).await;
        // A private comment the caller may not read is no resource it can name either... or a
        // stub, as the comment service shows it: both keep the text from it.
        if let Ok(stubbed) = stubbed {
            assert!(stubbed.into_inner().events.iter().all(|c| c.redacted && c.changes.is_empty()));
        }
        let ticket = history(&acme.as_customer, pb::ResourceType::Ticket, &acme_ticket.id).await.expect("own ticket").into_inner();
        assert_eq!(kinds(&ticket.events)[0], pb::ChangeKind::Created);
    }

    async fn every_resource_has_a_history(server) {
        let desk = server.desk("hist").await;
        let calendar = server.office_calendar("Office", "Europe/Berlin", &[]).await;
        let policy = server.policy("Gold", Some(jiff::SignedDuration::from_hours(1)), None, None, 80, &calendar.id).await;
        let ticket = desk.create(desk.ticket("Broken")).await;
        let comment = write(&desk.as_agent, pb::Comment { body: "On it".into(), parent: on_ticket(&ticket), ..Default::default() }).await.expect("comment");
        let settings = server.permissions().get_settings(pb::GetSettingsRequest {}).await.expect("settings").into_inner().settings.expect("settings");
        server.permissions().update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::Settings { customer_group_support: !settings.customer_group_support, ..settings }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["customer_group_support".into()] }),
        }).await.expect("update settings");
        let all = list_all(&server.changes()).await;
        let grant = all.iter().find(|c| c.resource_type() == pb::ResourceType::Grant).expect("a grant's change").resource_id.clone();
        let token = all.iter().find(|c| c.resource_type() == pb::ResourceType::Token).expect("a token's change").resource_id.clone();
        let mut client = server.changes();
        for (kind, id) in [
            (pb::ResourceType::Organisation, desk.organisation.id.clone()),
            (pb::ResourceType::Customer, desk.customer.id.clone()),
            (pb::ResourceType::Group, desk.group.id.clone()),
            (pb::ResourceType::Agent, desk.agent.id.clone()),
            (pb::ResourceType::Grant, grant),
            (pb::ResourceType::Token, token),
            (pb::ResourceType::Calendar, calendar.id.clone()),
            (pb::ResourceType::SlaPolicy, policy.id.clone()),
            (pb::ResourceType::Ticket, ticket.id.clone()),
            (pb::ResourceType::Comment, comment.id.clone()),
            (pb::ResourceType::Settings, uuid::Uuid::nil().to_string()),
        ] {
            let history = client
                .get_history(pb::GetHistoryRequest { resource_type: kind.into(), resource_id: id.clone(), page_size: 1, ..Default::default() })
                .await
                .unwrap_or_else(|status| panic!("history of {kind:?}: {status:?}"))
                .into_inner();
            assert_eq!(history.events.len(), 1, "{kind:?}");
            let first = &history.events[0];
            assert_eq!((first.resource_type(), first.resource_id.as_str()), (kind, id.as_str()));
            assert!(!first.actor.is_empty() && first.time.is_some(), "{first:?}");
            if kind != pb::ResourceType::Settings {
                assert_eq!(first.kind(), pb::ChangeKind::Created, "{kind:?}");
            }
            // The pages together are the resource's changes in the feed, in order.
            let mut entries = history.events;
            let mut token = history.next_page_token;
            while !token.is_empty() {
                let page = client
                    .get_history(pb::GetHistoryRequest { resource_type: kind.into(), resource_id: id.clone(), page_size: 1, page_token: token })
                    .await
                    .expect("next page")
                    .into_inner();
                entries.extend(page.events);
                token = page.next_page_token;
            }
            eventually("every change placed in the feed", || {
                let changes = server.changes();
                let id = id.clone();
                let entries = entries.clone();
                async move {
                    let feed = list_from(&changes, "", 1000, pb::ListChangesRequest { resource_id: id, ..Default::default() }).await.0;
                    feed.iter().map(|c| c.seq).collect::<Vec<_>>() == entries.iter().map(|c| c.seq).collect::<Vec<_>>()
                }
            }).await;
        }
        expect_code(
            client.get_history(pb::GetHistoryRequest { resource_type: pb::ResourceType::Customer.into(), resource_id: uuid::Uuid::now_v7().to_string(), ..Default::default() }).await,
            Code::NotFound,
        );
        expect_invalid(client.get_history(pb::GetHistoryRequest { resource_id: desk.customer.id.clone(), ..Default::default() }).await, "resource_type");
        expect_invalid(client.get_history(pb::GetHistoryRequest { resource_type: 2, resource_id: "nope".into(), ..Default::default() }).await, "resource_id");
    }

    async fn customers_and_organisations_list_by_update_time_for_incremental_sync(server) {
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(server.customer(pb::Customer { email: format!("s{n}@sync.example"), first_name: format!("v{n}"), ..Default::default() }).await.id);
        }
        let by_time = |page_token: String, updated_since: Option<prost_types::Timestamp>| pb::ListCustomersRequest {
            page_size: 1,
            page_token,
            order_by: pb::CustomerOrder::UpdateTime.into(),
            updated_since,
            ..Default::default()
        };
        let mut client = server.customers();
        let first = client.list_customers(by_time(String::new(), None)).await.expect("first page").into_inner();
        assert_eq!(first.customers[0].id, ids[0]);
        // Changed while the pages are read, the first customer moves to the end and comes
        // again; nothing is passed over.
        rename(&mut server.customers(), &ids[0], "changed").await;
        let mut seen = vec![first.customers[0].clone()];
        let mut token = first.next_page_token;
        while !token.is_empty() {
            let page = client.list_customers(by_time(token, None)).await.expect("page").into_inner();
            seen.extend(page.customers);
            token = page.next_page_token;
        }
        let order: Vec<(&str, &str)> = seen.iter().map(|c| (c.id.as_str(), c.first_name.as_str())).collect();
        assert_eq!(order, [(ids[0].as_str(), "v0"), (ids[1].as_str(), "v1"), (ids[2].as_str(), "v2"), (ids[0].as_str(), "changed")]);
        // Since the second's last change: the second, the third, the changed first.
        let since = seen[1].update_time;
        let mut since_page = client
            .list_customers(pb::ListCustomersRequest { page_size: 10, ..by_time(String::new(), since) })
            .await
            .expect("since")
            .into_inner()
            .customers
            .into_iter()
            .map(|c| c.id);
        assert_eq!([since_page.next(), since_page.next(), since_page.next(), since_page.next()], [Some(ids[1].clone()), Some(ids[2].clone()), Some(ids[0].clone()), None]);
        expect_invalid(
            client.list_customers(by_time(String::new(), Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }))).await,
            "updated_since",
        );

        let old = server.organisation("OLD", &[]).await;
        let new = server.organisation("NEW", &[]).await;
        let organisations = |updated_since: Option<prost_types::Timestamp>| {
            let mut client = server.organisations();
            async move {
                client
                    .list_organisations(pb::ListOrganisationsRequest {
                        order_by: pb::OrganisationOrder::UpdateTime.into(),
                        updated_since,
                        ..Default::default()
                    })
                    .await
                    .expect("organisations")
                    .into_inner()
                    .organisations
                    .into_iter()
                    .map(|o| o.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(organisations(None).await, [old.id.clone(), new.id.clone()]);
        assert_eq!(organisations(new.update_time).await, vec![new.id.clone()]);
    }

    async fn a_watch_sends_the_backlog_then_each_change_as_it_commits(server) {
        let first = server.organisation("W1", &[]).await;
        let mut client = server.changes();
        let mut watch = ChangeEvents::new(client
            .watch_changes(pb::WatchChangesRequest {
                resource_types: vec![pb::ResourceType::Organisation.into()],
                ..Default::default()
            })
            .await
            .expect("watch")
            .into_inner());
        let mut now = ChangeEvents::new(client.watch_changes(pb::WatchChangesRequest { from_now: true, ..Default::default() }).await.expect("watch from now").into_inner());
        let mut with_resources = ChangeEvents::new(client.watch_changes(pb::WatchChangesRequest { include_resources: true, resource_types: vec![pb::ResourceType::Organisation.into()], ..Default::default() }).await.expect("watch with resources").into_inner());
        let first_with = with_resources.next().await;
        assert!(matches!(&first_with.resource, Some(pb::change_event::Resource::Organisation(o)) if o.id == first.id), "{first_with:?}");
        let backlog = watch.next().await;
        assert_eq!((backlog.resource_id.as_str(), backlog.kind()), (first.id.as_str(), pb::ChangeKind::Created));
        let second = server.organisation("W2", &[]).await;
        let live = watch.next().await;
        assert_eq!(live.resource_id, second.id);
        let from_now = now.next().await;
        assert_eq!(from_now.resource_id, second.id, "from_now starts after what was committed before");
        // Resumed from the first change's cursor, the watch goes on with the second.
        let mut resumed = ChangeEvents::new(client.watch_changes(pb::WatchChangesRequest {
            cursor: backlog.cursor.clone(),
            resource_types: vec![pb::ResourceType::Organisation.into()],
            ..Default::default()
        }).await.expect("resume").into_inner());
        assert_eq!(resumed.next().await, live);
    }

    async fn a_watch_ends_when_its_token_is_revoked(server) {
        let desk = server.desk("revoke").await;
        let secret = server.token(pb::token_owner::Owner::AgentId(desk.agent.id.clone())).await;
        let clients = server.as_token(&secret);
        let who = clients.agents.clone().who_am_i(pb::WhoAmIRequest {}).await.expect("who am i").into_inner();
        let mut watch = clients.changes.clone().watch_changes(pb::WatchChangesRequest::default()).await.expect("watch").into_inner();
        server.agents().revoke_token(pb::RevokeTokenRequest { id: who.token.expect("token").id }).await.expect("revoke");
        let ended = tokio::time::timeout(PATIENCE, async {
            loop {
                match watch.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("the watch ended OK"),
                    Err(status) => return status,
                }
            }
        }).await.expect("the watch ends");
        assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    }

    async fn followers_resuming_from_random_cursors_see_every_change_once_in_commit_order(server) {
        // Two writers on each replica (one server on SQLite, which has one writer anyway)
        // rename three customers over and over, while followers watch, drop their stream
        // after a few messages and resume from a cursor they saw, chosen at random.
        let replica = match server.backend() {
            Backend::Postgres => Some(server.replica().await),
            Backend::Sqlite => None,
        };
        let mut customers = Vec::new();
        for n in 0..3 {
            customers.push(server.customer(pb::Customer { email: format!("c{n}@race.example"), first_name: "v0".into(), ..Default::default() }).await.id);
        }
        let channels: Vec<Authed> = match &replica {
            Some(replica) => vec![server.authed(Some(&server.admin_secret)), replica.authed(&server.admin_secret)],
            None => vec![server.authed(Some(&server.admin_secret))],
        };
        const RENAMES: usize = 40;
        let mut writers = Vec::new();
        for (w, channel) in channels.iter().cycle().take(4).enumerate() {
            let mut client = pb::customer_service_client::CustomerServiceClient::new(channel.clone());
            let customers = customers.clone();
            writers.push(tokio::spawn(async move {
                for n in 0..RENAMES {
                    rename(&mut client, &customers[(w + n) % customers.len()], &format!("w{w}-{n}")).await;
                }
            }));
        }
        let mut followers = Vec::new();
        for f in 0..3_u64 {
            let channel = channels[usize::try_from(f).expect("index") % channels.len()].clone();
            let writing = writers.iter().map(|w| w.abort_handle()).collect::<Vec<_>>();
            followers.push(tokio::spawn(async move {
                let mut client = ChangeServiceClient::new(channel);
                // What the follower holds as seen, in order; a resume cuts it back to the
                // cursor it resumes from.
                let mut seen: Vec<pb::ChangeEvent> = Vec::new();
                let mut random = f * 7919 + 17;
                let mut resumes = 0;
                loop {
                    let done = writing.iter().all(|w| w.is_finished());
                    random = random.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let back = usize::try_from(random >> 33).expect("small") % (seen.len() + 1);
                    seen.truncate(seen.len() - back.min(seen.len()));
                    let cursor = seen.last().map(|c| c.cursor.clone()).unwrap_or_default();
                    let mut stream = client.watch_changes(pb::WatchChangesRequest { cursor, ..Default::default() }).await.expect("watch").into_inner();
                    let take = 1 + (random >> 40) % 4;
                    for _ in 0..take {
                        match tokio::time::timeout(std::time::Duration::from_millis(300), stream.message()).await {
                            Ok(message) => seen.extend(message.expect("message").expect("open").events),
                            Err(_) => break,
                        }
                    }
                    resumes += 1;
                    if done {
                        // Catch up with everything, then stop.
                        let (rest, _) = list_from(&client, &seen.last().map(|c| c.cursor.clone()).unwrap_or_default(), 1000, pb::ListChangesRequest::default()).await;
                        seen.extend(rest);
                        return (seen, resumes);
                    }
                }
            }));
        }
        for writer in writers {
            writer.await.expect("writer");
        }
        let mut views = Vec::new();
        for follower in followers {
            views.push(follower.await.expect("follower"));
        }
        // The log as one follower reading it from the start after the fact sees it.
        let mut log = Vec::new();
        let server = &server;
        eventually("every change placed in the feed", || {
            let changes = server.changes();
            async move { list_all(&changes).await.len() == server.count(clientele::store::Table::ChangeEvents).await as usize }
        }).await;
        log.extend(list_all(&server.changes()).await);
        // A follower's own catch-up may have run before the last commits had their places in
        // the feed (PostgreSQL places them just after commit): it reads on from where it
        // stopped, now that every change has its place.
        for (seen, _) in &mut views {
            let cursor = seen.last().map(|c| c.cursor.clone()).unwrap_or_default();
            let (rest, _) = list_from(&server.changes(), &cursor, 1000, pb::ListChangesRequest::default()).await;
            seen.extend(rest);
        }
        for (seen, resumes) in &views {
            assert!(*resumes > 3, "the follower resumed {resumes} times");
            assert_eq!(seen.iter().map(|c| c.seq).collect::<Vec<_>>(), log.iter().map(|c| c.seq).collect::<Vec<_>>(), "a follower saw the log exactly");
        }
        // Commit order: each customer's renames chain, each one's old name the one before's new.
        let mut names: BTreeMap<&str, String> = BTreeMap::new();
        let mut renames = 0;
        for change in &log {
            if change.resource_type() == pb::ResourceType::Customer && change.kind() == pb::ChangeKind::Updated {
                let first_name = field(change, "first_name");
                let before = names.get(change.resource_id.as_str()).cloned().unwrap_or_else(|| "v0".into());
                assert_eq!(string(&first_name.old_value), Some(before.as_str()), "{change:?}");
                names.insert(&change.resource_id, string(&first_name.new_value).expect("name").to_owned());
                renames += 1;
            }
        }
        assert_eq!(renames, 4 * RENAMES);
        if let Some(replica) = replica {
            replica.stop().await;
        }
    }
}

/// PostgreSQL hands out sequence numbers at insert, so a transaction that took its number
/// early and commits late becomes visible behind later numbers: the feed still delivers it,
/// after the changes that committed before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn a_change_committed_after_a_later_numbered_one_is_not_skipped() {
    use sea_orm::{ConnectionTrait, Database, TransactionTrait};
    let Some(server) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    let direct = Database::connect(&server.database.url)
        .await
        .expect("connect");
    let late = direct.begin().await.expect("begin");
    let late_id = uuid::Uuid::now_v7();
    late.execute_unprepared(&format!(
        "INSERT INTO change_events (occur_time, actor, resource_type, resource_id, kind, changes) \
         VALUES (0, 'system', 'organisation', '{late_id}', 'updated', '[]')"
    ))
    .await
    .expect("insert, uncommitted");
    let early = server.organisation("EARLY", &[]).await;
    let changes = server.changes();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    eventually("the early change in the feed", || {
        let changes = changes.clone();
        let from = cursor.clone();
        let early = early.id.clone();
        async move {
            list_from(&changes, &from, 1000, pb::ListChangesRequest::default())
                .await
                .0
                .iter()
                .any(|c| c.resource_id == early)
        }
    })
    .await;
    let (first, next) = list_from(&changes, "", 1000, pb::ListChangesRequest::default()).await;
    seen.extend(first);
    cursor = next;
    assert!(seen.iter().all(|c| c.resource_id != late_id.to_string()));
    late.commit().await.expect("commit late");
    let late_seq = loop {
        let (more, next) =
            list_from(&changes, &cursor, 1000, pb::ListChangesRequest::default()).await;
        cursor = next;
        if let Some(change) = more.iter().find(|c| c.resource_id == late_id.to_string()) {
            break change.seq;
        }
        seen.extend(more);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let early_seq = seen
        .iter()
        .find(|c| c.resource_id == early.id)
        .expect("early")
        .seq;
    assert!(
        late_seq < early_seq,
        "the late change took its number first ({late_seq} < {early_seq})"
    );
    direct.close().await.expect("close");
    server.stop().await;
}
