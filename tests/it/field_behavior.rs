//! The server does what `google.api.field_behavior` says, read from the compiled contract:
//! every REQUIRED field of a resource, left out of a create, is INVALID_ARGUMENT naming it;
//! every OUTPUT_ONLY, IMMUTABLE or IDENTIFIER field, named in an update mask, is
//! INVALID_ARGUMENT naming the mask, and changes nothing. A field annotated later is covered
//! without a new test.

use std::future::Future;

use clientele::proto::v1 as pb;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Value};
use prost_types::FieldMask;

use crate::support::*;

/// The contract, as client generators and reflection read it.
fn pool() -> DescriptorPool {
    DescriptorPool::decode(clientele::proto::FILE_DESCRIPTOR_SET).expect("the descriptor set")
}

/// The fields of `message` (a full name) annotated with any of `behaviours`.
fn annotated(message: &str, behaviours: &[&str]) -> Vec<FieldDescriptor> {
    let pool = pool();
    let extension = pool
        .get_extension_by_name("google.api.field_behavior")
        .expect("field_behavior is compiled in");
    let behaviour = pool
        .get_enum_by_name("google.api.FieldBehavior")
        .expect("FieldBehavior");
    let wanted: Vec<i32> = behaviours
        .iter()
        .map(|name| {
            behaviour
                .get_value_by_name(name)
                .expect("a behaviour")
                .number()
        })
        .collect();
    pool.get_message_by_name(message)
        .unwrap_or_else(|| panic!("{message} is in the contract"))
        .fields()
        .filter(|field| {
            let options = field.options();
            match options.get_extension(&extension).as_ref() {
                Value::List(values) => values
                    .iter()
                    .any(|value| value.as_enum_number().is_some_and(|n| wanted.contains(&n))),
                _ => false,
            }
        })
        .collect()
}

/// `message` without `field`, as a client that leaves it out sends it.
fn without<M: Message + Default>(message: &M, field: &FieldDescriptor) -> M {
    let mut dynamic = DynamicMessage::decode(
        field.parent_message().clone(),
        message.encode_to_vec().as_slice(),
    )
    .expect("the message decodes");
    dynamic.clear_field(field);
    M::decode(dynamic.encode_to_vec().as_slice()).expect("the message re-decodes")
}

/// Creates `valid` without each of its REQUIRED fields: each is refused naming
/// `resource.field`, and the database keeps its row counts.
async fn each_required_field_is_required<M, F, Fut, T>(
    server: &TestServer,
    message: &str,
    resource: &str,
    valid: &M,
    create: F,
) where
    M: Message + Default + Clone,
    F: Fn(M) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
    T: std::fmt::Debug,
{
    let required = annotated(message, &["REQUIRED"]);
    assert!(!required.is_empty(), "{message} has required fields");
    for field in required {
        let before = server.snapshot().await;
        let refused = create(without(valid, &field)).await;
        expect_invalid(refused, &format!("{resource}.{}", field.name()));
        assert_eq!(
            server.snapshot().await,
            before,
            "{message}.{}",
            field.name()
        );
    }
}

/// Updates naming each OUTPUT_ONLY, IMMUTABLE or IDENTIFIER field of `message` in the mask:
/// each is refused naming the mask.
async fn each_fixed_field_is_refused_in_a_mask<F, Fut, T>(message: &str, update: F)
where
    F: Fn(FieldMask) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
    T: std::fmt::Debug,
{
    let fixed = annotated(message, &["OUTPUT_ONLY", "IMMUTABLE", "IDENTIFIER"]);
    assert!(
        !fixed.is_empty(),
        "{message} has fields a client cannot change"
    );
    for field in fixed {
        let mask = FieldMask {
            paths: vec![field.name().to_owned()],
        };
        let refused = update(mask).await;
        expect_invalid(refused, "update_mask.paths[0]");
    }
}

