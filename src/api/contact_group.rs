//! `clientele.v1.ContactGroupService`.

use tonic::{Request, Response, Status};

use super::{
    admin, both, parse_id, parse_ids, parse_optional_id, scope, staff, timestamp,
    validity_from_proto, validity_to_proto, writer,
};
use crate::{
    domain::{
        ContactGroups,
        contact_group::{
            ContactGroupField, ContactGroupInput, ContactGroupKey, KindField, KindInput,
        },
    },
    error::{Error, Result},
    model::{
        Contact, ContactGroup, ContactGroupKind, ContactGroupMember, ContactGroupMembership,
        PriceListAssignment, Responsibility,
    },
    proto::v1::{self as pb, contact_group_service_server::ContactGroupService},
};

/// The gRPC face of [`ContactGroups`].
#[derive(Clone, Debug)]
pub struct ContactGroupApi {
    contact_groups: ContactGroups,
}

impl ContactGroupApi {
    /// Serves `contact_groups`.
    pub fn new(contact_groups: ContactGroups) -> Self {
        Self { contact_groups }
    }
}

#[tonic::async_trait]
impl ContactGroupService for ContactGroupApi {
    async fn create_contact_group_kind(
        &self,
        request: Request<pb::CreateContactGroupKindRequest>,
    ) -> Result<Response<pb::CreateContactGroupKindResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let within = |e: Error| e.within("contact_group_kind");
        let input = kind_input(request.contact_group_kind.unwrap_or_default()).map_err(within)?;
        let kind = self
            .contact_groups
            .create_kind(&admin, &input, request_id)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::CreateContactGroupKindResponse {
            contact_group_kind: Some(kind_to_proto(kind)),
        }))
    }

    async fn update_contact_group_kind(
        &self,
        request: Request<pb::UpdateContactGroupKindRequest>,
    ) -> Result<Response<pb::UpdateContactGroupKindResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields =
            KindField::from_mask(&request.update_mask.map(|m| m.paths).unwrap_or_default())?;
        let kind = request.contact_group_kind.unwrap_or_default();
        let id = parse_id("contact_group_kind.id", &kind.id)?;
        let etag = kind.etag.clone();
        let within = |e: Error| e.within("contact_group_kind");
        let input = kind_input(kind).map_err(within)?;
        let kind = self
            .contact_groups
            .update_kind(&admin, id, &etag, &fields, &input)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::UpdateContactGroupKindResponse {
            contact_group_kind: Some(kind_to_proto(kind)),
        }))
    }

    async fn list_contact_group_kinds(
        &self,
        request: Request<pb::ListContactGroupKindsRequest>,
    ) -> Result<Response<pb::ListContactGroupKindsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .contact_groups
            .list_kinds(
                &reader,
                request.include_invalid,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListContactGroupKindsResponse {
            contact_group_kinds: page.items.into_iter().map(kind_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_contact_group(
        &self,
        request: Request<pb::CreateContactGroupRequest>,
    ) -> Result<Response<pb::CreateContactGroupResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let within = |e: Error| e.within("contact_group");
        let input = input(request.contact_group.unwrap_or_default()).map_err(within)?;
        let group = self
            .contact_groups
            .create(&admin, &input, request_id)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::CreateContactGroupResponse {
            contact_group: Some(to_proto(group)),
        }))
    }

    async fn get_contact_group(
        &self,
        request: Request<pb::GetContactGroupRequest>,
    ) -> Result<Response<pb::GetContactGroupResponse>, Status> {
        let reader = staff(&request)?;
        let key = match request.into_inner().key {
            Some(pb::get_contact_group_request::Key::Id(id)) => {
                ContactGroupKey::Id(parse_id("id", &id)?)
            }
            Some(pb::get_contact_group_request::Key::Name(name)) if !name.is_empty() => {
                ContactGroupKey::Name(name)
            }
            _ => return Err(Error::invalid("key", "give an id or a name").into()),
        };
        let group = self.contact_groups.get(&reader, &key).await?;
        Ok(Response::new(pb::GetContactGroupResponse {
            contact_group: Some(to_proto(group)),
        }))
    }

    async fn update_contact_group(
        &self,
        request: Request<pb::UpdateContactGroupRequest>,
    ) -> Result<Response<pb::UpdateContactGroupResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields = ContactGroupField::from_mask(
            &request.update_mask.map(|m| m.paths).unwrap_or_default(),
        )?;
        let group = request.contact_group.unwrap_or_default();
        let id = parse_id("contact_group.id", &group.id)?;
        let etag = group.etag.clone();
        let within = |e: Error| e.within("contact_group");
        // An update that leaves the kind alone need not send it.
        let input = input(group).map_err(within)?;
        let group = self
            .contact_groups
            .update(&admin, id, &etag, &fields, &input)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::UpdateContactGroupResponse {
            contact_group: Some(to_proto(group)),
        }))
    }

    async fn list_contact_groups(
        &self,
        request: Request<pb::ListContactGroupsRequest>,
    ) -> Result<Response<pb::ListContactGroupsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let kind = parse_optional_id("kind_id", &request.kind_id)?;
        let page = self
            .contact_groups
            .list(
                &reader,
                request.include_invalid,
                kind,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListContactGroupsResponse {
            contact_groups: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn add_contact_group_members(
        &self,
        request: Request<pb::AddContactGroupMembersRequest>,
    ) -> Result<Response<pb::AddContactGroupMembersResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let (group, contacts) = members(
            &request.contact_group_id,
            &request.customer_ids,
            &request.organisation_ids,
        )?;
        let added = self
            .contact_groups
            .add_members(&writer, group, &contacts)
            .await?;
        Ok(Response::new(pb::AddContactGroupMembersResponse {
            members_added: i64::try_from(added).unwrap_or(i64::MAX),
        }))
    }

    async fn remove_contact_group_members(
        &self,
        request: Request<pb::RemoveContactGroupMembersRequest>,
    ) -> Result<Response<pb::RemoveContactGroupMembersResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let (group, contacts) = members(
            &request.contact_group_id,
            &request.customer_ids,
            &request.organisation_ids,
        )?;
        let removed = self
            .contact_groups
            .remove_members(&writer, group, &contacts)
            .await?;
        Ok(Response::new(pb::RemoveContactGroupMembersResponse {
            members_removed: i64::try_from(removed).unwrap_or(i64::MAX),
        }))
    }

    async fn list_contact_group_members(
        &self,
        request: Request<pb::ListContactGroupMembersRequest>,
    ) -> Result<Response<pb::ListContactGroupMembersResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let id = parse_id("contact_group_id", &request.contact_group_id)?;
        let page = self
            .contact_groups
            .list_members(&reader, id, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListContactGroupMembersResponse {
            members: page.items.into_iter().map(member_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn list_contact_group_memberships(
        &self,
        request: Request<pb::ListContactGroupMembershipsRequest>,
    ) -> Result<Response<pb::ListContactGroupMembershipsResponse>, Status> {
        let reader = staff(&request)?;
        let scope = scope(&request)?;
        let request = request.into_inner();
        use pb::list_contact_group_memberships_request::Member;
        let contact = match request.member {
            Some(Member::CustomerId(id)) => Contact::Customer(parse_id("customer_id", &id)?),
            Some(Member::OrganisationId(id)) => {
                Contact::Organisation(parse_id("organisation_id", &id)?)
            }
            None => {
                return Err(
                    Error::invalid("member", "give a customer_id or an organisation_id").into(),
                );
            }
        };
        let memberships = self
            .contact_groups
            .memberships(&reader, &scope, contact, request.include_invalid)
            .await?;
        Ok(Response::new(pb::ListContactGroupMembershipsResponse {
            memberships: memberships.into_iter().map(membership_to_proto).collect(),
        }))
    }
}

/// The contact group and the contacts of an add or remove request.
fn members(
    group: &str,
    customers: &[String],
    organisations: &[String],
) -> Result<(uuid::Uuid, Vec<Contact>)> {
    let (group, (customers, organisations)) = both(
        parse_id("contact_group_id", group),
        both(
            parse_ids("customer_ids", customers),
            parse_ids("organisation_ids", organisations),
        ),
    )?;
    let contacts = customers
        .into_iter()
        .map(Contact::Customer)
        .chain(organisations.into_iter().map(Contact::Organisation))
        .collect();
    Ok((group, contacts))
}

fn kind_input(kind: pb::ContactGroupKind) -> Result<KindInput> {
    Ok(KindInput {
        validity: validity_from_proto("validity", kind.validity)?,
        name: kind.name,
        comment: kind.comment,
    })
}

fn kind_to_proto(kind: ContactGroupKind) -> pb::ContactGroupKind {
    pb::ContactGroupKind {
        etag: kind.etag(),
        id: kind.id.to_string(),
        name: kind.name,
        comment: kind.comment,
        validity: validity_to_proto(kind.validity),
        create_time: Some(timestamp(kind.create_time)),
        update_time: Some(timestamp(kind.update_time)),
    }
}

fn input(group: pb::ContactGroup) -> Result<ContactGroupInput> {
    let mut violations = Vec::new();
    let mut price_lists = Vec::with_capacity(group.price_list_assignments.len());
    for (index, assignment) in group.price_list_assignments.iter().enumerate() {
        match parse_id(
            &format!("price_list_assignments[{index}].price_list_id"),
            &assignment.price_list_id,
        ) {
            Ok(price_list_id) => price_lists.push(PriceListAssignment {
                price_list_id,
                precedence: assignment.precedence,
            }),
            Err(Error::InvalidArgument { violations: v, .. }) => violations.extend(v),
            Err(other) => return Err(other),
        }
    }
    let (kind_id, validity) = both(
        parse_optional_id("kind_id", &group.kind_id),
        validity_from_proto("validity", group.validity),
    )?;
    let contract = group.sla_contract.unwrap_or_default();
    let sla_default_policy = match parse_optional_id(
        "sla_contract.default_sla_policy_id",
        &contract.default_sla_policy_id,
    ) {
        Ok(policy) => policy,
        Err(Error::InvalidArgument { violations: v, .. }) => {
            violations.extend(v);
            None
        }
        Err(other) => return Err(other),
    };
    let mut sla_levels = Vec::with_capacity(contract.levels.len());
    for (index, level) in contract.levels.iter().enumerate() {
        let severity = super::severity_from_proto(
            &format!("sla_contract.levels[{index}].severity"),
            level.severity,
        );
        let policy = parse_id(
            &format!("sla_contract.levels[{index}].sla_policy_id"),
            &level.sla_policy_id,
        );
        match both(severity, policy) {
            Ok((severity, policy)) => sla_levels.push((severity, policy)),
            Err(Error::InvalidArgument { violations: v, .. }) => violations.extend(v),
            Err(other) => return Err(other),
        }
    }
    let mut responsibilities = Vec::with_capacity(group.responsibilities.len());
    for (index, responsibility) in group.responsibilities.iter().enumerate() {
        let field = |part: &str| format!("responsibilities[{index}].{part}");
        let parsed = both(
            parse_id(&field("group_id"), &responsibility.group_id),
            both(
                parse_id(&field("agent_id"), &responsibility.agent_id),
                parse_optional_id(&field("reader_group_id"), &responsibility.reader_group_id),
            ),
        );
        match parsed {
            Ok((group_id, (agent_id, reader_group_id))) => responsibilities.push(Responsibility {
                group_id,
                agent_id,
                reader_group_id,
            }),
            Err(Error::InvalidArgument { violations: v, .. }) => violations.extend(v),
            Err(other) => return Err(other),
        }
    }
    Error::check(violations)?;
    Ok(ContactGroupInput {
        name: group.name,
        kind_id,
        comment: group.comment,
        validity,
        price_lists,
        sla_default_policy,
        sla_levels,
        responsibilities,
    })
}

pub(crate) fn to_proto(group: ContactGroup) -> pb::ContactGroup {
    pb::ContactGroup {
        etag: group.etag(),
        id: group.id.to_string(),
        name: group.name,
        kind_id: group.kind_id.to_string(),
        comment: group.comment,
        validity: validity_to_proto(group.validity),
        price_list_assignments: group
            .price_lists
            .into_iter()
            .map(|assignment| pb::PriceListAssignment {
                price_list_id: assignment.price_list_id.to_string(),
                precedence: assignment.precedence,
            })
            .collect(),
        sla_contract: group.sla.is_set().then(|| pb::SlaContract {
            default_sla_policy_id: super::optional_id(group.sla.default_policy),
            levels: group
                .sla
                .levels
                .iter()
                .map(|(severity, policy)| pb::SlaLevel {
                    severity: super::severity_to_proto(Some(*severity)),
                    sla_policy_id: policy.to_string(),
                })
                .collect(),
        }),
        responsibilities: group
            .responsibilities
            .iter()
            .map(|responsibility| pb::Responsibility {
                group_id: responsibility.group_id.to_string(),
                agent_id: responsibility.agent_id.to_string(),
                reader_group_id: super::optional_id(responsibility.reader_group_id),
            })
            .collect(),
        create_time: Some(timestamp(group.create_time)),
        update_time: Some(timestamp(group.update_time)),
    }
}

fn member_to_proto(member: ContactGroupMember) -> pb::ContactGroupMember {
    use pb::contact_group_member::Member;
    pb::ContactGroupMember {
        member: Some(match member.contact {
            Contact::Customer(id) => Member::CustomerId(id.to_string()),
            Contact::Organisation(id) => Member::OrganisationId(id.to_string()),
        }),
        create_time: Some(timestamp(member.create_time)),
    }
}

fn membership_to_proto(membership: ContactGroupMembership) -> pb::ContactGroupMembership {
    pb::ContactGroupMembership {
        contact_group: Some(to_proto(membership.contact_group)),
        via_organisation_id: super::optional_id(membership.via_organisation_id),
    }
}
