//! Contact groups (AyMINE): a catalogue of kinds, customers and organisations classified into
//! groups (a customer also in those of its organisations), price lists applied to groups by
//! precedence, and the prices that apply to one customer.

use clientele::proto::v1 as pb;
use tonic::Code;

use crate::support::*;

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
                    "price_list_assignments".into()
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