backend_tests! {
    async fn every_required_field_of_a_resource_is_required_on_create(server) {
        let desk = server.desk("required").await;
        let organisations = server.organisations();
        let organisation = pb::Organisation { code: "REQ".into(), name: "Required".into(), country: "DE".into(), ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.Organisation", "organisation", &organisation, |organisation| {
            let mut client = organisations.clone();
            async move { client.create_organisation(pb::CreateOrganisationRequest { organisation: Some(organisation), request_id: String::new() }).await }
        }).await;
        let customers = server.customers();
        let customer = pb::Customer { email: "required@example.com".into(), ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.Customer", "customer", &customer, |customer| {
            let mut client = customers.clone();
            async move { client.create_customer(pb::CreateCustomerRequest { customer: Some(customer), request_id: String::new() }).await }
        }).await;
        let groups = server.groups();
        let group = pb::Group { name: "Required".into(), ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.Group", "group", &group, |group| {
            let mut client = groups.clone();
            async move { client.create_group(pb::CreateGroupRequest { group: Some(group), request_id: String::new() }).await }
        }).await;
        let agents = server.agents();
        let agent = pb::Agent { login: "required".into(), ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.Agent", "agent", &agent, |agent| {
            let mut client = agents.clone();
            async move { client.create_agent(pb::CreateAgentRequest { agent: Some(agent), request_id: String::new() }).await }
        }).await;
        let slas = server.slas();
        let calendar = pb::Calendar {
            name: "Required".into(),
            time_zone: "Europe/Berlin".into(),
            hours: vec![pb::DayHours {
                weekday: clientele::proto::google::r#type::DayOfWeek::Monday.into(),
                ranges: vec![pb::TimeRange { start: Some(desk::clock("09:00")), end: Some(desk::clock("17:00")) }],
            }],
            ..Default::default()
        };
        each_required_field_is_required(&server, "clientele.v1.Calendar", "calendar", &calendar, |calendar| {
            let mut client = slas.clone();
            async move { client.create_calendar(pb::CreateCalendarRequest { calendar: Some(calendar), request_id: String::new() }).await }
        }).await;
        let policy = pb::SlaPolicy { name: "Required".into(), ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.SlaPolicy", "sla_policy", &policy, |policy| {
            let mut client = slas.clone();
            async move { client.create_sla_policy(pb::CreateSlaPolicyRequest { sla_policy: Some(policy), request_id: String::new() }).await }
        }).await;
        let tickets = desk.as_agent.tickets.clone();
        each_required_field_is_required(&server, "clientele.v1.Ticket", "ticket", &desk.ticket("Required"), |ticket| {
            let mut client = tickets.clone();
            async move { client.create_ticket(pb::CreateTicketRequest { ticket: Some(ticket), request_id: String::new() }).await }
        }).await;
        let ticket = desk.create(desk.ticket("On which to comment")).await;
        let comment = pb::Comment {
            parent: Some(pb::CommentParent { parent: Some(pb::comment_parent::Parent::TicketId(ticket.id)) }),
            body: "Required".into(),
            ..Default::default()
        };
        let comments = desk.as_agent.comments.clone();
        each_required_field_is_required(&server, "clientele.v1.Comment", "comment", &comment, |comment| {
            let mut client = comments.clone();
            async move { client.create_comment(pb::CreateCommentRequest { comment: Some(comment), request_id: String::new() }).await }
        }).await;
        let contact_groups = server.contact_groups();
        let kind = pb::ContactGroupKind { name: "Required".into(), ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.ContactGroupKind", "contact_group_kind", &kind, |kind| {
            let mut client = contact_groups.clone();
            async move { client.create_contact_group_kind(pb::CreateContactGroupKindRequest { contact_group_kind: Some(kind), request_id: String::new() }).await }
        }).await;
        let kind_id = crate::contact_groups::kind_id(&server, "Customers").await;
        let contact_group = pb::ContactGroup { name: "Required".into(), kind_id, ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.ContactGroup", "contact_group", &contact_group, |contact_group| {
            let mut client = contact_groups.clone();
            async move { client.create_contact_group(pb::CreateContactGroupRequest { contact_group: Some(contact_group), request_id: String::new() }).await }
        }).await;
        let price_lists = server.price_lists();
        let list = pb::PriceList {
            name: "Required".into(),
            currency: "EUR".into(),
            items: vec![pb::PriceItem { item_code: "A".into(), name: String::new(), unit_price: "1".into() }],
            ..Default::default()
        };
        each_required_field_is_required(&server, "clientele.v1.PriceList", "price_list", &list, |list| {
            let mut client = price_lists.clone();
            async move { client.create_price_list(pb::CreatePriceListRequest { price_list: Some(list), request_id: String::new() }).await }
        }).await;
        let catalogue = server.catalogue();
        let customer_type = pb::CustomerType { name: "Required".into(), ..Default::default() };
        each_required_field_is_required(&server, "clientele.v1.CustomerType", "customer_type", &customer_type, |customer_type| {
            let mut client = catalogue.clone();
            async move { client.create_customer_type(pb::CreateCustomerTypeRequest { customer_type: Some(customer_type), request_id: String::new() }).await }
        }).await;
        let definition = pb::FieldDefinition {
            record_type: pb::RecordType::Organisation.into(),
            key: "required".into(),
            value_type: pb::FieldValueType::Text.into(),
            ..Default::default()
        };
        each_required_field_is_required(&server, "clientele.v1.FieldDefinition", "field_definition", &definition, |definition| {
            let mut client = catalogue.clone();
            async move { client.create_field_definition(pb::CreateFieldDefinitionRequest { field_definition: Some(definition), request_id: String::new() }).await }
        }).await;
        let grant = pb::Grant {
            subject: Some(pb::Subject { subject: Some(pb::subject::Subject::AgentId(desk.agent.id.clone())) }),
            group_id: desk.group.id.clone(),
            level: pb::PermissionLevel::Ro.into(),
            ..Default::default()
        };
        let permissions = server.permissions();
        each_required_field_is_required(&server, "clientele.v1.Grant", "grant", &grant, |grant| {
            let mut client = permissions.clone();
            async move { client.set_permission(pb::SetPermissionRequest { grant: Some(grant) }).await }
        }).await;
    }

    async fn no_output_only_immutable_or_identifying_field_can_be_updated(server) {
        let desk = server.desk("fixed").await;
        let organisation = server.organisations().get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Id(desk.organisation.id.clone())) }).await.expect("read").into_inner().organisation;
        let client = server.organisations();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.Organisation", |mask| {
            let (mut client, organisation) = (client.clone(), organisation.clone());
            async move { client.update_organisation(pb::UpdateOrganisationRequest { organisation, update_mask: Some(mask) }).await }
        }).await;
        let customer = server.customers().get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Id(desk.customer.id.clone())) }).await.expect("read").into_inner().customer;
        let client = server.customers();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.Customer", |mask| {
            let (mut client, customer) = (client.clone(), customer.clone());
            async move { client.update_customer(pb::UpdateCustomerRequest { customer, update_mask: Some(mask) }).await }
        }).await;
        let client = server.groups();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.Group", |mask| {
            let (mut client, group) = (client.clone(), desk.group.clone());
            async move { client.update_group(pb::UpdateGroupRequest { group: Some(group), update_mask: Some(mask) }).await }
        }).await;
        let client = server.agents();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.Agent", |mask| {
            let (mut client, agent) = (client.clone(), desk.agent.clone());
            async move { client.update_agent(pb::UpdateAgentRequest { agent: Some(agent), update_mask: Some(mask) }).await }
        }).await;
        let calendar = server.office_calendar("Fixed", "Europe/Berlin", &[]).await;
        let client = server.slas();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.Calendar", |mask| {
            let (mut client, calendar) = (client.clone(), calendar.clone());
            async move { client.update_calendar(pb::UpdateCalendarRequest { calendar: Some(calendar), update_mask: Some(mask) }).await }
        }).await;
        let policy = server.policy("Fixed", None, None, None, 0, "").await;
        each_fixed_field_is_refused_in_a_mask("clientele.v1.SlaPolicy", |mask| {
            let (mut client, policy) = (client.clone(), policy.clone());
            async move { client.update_sla_policy(pb::UpdateSlaPolicyRequest { sla_policy: Some(policy), update_mask: Some(mask) }).await }
        }).await;
        let ticket = desk.create(desk.ticket("Fixed")).await;
        let client = desk.as_agent.tickets.clone();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.Ticket", |mask| {
            let (mut client, ticket) = (client.clone(), ticket.clone());
            async move { client.update_ticket(pb::UpdateTicketRequest { ticket: Some(ticket), update_mask: Some(mask) }).await }
        }).await;
        let settings = server.permissions().get_settings(pb::GetSettingsRequest::default()).await.expect("settings").into_inner().settings;
        let client = server.permissions();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.Settings", |mask| {
            let (mut client, settings) = (client.clone(), settings.clone());
            async move { client.update_settings(pb::UpdateSettingsRequest { settings, update_mask: Some(mask) }).await }
        }).await;
        let kind = server.contact_groups().list_contact_group_kinds(pb::ListContactGroupKindsRequest::default()).await.expect("kinds").into_inner().contact_group_kinds.remove(0);
        let client = server.contact_groups();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.ContactGroupKind", |mask| {
            let (mut client, kind) = (client.clone(), kind.clone());
            async move { client.update_contact_group_kind(pb::UpdateContactGroupKindRequest { contact_group_kind: Some(kind), update_mask: Some(mask) }).await }
        }).await;
        let contact_group = crate::contact_groups::contact_group(&server, "Fixed", "Customers", &[]).await;
        each_fixed_field_is_refused_in_a_mask("clientele.v1.ContactGroup", |mask| {
            let (mut client, contact_group) = (client.clone(), contact_group.clone());
            async move { client.update_contact_group(pb::UpdateContactGroupRequest { contact_group: Some(contact_group), update_mask: Some(mask) }).await }
        }).await;
        let list = crate::contact_groups::price_list(&server, "Fixed", "EUR", &[]).await;
        let client = server.price_lists();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.PriceList", |mask| {
            let (mut client, list) = (client.clone(), list.clone());
            async move { client.update_price_list(pb::UpdatePriceListRequest { price_list: Some(list), update_mask: Some(mask) }).await }
        }).await;
        let customer_type = server.catalogue().create_customer_type(pb::CreateCustomerTypeRequest { customer_type: Some(pb::CustomerType { name: "Fixed".into(), ..Default::default() }), request_id: String::new() }).await.expect("type").into_inner().customer_type;
        let client = server.catalogue();
        each_fixed_field_is_refused_in_a_mask("clientele.v1.CustomerType", |mask| {
            let (mut client, customer_type) = (client.clone(), customer_type.clone());
            async move { client.update_customer_type(pb::UpdateCustomerTypeRequest { customer_type, update_mask: Some(mask) }).await }
        }).await;
        let definition = server.catalogue().create_field_definition(pb::CreateFieldDefinitionRequest { field_definition: Some(pb::FieldDefinition { record_type: pb::RecordType::Organisation.into(), key: "fixed".into(), value_type: pb::FieldValueType::Text.into(), ..Default::default() }), request_id: String::new() }).await.expect("definition").into_inner().field_definition;
        each_fixed_field_is_refused_in_a_mask("clientele.v1.FieldDefinition", |mask| {
            let (mut client, definition) = (client.clone(), definition.clone());
            async move { client.update_field_definition(pb::UpdateFieldDefinitionRequest { field_definition: definition, update_mask: Some(mask) }).await }
        }).await;
        assert_eq!(desk::ticket(&server, &ticket.id).await, ticket, "the ticket is as it was");
        let now = server.organisations().get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Id(desk.organisation.id.clone())) }).await.expect("read").into_inner().organisation;
        assert_eq!(now, organisation, "the organisation is as it was");
    }
}
