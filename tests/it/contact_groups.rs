//! Contact groups (AyMINE): a catalogue of kinds, customers and organisations classified into
//! groups (a customer also in those of its organisations), price lists applied to groups by
//! precedence, and the prices that apply to one customer.

use clientele::proto::v1 as pb;
use tonic::Code;

use crate::support::{
    desk::{time, update},
    *,
};

pub(crate) async fn kind_id(server: &TestServer, name: &str) -> String {
    server
        .contact_groups()
        .list_contact_group_kinds(pb::ListContactGroupKindsRequest::default())
        .await
        .expect("list kinds")
        .into_inner()
        .contact_group_kinds
        .into_iter()
        .find(|kind| kind.name == name)
        .unwrap_or_else(|| panic!("kind {name}"))
        .id
}

pub(crate) async fn contact_group(
    server: &TestServer,
    name: &str,
    kind: &str,
    price_lists: &[(&pb::PriceList, i32)],
) -> pb::ContactGroup {
    let kind_id = kind_id(server, kind).await;
    server
        .contact_groups()
        .create_contact_group(pb::CreateContactGroupRequest {
            contact_group: Some(pb::ContactGroup {
                name: name.into(),
                kind_id,
                price_list_assignments: price_lists
                    .iter()
                    .map(|(list, precedence)| pb::PriceListAssignment {
                        price_list_id: list.id.clone(),
                        precedence: *precedence,
                    })
                    .collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create contact group")
        .into_inner()
        .contact_group
        .expect("contact group")
}

pub(crate) async fn join(
    server: &TestServer,
    group: &pb::ContactGroup,
    customers: &[&pb::Customer],
    organisations: &[&pb::Organisation],
) -> i64 {
    server
        .contact_groups()
        .add_contact_group_members(pb::AddContactGroupMembersRequest {
            contact_group_id: group.id.clone(),
            customer_ids: customers.iter().map(|c| c.id.clone()).collect(),
            organisation_ids: organisations.iter().map(|o| o.id.clone()).collect(),
        })
        .await
        .expect("add members")
        .into_inner()
        .members_added
}

pub(crate) async fn price_list(
    server: &TestServer,
    name: &str,
    currency: &str,
    items: &[(&str, &str)],
) -> pb::PriceList {
    server
        .price_lists()
        .create_price_list(pb::CreatePriceListRequest {
            price_list: Some(pb::PriceList {
                name: name.into(),
                currency: currency.into(),
                items: items
                    .iter()
                    .map(|(code, price)| pb::PriceItem {
                        item_code: (*code).into(),
                        name: format!("{code} of {name}"),
                        unit_price: (*price).into(),
                    })
                    .collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create price list")
        .into_inner()
        .price_list
        .expect("price list")
}

async fn memberships(server: &TestServer, customer: &pb::Customer) -> Vec<(String, String)> {
    server
        .contact_groups()
        .list_contact_group_memberships(pb::ListContactGroupMembershipsRequest {
            member: Some(
                pb::list_contact_group_memberships_request::Member::CustomerId(customer.id.clone()),
            ),
            include_invalid: false,
        })
        .await
        .expect("memberships")
        .into_inner()
        .memberships
        .into_iter()
        .map(|m| (m.contact_group.expect("group").name, m.via_organisation_id))
        .collect()
}

async fn prices(
    clients: &mut pb::price_list_service_client::PriceListServiceClient<Authed>,
    customer: &pb::Customer,
    currency: &str,
    codes: &[&str],
) -> Result<Vec<(String, String, String)>, tonic::Status> {
    Ok(clients
        .get_effective_prices(pb::GetEffectivePricesRequest {
            customer_id: customer.id.clone(),
            currency: currency.into(),
            item_codes: codes.iter().map(|c| (*c).into()).collect(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .prices
        .into_iter()
        .map(|p| (p.item_code, p.unit_price, p.price_list_id))
        .collect())
}

backend_tests! {
    async fn a_new_database_has_the_four_kinds_and_the_catalogue_takes_more(server) {
        let desk = server.desk("kinds").await;
        let names = |kinds: Vec<pb::ContactGroupKind>| -> Vec<String> {
            kinds.into_iter().map(|k| k.name).collect()
        };
        let listed = desk
            .as_agent
            .contact_groups
            .clone()
            .list_contact_group_kinds(pb::ListContactGroupKindsRequest::default())
            .await
            .expect("agents read the catalogue")
            .into_inner()
            .contact_group_kinds;
        assert_eq!(names(listed), ["Colleagues", "Customers", "Partners", "Suppliers"]);

        let mut admin = server.contact_groups();
        let resellers = admin
            .create_contact_group_kind(pb::CreateContactGroupKindRequest {
                contact_group_kind: Some(pb::ContactGroupKind {
                    name: "Resellers".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create kind")
            .into_inner()
            .contact_group_kind
            .expect("kind");
        let taken = expect_code(
            admin
                .create_contact_group_kind(pb::CreateContactGroupKindRequest {
                    contact_group_kind: Some(pb::ContactGroupKind {
                        name: "SUPPLIERS".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await,
            Code::AlreadyExists,
        );
        assert_eq!(reason(&taken).as_deref(), Some("NAME_TAKEN"));
        expect_invalid(
            admin
                .create_contact_group_kind(pb::CreateContactGroupKindRequest {
                    contact_group_kind: Some(pb::ContactGroupKind::default()),
                    request_id: String::new(),
                })
                .await,
            "contact_group_kind.name",
        );
        expect_code(
            desk.as_agent
                .contact_groups
                .clone()
                .create_contact_group_kind(pb::CreateContactGroupKindRequest {
                    contact_group_kind: Some(pb::ContactGroupKind {
                        name: "Mine".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            desk.as_customer
                .contact_groups
                .clone()
                .list_contact_group_kinds(pb::ListContactGroupKindsRequest::default())
                .await,
            Code::PermissionDenied,
        );

        // An invalid kind takes no new contact groups and leaves the catalogue's default list.
        let retired = admin
            .update_contact_group_kind(pb::UpdateContactGroupKindRequest {
                contact_group_kind: Some(pb::ContactGroupKind {
                    id: resellers.id.clone(),
                    etag: resellers.etag.clone(),
                    validity: pb::Validity::Invalid.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["validity".into()],
                }),
            })
            .await
            .expect("retire kind")
            .into_inner()
            .contact_group_kind
            .expect("kind");
        assert_ne!(retired.etag, resellers.etag);
        let refused = expect_code(
            admin
                .create_contact_group(pb::CreateContactGroupRequest {
                    contact_group: Some(pb::ContactGroup {
                        name: "Old resellers".into(),
                        kind_id: resellers.id.clone(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&refused).as_deref(), Some("KIND_INVALID"));
        let all = admin
            .list_contact_group_kinds(pb::ListContactGroupKindsRequest {
                include_invalid: true,
                page_size: 2,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(names(all.contact_group_kinds), ["Colleagues", "Customers"]);
        let rest = admin
            .list_contact_group_kinds(pb::ListContactGroupKindsRequest {
                include_invalid: true,
                page_size: 10,
                page_token: all.next_page_token,
            })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(
            names(rest.contact_group_kinds),
            ["Partners", "Resellers", "Suppliers"]
        );
    }

    async fn customers_and_organisations_join_contact_groups_and_a_customer_is_in_its_organisations_groups(server) {
        let desk = server.desk("members").await;
        let other = server.organisation("members-other", &[]).await;
        let colleague = server
            .customer(pb::Customer {
                email: "colleague@members.example".into(),
                organisation_id: desk.organisation.id.clone(),
                secondary_organisation_ids: vec![other.id.clone()],
                ..Default::default()
            })
            .await;
        let vip = contact_group(&server, "VIP", "Customers", &[]).await;
        let suppliers = contact_group(&server, "Hardware suppliers", "Suppliers", &[]).await;
        let partners = contact_group(&server, "Partners", "Partners", &[]).await;

        assert_eq!(join(&server, &vip, &[&colleague], &[]).await, 1);
        assert_eq!(
            join(&server, &suppliers, &[&colleague], &[&desk.organisation]).await,
            2
        );
        assert_eq!(join(&server, &partners, &[], &[&other]).await, 1);
        // Joining again changes nothing.
        assert_eq!(join(&server, &vip, &[&colleague, &colleague], &[]).await, 0);

        // Own groups, then those of the organisations; a group reached twice counts once,
        // directly.
        assert_eq!(
            memberships(&server, &colleague).await,
            [
                ("Hardware suppliers".to_owned(), String::new()),
                ("Partners".to_owned(), other.id.clone()),
                ("VIP".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            memberships(&server, &desk.customer).await,
            [("Hardware suppliers".to_owned(), desk.organisation.id.clone())]
        );

        let members = server
            .contact_groups()
            .list_contact_group_members(pb::ListContactGroupMembersRequest {
                contact_group_id: suppliers.id.clone(),
                page_size: 1,
                ..Default::default()
            })
            .await
            .expect("members")
            .into_inner();
        assert_eq!(members.members.len(), 1);
        // Both joined in one call: by id then, and the organisation is the older record.
        assert_eq!(
            members.members[0].member,
            Some(pb::contact_group_member::Member::OrganisationId(
                desk.organisation.id.clone()
            ))
        );
        let rest = server
            .contact_groups()
            .list_contact_group_members(pb::ListContactGroupMembersRequest {
                contact_group_id: suppliers.id.clone(),
                page_size: 10,
                page_token: members.next_page_token,
            })
            .await
            .expect("members")
            .into_inner();
        assert_eq!(
            rest.members
                .iter()
                .map(|m| m.member.clone())
                .collect::<Vec<_>>(),
            [Some(pb::contact_group_member::Member::CustomerId(colleague.id.clone()))]
        );
        assert!(rest.next_page_token.is_empty());

        // Leaving: only those in the group count.
        let removed = server
            .contact_groups()
            .remove_contact_group_members(pb::RemoveContactGroupMembersRequest {
                contact_group_id: suppliers.id.clone(),
                customer_ids: vec![colleague.id.clone(), desk.customer.id.clone()],
                organisation_ids: vec![],
            })
            .await
            .expect("remove")
            .into_inner()
            .members_removed;
        assert_eq!(removed, 1);
        assert_eq!(
            memberships(&server, &colleague).await,
            [
                ("Hardware suppliers".to_owned(), desk.organisation.id.clone()),
                ("Partners".to_owned(), other.id.clone()),
                ("VIP".to_owned(), String::new()),
            ]
        );

        // The change log has it all, on the contact group.
        let history: Vec<(i32, Vec<String>)> = server
            .changes()
            .get_history(pb::GetHistoryRequest {
                resource_type: pb::ResourceType::ContactGroup.into(),
                resource_id: suppliers.id.clone(),
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner()
            .events
            .into_iter()
            .map(|e| (e.kind, e.changes.into_iter().map(|c| c.field).collect()))
            .collect();
        assert_eq!(
            history,
            [
                (pb::ChangeKind::Created as i32, vec![
                    "name".into(),
                    "kind_id".into(),
                    "comment".into(),
                    "validity".into(),
                    "price_list_assignments".into(),
                    "sla_contract".into(),
                    "responsibilities".into()
                ]),
                (
                    pb::ChangeKind::MembersAdded as i32,
                    vec!["customer_ids".into(), "organisation_ids".into()]
                ),
                (pb::ChangeKind::MembersRemoved as i32, vec!["customer_ids".into()]),
            ]
        );

        // An invalid contact group applies to nobody, but is listed when asked for.
        let current = server
            .contact_groups()
            .get_contact_group(pb::GetContactGroupRequest {
                key: Some(pb::get_contact_group_request::Key::Name("vip".into())),
            })
            .await
            .expect("by name")
            .into_inner()
            .contact_group
            .expect("group");
        assert_eq!(current.id, vip.id);
        server
            .contact_groups()
            .update_contact_group(pb::UpdateContactGroupRequest {
                contact_group: Some(pb::ContactGroup {
                    id: vip.id.clone(),
                    etag: current.etag.clone(),
                    validity: pb::Validity::Invalid.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["validity".into()],
                }),
            })
            .await
            .expect("retire VIP");
        assert_eq!(
            memberships(&server, &colleague).await,
            [
                ("Hardware suppliers".to_owned(), desk.organisation.id.clone()),
                ("Partners".to_owned(), other.id.clone()),
            ]
        );
        let kinds = server
            .contact_groups()
            .list_contact_groups(pb::ListContactGroupsRequest {
                kind_id: kind_id(&server, "Suppliers").await,
                ..Default::default()
            })
            .await
            .expect("by kind")
            .into_inner()
            .contact_groups;
        assert_eq!(
            kinds.into_iter().map(|g| g.name).collect::<Vec<_>>(),
            ["Hardware suppliers"]
        );
    }

    async fn who_may_change_contact_group_members_and_what_a_wrong_member_gets(server) {
        let desk = server.desk("member-rights").await;
        let group = contact_group(&server, "Member rights", "Customers", &[]).await;
        let request = |customers: Vec<String>, organisations: Vec<String>| {
            pb::AddContactGroupMembersRequest {
                contact_group_id: group.id.clone(),
                customer_ids: customers,
                organisation_ids: organisations,
            }
        };
        let customer = desk.customer.id.clone();
        // Plain agents read but do not change membership; customer administrators do.
        let denied = expect_code(
            desk.as_agent
                .contact_groups
                .clone()
                .add_contact_group_members(request(vec![customer.clone()], vec![]))
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(reason(&denied).as_deref(), Some("NO_MANAGE_CUSTOMERS"));
        let manager = server.agent("member-rights-manager", true).await;
        let mut as_manager = server
            .as_token(
                &server
                    .token(pb::token_owner::Owner::AgentId(manager.id.clone()))
                    .await,
            )
            .contact_groups;
        assert_eq!(
            as_manager
                .add_contact_group_members(request(vec![customer.clone()], vec![]))
                .await
                .expect("a customer administrator adds")
                .into_inner()
                .members_added,
            1
        );
        expect_code(
            desk.as_customer
                .contact_groups
                .clone()
                .list_contact_group_memberships(pb::ListContactGroupMembershipsRequest {
                    member: Some(
                        pb::list_contact_group_memberships_request::Member::CustomerId(
                            customer.clone(),
                        ),
                    ),
                    include_invalid: false,
                })
                .await,
            Code::PermissionDenied,
        );

        let before = server.snapshot().await;
        let missing = uuid::Uuid::now_v7().to_string();
        expect_invalid(
            as_manager
                .add_contact_group_members(request(vec![missing.clone()], vec![]))
                .await,
            "customer_ids",
        );
        expect_invalid(
            as_manager
                .add_contact_group_members(request(vec![], vec![customer.clone()]))
                .await,
            "organisation_ids",
        );
        expect_invalid(
            as_manager
                .add_contact_group_members(request(vec!["not-an-id".into()], vec![]))
                .await,
            "customer_ids[0]",
        );
        expect_invalid(
            as_manager.add_contact_group_members(request(vec![], vec![])).await,
            "customer_ids",
        );
        expect_invalid(
            as_manager
                .add_contact_group_members(request(
                    (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect(),
                    vec![],
                ))
                .await,
            "customer_ids",
        );
        expect_code(
            as_manager
                .add_contact_group_members(pb::AddContactGroupMembersRequest {
                    contact_group_id: missing.clone(),
                    customer_ids: vec![customer.clone()],
                    organisation_ids: vec![],
                })
                .await,
            Code::NotFound,
        );
        assert_eq!(server.snapshot().await, before, "a refused request changes nothing");
    }

    async fn a_merged_customer_leaves_its_contact_groups_to_the_survivor_and_a_deleted_one_leaves_them(server) {
        let desk = server.desk("merged-members").await;
        let duplicate = server
            .customer(pb::Customer {
                email: "duplicate@merged-members.example".into(),
                organisation_id: desk.organisation.id.clone(),
                ..Default::default()
            })
            .await;
        let gold = contact_group(&server, "Gold", "Customers", &[]).await;
        let silver = contact_group(&server, "Silver", "Customers", &[]).await;
        join(&server, &gold, &[&duplicate], &[]).await;
        join(&server, &silver, &[&duplicate, &desk.customer], &[]).await;
        server
            .customers()
            .merge_customers(pb::MergeCustomersRequest {
                source_id: duplicate.id.clone(),
                target_id: desk.customer.id.clone(),
                source_etag: server.customer_etag(&duplicate.id).await,
                target_etag: server.customer_etag(&desk.customer.id).await,
            })
            .await
            .expect("merge");
        assert_eq!(
            memberships(&server, &desk.customer).await,
            [("Gold".to_owned(), String::new()), ("Silver".to_owned(), String::new())]
        );
        let gold_history = server
            .changes()
            .get_history(pb::GetHistoryRequest {
                resource_type: pb::ResourceType::ContactGroup.into(),
                resource_id: gold.id.clone(),
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner()
            .events;
        assert_eq!(
            gold_history.last().map(|e| e.kind),
            Some(pb::ChangeKind::MembersAdded as i32),
            "the survivor's joining is in the log"
        );

        server
            .customers()
            .delete_customer(pb::DeleteCustomerRequest {
                id: desk.customer.id.clone(),
                etag: server.customer_etag(&desk.customer.id).await,
            })
            .await
            .expect("delete");
        for group in [&gold, &silver] {
            let members = server
                .contact_groups()
                .list_contact_group_members(pb::ListContactGroupMembersRequest {
                    contact_group_id: group.id.clone(),
                    ..Default::default()
                })
                .await
                .expect("members")
                .into_inner()
                .members;
            assert!(members.is_empty(), "{}: {members:?}", group.name);
        }
    }
}

backend_tests! {
    async fn price_lists_keep_their_items_with_decimal_prices_and_refuse_what_is_not_a_price(server) {
        let mut admin = server.price_lists();
        let list = price_list(
            &server,
            "Standard",
            "eur",
            &[("SUPPORT-HOUR", "95.5"), ("onsite-day", "800"), ("Mail", "0.0125")],
        )
        .await;
        assert_eq!(list.currency, "EUR");
        assert_eq!(
            list.items
                .iter()
                .map(|i| (i.item_code.as_str(), i.unit_price.as_str()))
                .collect::<Vec<_>>(),
            [("Mail", "0.0125"), ("onsite-day", "800.00"), ("SUPPORT-HOUR", "95.50")],
            "items by item code, case-insensitively; prices with two to four decimals"
        );
        let read = admin
            .get_price_list(pb::GetPriceListRequest {
                key: Some(pb::get_price_list_request::Key::Name("STANDARD".into())),
            })
            .await
            .expect("by name")
            .into_inner()
            .price_list
            .expect("list");
        assert_eq!(read, list);

        let before = server.snapshot().await;
        let create = |list: pb::PriceList| pb::CreatePriceListRequest {
            price_list: Some(list),
            request_id: String::new(),
        };
        let item = |code: &str, price: &str| pb::PriceItem {
            item_code: code.into(),
            name: String::new(),
            unit_price: price.into(),
        };
        for (body, field) in [
            (
                pb::PriceList { name: "X".into(), currency: "EURO".into(), ..Default::default() },
                "price_list.currency",
            ),
            (
                pb::PriceList { name: "X".into(), currency: "€".into(), ..Default::default() },
                "price_list.currency",
            ),
            (
                pb::PriceList {
                    name: "X".into(),
                    currency: "EUR".into(),
                    items: vec![item("A", "-1")],
                    ..Default::default()
                },
                "price_list.items[0].unit_price",
            ),
            (
                pb::PriceList {
                    name: "X".into(),
                    currency: "EUR".into(),
                    items: vec![item("A", "1"), item("B", "1,50")],
                    ..Default::default()
                },
                "price_list.items[1].unit_price",
            ),
            (
                pb::PriceList {
                    name: "X".into(),
                    currency: "EUR".into(),
                    items: vec![item("A", "1"), item("a", "2")],
                    ..Default::default()
                },
                "price_list.items[1].item_code",
            ),
            (
                pb::PriceList {
                    name: "X".into(),
                    currency: "EUR".into(),
                    items: vec![item("A B", "1")],
                    ..Default::default()
                },
                "price_list.items[0].item_code",
            ),
            (
                pb::PriceList {
                    name: "X".into(),
                    currency: "EUR".into(),
                    items: vec![item("A\0", "1")],
                    ..Default::default()
                },
                "price_list.items[0].item_code",
            ),
            (
                pb::PriceList {
                    name: "X".into(),
                    currency: "EUR".into(),
                    items: (0..1001).map(|n| item(&format!("I{n}"), "1")).collect(),
                    ..Default::default()
                },
                "price_list.items",
            ),
            (
                pb::PriceList { currency: "EUR".into(), ..Default::default() },
                "price_list.name",
            ),
        ] {
            expect_invalid(admin.create_price_list(create(body)).await, field);
        }
        expect_code(
            admin
                .create_price_list(create(pb::PriceList {
                    name: "standard".into(),
                    currency: "EUR".into(),
                    ..Default::default()
                }))
                .await,
            Code::AlreadyExists,
        );
        assert_eq!(server.snapshot().await, before, "a refused request changes nothing");

        // Items are replaced as a whole; the etag moves.
        let updated = admin
            .update_price_list(pb::UpdatePriceListRequest {
                price_list: Some(pb::PriceList {
                    id: list.id.clone(),
                    etag: list.etag.clone(),
                    items: vec![item("SUPPORT-HOUR", "99")],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["items".into()],
                }),
            })
            .await
            .expect("update items")
            .into_inner()
            .price_list
            .expect("list");
        assert_eq!(updated.items, [pb::PriceItem {
            item_code: "SUPPORT-HOUR".into(),
            name: String::new(),
            unit_price: "99.00".into(),
        }]);
        let stale = admin
            .update_price_list(pb::UpdatePriceListRequest {
                price_list: Some(pb::PriceList {
                    id: list.id.clone(),
                    etag: list.etag.clone(),
                    comment: "late".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["comment".into()],
                }),
            })
            .await;
        expect_code(stale, Code::Aborted);
        let listed = admin
            .list_price_lists(pb::ListPriceListsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .price_lists;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].items.is_empty(), "lists come without their items");
    }

    // The seed's case: a customer in several contact groups, directly and through its
    // organisation, gets each item from the price list with the lowest precedence.
    async fn a_customer_in_several_contact_groups_gets_each_price_from_the_list_that_comes_first(server) {
        let desk = server.desk("prices").await;
        let stranger = server.desk("prices-elsewhere").await;
        // Created in this order: between equal precedences the older list wins.
        let partner = price_list(&server, "Partner", "EUR", &[("A", "80"), ("C", "30")]).await;
        let promo = price_list(&server, "Promo", "EUR", &[("A", "70"), ("B", "45")]).await;
        let standard = price_list(
            &server,
            "Standard",
            "EUR",
            &[("A", "100"), ("B", "50"), ("D", "10"), ("E", "12")],
        )
        .await;
        let dollars = price_list(&server, "Dollars", "USD", &[("A", "1"), ("F", "5")]).await;
        let customers = contact_group(&server, "All customers", "Customers", &[(&standard, 5)]).await;
        let partners = contact_group(
            &server,
            "Partners",
            "Partners",
            &[(&partner, 1), (&promo, 1), (&standard, 9)],
        )
        .await;
        let americas = contact_group(&server, "Americas", "Customers", &[(&dollars, 3)]).await;
        join(&server, &customers, &[&desk.customer], &[]).await;
        join(&server, &partners, &[], &[&desk.organisation]).await;
        join(&server, &americas, &[&desk.customer], &[]).await;

        let mut as_agent = desk.as_agent.price_lists.clone();
        let all = prices(&mut as_agent, &desk.customer, "", &[]).await.expect("prices");
        assert_eq!(
            all,
            [
                ("A".to_owned(), "80.00".to_owned(), partner.id.clone()),
                ("B".to_owned(), "45.00".to_owned(), promo.id.clone()),
                ("C".to_owned(), "30.00".to_owned(), partner.id.clone()),
                ("D".to_owned(), "10.00".to_owned(), standard.id.clone()),
                ("E".to_owned(), "12.00".to_owned(), standard.id.clone()),
                ("F".to_owned(), "5.00".to_owned(), dollars.id.clone()),
            ]
        );
        // Where a price comes from is part of the answer: Standard reaches the customer
        // through two groups and counts with the lower precedence (5, All customers).
        let detail = server
            .price_lists()
            .get_effective_prices(pb::GetEffectivePricesRequest {
                customer_id: desk.customer.id.clone(),
                item_codes: vec!["d".into()],
                ..Default::default()
            })
            .await
            .expect("one item")
            .into_inner()
            .prices;
        assert_eq!(detail.len(), 1);
        assert_eq!(detail[0].contact_group_id, customers.id);
        assert_eq!(detail[0].precedence, 5);
        assert_eq!(detail[0].currency, "EUR");
        assert_eq!(detail[0].name, "D of Standard");

        // One currency; named items only (an item no list has is left out).
        assert_eq!(
            prices(&mut as_agent, &desk.customer, "usd", &[]).await.expect("usd"),
            [
                ("A".to_owned(), "1.00".to_owned(), dollars.id.clone()),
                ("F".to_owned(), "5.00".to_owned(), dollars.id.clone()),
            ]
        );
        assert_eq!(
            prices(&mut as_agent, &desk.customer, "EUR", &["b", "Z"])
                .await
                .expect("named"),
            [("B".to_owned(), "45.00".to_owned(), promo.id.clone())]
        );

        // Pages of one, in item order, with the same answer.
        let mut paged = Vec::new();
        let mut token = String::new();
        loop {
            let page = server
                .price_lists()
                .get_effective_prices(pb::GetEffectivePricesRequest {
                    customer_id: desk.customer.id.clone(),
                    page_size: 1,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .expect("page")
                .into_inner();
            paged.extend(page.prices.into_iter().map(|p| (p.item_code, p.unit_price, p.price_list_id)));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(paged, all);

        // The customer reads its own prices, not another's; a customer in no contact group
        // gets none.
        let mut as_customer = desk.as_customer.price_lists.clone();
        assert_eq!(prices(&mut as_customer, &desk.customer, "", &[]).await.expect("own"), all);
        expect_code(
            prices(&mut as_customer, &stranger.customer, "", &[]).await,
            Code::NotFound,
        );
        assert!(prices(&mut as_agent, &stranger.customer, "", &[]).await.expect("none").is_empty());

        // An invalid price list applies to nobody: A falls to Promo.
        let current = server
            .price_lists()
            .get_price_list(pb::GetPriceListRequest {
                key: Some(pb::get_price_list_request::Key::Id(partner.id.clone())),
            })
            .await
            .expect("get")
            .into_inner()
            .price_list
            .expect("list");
        server
            .price_lists()
            .update_price_list(pb::UpdatePriceListRequest {
                price_list: Some(pb::PriceList {
                    id: partner.id.clone(),
                    etag: current.etag,
                    validity: pb::Validity::Invalid.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["validity".into()],
                }),
            })
            .await
            .expect("retire");
        assert_eq!(
            prices(&mut as_agent, &desk.customer, "EUR", &["A", "C"]).await.expect("after"),
            [("A".to_owned(), "70.00".to_owned(), promo.id.clone())]
        );

        // Wrong questions get field errors.
        for (request, field) in [
            (
                pb::GetEffectivePricesRequest {
                    customer_id: desk.customer.id.clone(),
                    currency: "EURO".into(),
                    ..Default::default()
                },
                "currency",
            ),
            (
                pb::GetEffectivePricesRequest {
                    customer_id: desk.customer.id.clone(),
                    item_codes: vec!["ok".into(), "not ok".into()],
                    ..Default::default()
                },
                "item_codes[1]",
            ),
            (pb::GetEffectivePricesRequest::default(), "customer_id"),
        ] {
            expect_invalid(server.price_lists().get_effective_prices(request).await, field);
        }
        // A contact group cannot name a price list that does not exist, nor one twice.
        let kind = kind_id(&server, "Customers").await;
        for (assignments, field) in [
            (
                vec![pb::PriceListAssignment {
                    price_list_id: uuid::Uuid::now_v7().to_string(),
                    precedence: 1,
                }],
                "contact_group.price_list_assignments[0].price_list_id",
            ),
            (
                vec![
                    pb::PriceListAssignment { price_list_id: promo.id.clone(), precedence: 1 },
                    pb::PriceListAssignment { price_list_id: promo.id.clone(), precedence: 2 },
                ],
                "contact_group.price_list_assignments[1].price_list_id",
            ),
            (
                vec![pb::PriceListAssignment { price_list_id: promo.id.clone(), precedence: 0 }],
                "contact_group.price_list_assignments[0].precedence",
            ),
        ] {
            expect_invalid(
                server
                    .contact_groups()
                    .create_contact_group(pb::CreateContactGroupRequest {
                        contact_group: Some(pb::ContactGroup {
                            name: "Wrong".into(),
                            kind_id: kind.clone(),
                            price_list_assignments: assignments,
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await,
                field,
            );
        }
    }
}

async fn set_org_policy(
    server: &TestServer,
    organisation: &pb::Organisation,
    policy: &pb::SlaPolicy,
) {
    server
        .organisations()
        .update_organisation(pb::UpdateOrganisationRequest {
            organisation: Some(pb::Organisation {
                id: organisation.id.clone(),
                etag: server.organisation_etag(&organisation.id).await,
                sla_policy_id: policy.id.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["sla_policy_id".into()],
            }),
        })
        .await
        .expect("organisation policy");
}

clock_tests! {
    // The seed: each contact group has an SLA contract assigned to every new problem, with a
    // default level that holds until the problem's severity is assessed. And the one order:
    // the ticket's own policy, the contract, the organisation's, the group's default.
    async fn a_contact_groups_sla_contract_holds_at_its_default_level_until_an_agent_assesses_the_severity(server, clock) {
        use clientele::clock::Clock;
        use jiff::SignedDuration;
        let desk = server.desk("contract").await;
        let hours = |h: i64| Some(SignedDuration::from_hours(h));
        let standard = server.policy("Standard", hours(8), None, None, 0, "").await;
        let fast = server.policy("Fast", hours(1), None, None, 0, "").await;
        let slow = server.policy("Slow", hours(24), None, None, 0, "").await;
        let by_organisation = server.policy("Organisation", hours(2), None, None, 0, "").await;
        let by_group = server.policy("Group default", hours(4), None, None, 0, "").await;
        set_org_policy(&server, &desk.organisation, &by_organisation).await;
        server
            .groups()
            .update_group(pb::UpdateGroupRequest {
                group: Some(pb::Group {
                    id: desk.group.id.clone(),
                    etag: desk.group.etag.clone(),
                    default_sla_policy_id: by_group.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["default_sla_policy_id".into()],
                }),
            })
            .await
            .expect("group default");
        let kind = kind_id(&server, "Customers").await;
        let gold = server
            .contact_groups()
            .create_contact_group(pb::CreateContactGroupRequest {
                contact_group: Some(pb::ContactGroup {
                    name: "Gold".into(),
                    kind_id: kind.clone(),
                    sla_contract: Some(pb::SlaContract {
                        default_sla_policy_id: standard.id.clone(),
                        levels: vec![
                            pb::SlaLevel {
                                severity: pb::Severity::Low.into(),
                                sla_policy_id: slow.id.clone(),
                            },
                            pb::SlaLevel {
                                severity: pb::Severity::Critical.into(),
                                sla_policy_id: fast.id.clone(),
                            },
                        ],
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("gold")
            .into_inner()
            .contact_group
            .expect("gold");
        assert_eq!(
            gold.sla_contract.as_ref().map(|c| c.levels.iter().map(|l| l.severity).collect::<Vec<_>>()),
            Some(vec![pb::Severity::Critical as i32, pb::Severity::Low as i32]),
            "levels worst first"
        );
        join(&server, &gold, &[], &[&desk.organisation]).await;

        // The customer's new problem gets the contract at its default level.
        let created = clock.now();
        let ticket = desk
            .as_customer
            .tickets
            .clone()
            .create_ticket(pb::CreateTicketRequest {
                ticket: Some(pb::Ticket {
                    title: "Printer on fire".into(),
                    group_id: desk.group.id.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("customer creates")
            .into_inner()
            .ticket
            .expect("ticket");
        assert_eq!(ticket.sla_contact_group_id, gold.id);
        assert_eq!(ticket.severity, pb::Severity::Unspecified as i32);
        assert_eq!(ticket.applied_sla_policy_id, standard.id, "contract before organisation");
        assert_eq!(
            time(&ticket.first_response_due),
            Some(created + SignedDuration::from_hours(8))
        );

        // Only agents assess.
        let assess = |ticket: &pb::Ticket, severity: pb::Severity| pb::Ticket {
            id: ticket.id.clone(),
            etag: ticket.etag.clone(),
            severity: severity.into(),
            ..Default::default()
        };
        let denied = expect_code(
            update(&desk.as_customer, assess(&ticket, pb::Severity::Critical), &["severity"]).await,
            Code::PermissionDenied,
        );
        assert_eq!(reason(&denied).as_deref(), Some("STAFF_ONLY_FIELDS"));
        expect_invalid(
            update(&desk.as_agent, pb::Ticket { severity: 9, ..assess(&ticket, pb::Severity::Low) }, &["severity"]).await,
            "ticket.severity",
        );

        // Assessed critical: the critical level, deadlines recomputed from the creation.
        clock.advance(SignedDuration::from_mins(10));
        let critical = update(&desk.as_agent, assess(&ticket, pb::Severity::Critical), &["severity"])
            .await
            .expect("assess");
        assert_eq!(critical.severity, pb::Severity::Critical as i32);
        assert_eq!(critical.applied_sla_policy_id, fast.id);
        assert_eq!(
            time(&critical.first_response_due),
            Some(created + SignedDuration::from_hours(1))
        );
        // A severity without a level of its own: the default level again.
        let medium = update(&desk.as_agent, assess(&critical, pb::Severity::Medium), &["severity"])
            .await
            .expect("assess");
        assert_eq!(medium.applied_sla_policy_id, standard.id);
        // The ticket's own policy comes first.
        let own = update(
            &desk.as_agent,
            pb::Ticket {
                sla_policy_id: slow.id.clone(),
                ..assess(&medium, pb::Severity::Critical)
            },
            &["severity", "sla_policy_id"],
        )
        .await
        .expect("own policy");
        assert_eq!(own.applied_sla_policy_id, slow.id);
        let history: Vec<String> = server
            .tickets()
            .get_ticket_history(pb::GetTicketHistoryRequest {
                id: ticket.id.clone(),
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner()
            .entries
            .into_iter()
            .flat_map(|e| e.changes.into_iter().map(|c| c.field))
            .collect();
        assert!(history.iter().any(|f| f == "severity"), "{history:?}");

        // Without a contract: the organisation's policy; without that, the group's default.
        let elsewhere = server.organisation("contract-elsewhere", &[]).await;
        set_org_policy(&server, &elsewhere, &by_organisation).await;
        let member = server
            .customer(pb::Customer {
                email: "member@contract-elsewhere.example".into(),
                organisation_id: elsewhere.id.clone(),
                ..Default::default()
            })
            .await;
        let loner = server
            .customer(pb::Customer {
                email: "loner@contract.example".into(),
                ..Default::default()
            })
            .await;
        for customer in [&member, &loner] {
            server
                .grant(
                    pb::subject::Subject::CustomerId(customer.id.clone()),
                    &desk.group.id,
                    pb::PermissionLevel::Rw,
                    pb::GrantContext::Unspecified,
                )
                .await;
        }
        let of = |customer: &pb::Customer| pb::Ticket {
            customer_id: customer.id.clone(),
            ..desk.ticket("Without a contract")
        };
        let by_org = desk.create(of(&member)).await;
        assert_eq!(by_org.sla_contact_group_id, "");
        assert_eq!(by_org.applied_sla_policy_id, by_organisation.id);
        let by_default = desk.create(of(&loner)).await;
        assert_eq!(by_default.applied_sla_policy_id, by_group.id);

        // An invalid contact group applies its contract no more: the ticket's next change
        // falls back to the organisation's policy.
        let current = server
            .contact_groups()
            .get_contact_group(pb::GetContactGroupRequest {
                key: Some(pb::get_contact_group_request::Key::Id(gold.id.clone())),
            })
            .await
            .expect("gold")
            .into_inner()
            .contact_group
            .expect("gold");
        server
            .contact_groups()
            .update_contact_group(pb::UpdateContactGroupRequest {
                contact_group: Some(pb::ContactGroup {
                    id: gold.id.clone(),
                    etag: current.etag,
                    validity: pb::Validity::Invalid.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["validity".into()],
                }),
            })
            .await
            .expect("retire gold");
        let cleared = update(
            &desk.as_agent,
            pb::Ticket { sla_policy_id: String::new(), ..assess(&own, pb::Severity::Critical) },
            &["sla_policy_id"],
        )
        .await
        .expect("clear own policy");
        assert_eq!(cleared.applied_sla_policy_id, by_organisation.id);

        // A contract is checked: levels need a default, each severity once, known policies.
        for (contract, field) in [
            (
                pb::SlaContract {
                    default_sla_policy_id: String::new(),
                    levels: vec![pb::SlaLevel { severity: pb::Severity::Low.into(), sla_policy_id: slow.id.clone() }],
                },
                "contact_group.sla_contract.default_sla_policy_id",
            ),
            (
                pb::SlaContract {
                    default_sla_policy_id: standard.id.clone(),
                    levels: vec![
                        pb::SlaLevel { severity: pb::Severity::Low.into(), sla_policy_id: slow.id.clone() },
                        pb::SlaLevel { severity: pb::Severity::Low.into(), sla_policy_id: fast.id.clone() },
                    ],
                },
                "contact_group.sla_contract.levels[1].severity",
            ),
            (
                pb::SlaContract {
                    default_sla_policy_id: standard.id.clone(),
                    levels: vec![pb::SlaLevel { severity: pb::Severity::Unspecified.into(), sla_policy_id: slow.id.clone() }],
                },
                "contact_group.sla_contract.levels[0].severity",
            ),
            (
                pb::SlaContract {
                    default_sla_policy_id: uuid::Uuid::now_v7().to_string(),
                    levels: vec![],
                },
                "contact_group.sla_contract.default_sla_policy_id",
            ),
        ] {
            expect_invalid(
                server
                    .contact_groups()
                    .create_contact_group(pb::CreateContactGroupRequest {
                        contact_group: Some(pb::ContactGroup {
                            name: "Wrong contract".into(),
                            kind_id: kind.clone(),
                            sla_contract: Some(contract),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await,
                field,
            );
        }
    }
}

async fn set_default_area(
    server: &TestServer,
    group: Option<&pb::Group>,
) -> Result<pb::Settings, tonic::Status> {
    let settings = server
        .permissions()
        .get_settings(pb::GetSettingsRequest::default())
        .await?
        .into_inner()
        .settings
        .expect("settings");
    Ok(server
        .permissions()
        .update_settings(pb::UpdateSettingsRequest {
            settings: Some(pb::Settings {
                default_group_id: group.map(|g| g.id.clone()).unwrap_or_default(),
                ..settings
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["default_group_id".into()],
            }),
        })
        .await?
        .into_inner()
        .settings
        .expect("settings"))
}

async fn get_ticket(clients: &Clients, id: &str) -> Result<pb::Ticket, tonic::Status> {
    Ok(clients
        .tickets
        .clone()
        .get_ticket(pb::GetTicketRequest {
            key: Some(pb::get_ticket_request::Key::Id(id.into())),
        })
        .await?
        .into_inner()
        .ticket
        .expect("ticket"))
}

backend_tests! {
    // The seed: for each processing area, each contact group says who is responsible, so a
    // new request of a customer of that group goes to that person, optionally with a user
    // group that limits who sees the communication; a ticket without an area goes to the
    // default area.
    async fn a_new_ticket_goes_to_the_agent_responsible_for_its_area_and_only_the_reader_group_sees_it(server) {
        let desk = server.desk("areas").await;
        let readers = server.group("areas-key-accounts").await;
        let elsewhere = server.group("areas-elsewhere").await;
        let agent_with = |login: &'static str| {
            let server = &server;
            async move {
                let agent = server.agent(login, false).await;
                let clients = server.as_token(
                    &server
                        .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
                        .await,
                );
                (agent, clients)
            }
        };
        let (specialist, as_specialist) = agent_with("areas-specialist").await;
        for (group, level) in [(&desk.group, pb::PermissionLevel::Rw), (&readers, pb::PermissionLevel::Ro)] {
            server
                .grant(
                    pb::subject::Subject::AgentId(specialist.id.clone()),
                    &group.id,
                    level,
                    pb::GrantContext::Unspecified,
                )
                .await;
        }
        server
            .grant(
                pb::subject::Subject::OrganisationId(desk.organisation.id.clone()),
                &elsewhere.id,
                pb::PermissionLevel::Rw,
                pb::GrantContext::SameOrganisation,
            )
            .await;
        let key_accounts = server
            .contact_groups()
            .create_contact_group(pb::CreateContactGroupRequest {
                contact_group: Some(pb::ContactGroup {
                    name: "Key accounts".into(),
                    kind_id: kind_id(&server, "Customers").await,
                    responsibilities: vec![pb::Responsibility {
                        group_id: desk.group.id.clone(),
                        agent_id: specialist.id.clone(),
                        reader_group_id: readers.id.clone(),
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("contact group")
            .into_inner()
            .contact_group
            .expect("contact group");
        join(&server, &key_accounts, &[], &[&desk.organisation]).await;

        // Without a default area, a group is required.
        let without_group = pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                title: "Where does this go?".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        expect_invalid(
            desk.as_customer.tickets.clone().create_ticket(without_group.clone()).await,
            "ticket.group_id",
        );
        expect_invalid(set_default_area(&server, Some(&pb::Group { id: uuid::Uuid::now_v7().to_string(), ..Default::default() })).await, "settings.default_group_id");
        set_default_area(&server, Some(&desk.group)).await.expect("default area");

        // The customer's request without an area: the default area, the responsible agent,
        // and only the readers of the key-account group see it.
        let ticket = desk
            .as_customer
            .tickets
            .clone()
            .create_ticket(without_group)
            .await
            .expect("create without group")
            .into_inner()
            .ticket
            .expect("ticket");
        assert_eq!(ticket.group_id, desk.group.id);
        assert_eq!(ticket.assignee_id, specialist.id);
        assert_eq!(ticket.reader_group_id, readers.id);
        get_ticket(&as_specialist, &ticket.id).await.expect("the specialist reads it");
        get_ticket(&desk.as_customer, &ticket.id).await.expect("its customer reads it");
        get_ticket(&server.as_token(&server.admin_secret), &ticket.id).await.expect("admins read it");
        expect_code(get_ticket(&desk.as_agent, &ticket.id).await, Code::NotFound);
        let comment = desk
            .as_customer
            .comments
            .clone()
            .create_comment(pb::CreateCommentRequest {
                comment: Some(pb::Comment {
                    parent: Some(pb::CommentParent {
                        parent: Some(pb::comment_parent::Parent::TicketId(ticket.id.clone())),
                    }),
                    body: "Confidential".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("comment")
            .into_inner()
            .comment
            .expect("comment");
        expect_code(
            desk.as_agent
                .comments
                .clone()
                .get_comment(pb::GetCommentRequest { id: comment.id.clone() })
                .await,
            Code::NotFound,
        );
        as_specialist
            .comments
            .clone()
            .get_comment(pb::GetCommentRequest { id: comment.id.clone() })
            .await
            .expect("the specialist reads the communication");
        let check = |agent: &pb::Agent| pb::CheckPermissionRequest {
            principal: Some(pb::Principal {
                principal: Some(pb::principal::Principal::AgentId(agent.id.clone())),
            }),
            level: pb::PermissionLevel::Ro.into(),
            resource: Some(pb::Resource {
                resource: Some(pb::resource::Resource::TicketId(ticket.id.clone())),
            }),
        };
        let answer = server
            .permissions()
            .check_permission(check(&desk.agent))
            .await
            .expect("check")
            .into_inner();
        assert_eq!(
            (answer.allowed, answer.reason()),
            (false, pb::PermissionReason::ReaderGroup)
        );
        let answer = server
            .permissions()
            .check_permission(check(&specialist))
            .await
            .expect("check")
            .into_inner();
        assert!(answer.allowed);

        // Another area has no responsibility: the usual routing, no reader group.
        let other_area = desk
            .as_customer
            .tickets
            .clone()
            .create_ticket(pb::CreateTicketRequest {
                ticket: Some(pb::Ticket {
                    title: "Elsewhere".into(),
                    group_id: elsewhere.id.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("other area")
            .into_inner()
            .ticket
            .expect("ticket");
        assert_eq!(other_area.reader_group_id, "");
        assert_eq!(other_area.assignee_id, "");
        // A customer outside the contact group: the area's own routing, readable by the
        // area's agents.
        let outsider = server
            .customer(pb::Customer {
                email: "outsider@areas-other.example".into(),
                ..Default::default()
            })
            .await;
        server
            .grant(
                pb::subject::Subject::CustomerId(outsider.id.clone()),
                &desk.group.id,
                pb::PermissionLevel::Rw,
                pb::GrantContext::Unspecified,
            )
            .await;
        let plain = desk
            .create(pb::Ticket {
                customer_id: outsider.id.clone(),
                ..desk.ticket("Plain")
            })
            .await;
        assert_eq!(plain.reader_group_id, "");
        assert_eq!(plain.assignee_id, "");
        get_ticket(&desk.as_agent, &plain.id).await.expect("the area's agents read it");
        // An explicit assignee comes first.
        let explicit = desk
            .create(pb::Ticket {
                assignee_id: desk.agent.id.clone(),
                ..desk.ticket("Explicit")
            })
            .await;
        assert_eq!(explicit.assignee_id, desk.agent.id);
        assert_eq!(explicit.reader_group_id, readers.id);

        // Responsibilities are checked: an area once, groups and agents that exist.
        for (responsibilities, field) in [
            (
                vec![
                    pb::Responsibility { group_id: desk.group.id.clone(), agent_id: specialist.id.clone(), reader_group_id: String::new() },
                    pb::Responsibility { group_id: desk.group.id.clone(), agent_id: desk.agent.id.clone(), reader_group_id: String::new() },
                ],
                "contact_group.responsibilities[1].group_id",
            ),
            (
                vec![pb::Responsibility { group_id: uuid::Uuid::now_v7().to_string(), agent_id: specialist.id.clone(), reader_group_id: String::new() }],
                "contact_group.responsibilities[0].group_id",
            ),
            (
                vec![pb::Responsibility { group_id: desk.group.id.clone(), agent_id: uuid::Uuid::now_v7().to_string(), reader_group_id: String::new() }],
                "contact_group.responsibilities[0].agent_id",
            ),
            (
                vec![pb::Responsibility { group_id: desk.group.id.clone(), agent_id: specialist.id.clone(), reader_group_id: "nope".into() }],
                "contact_group.responsibilities[0].reader_group_id",
            ),
        ] {
            expect_invalid(
                server
                    .contact_groups()
                    .create_contact_group(pb::CreateContactGroupRequest {
                        contact_group: Some(pb::ContactGroup {
                            name: "Wrong responsibility".into(),
                            kind_id: kind_id(&server, "Customers").await,
                            responsibilities,
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await,
                field,
            );
        }
        set_default_area(&server, None).await.expect("no default area");
    }
}
