//! `clientele.v1.GroupService`.

use tonic::{Request, Response, Status};

use super::{
    admin, both, optional_id, parse_id, parse_optional_id, staff, timestamp, validity_from_proto,
    validity_to_proto,
};
use crate::{
    domain::{
        Groups,
        group::{GroupField, GroupInput, GroupKey},
    },
    error::{Error, Result},
    model::Group,
    proto::v1::{self as pb, group_service_server::GroupService},
};

/// The gRPC face of [`Groups`].
#[derive(Clone, Debug)]
pub struct GroupApi {
    groups: Groups,
}

impl GroupApi {
    /// Serves `groups`.
    pub fn new(groups: Groups) -> Self {
        Self { groups }
    }
}

#[tonic::async_trait]
impl GroupService for GroupApi {
    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::CreateGroupResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let input = input(request.group.unwrap_or_default()).map_err(|e| e.within("group"))?;
        let group = self
            .groups
            .create(&admin, &input, request_id)
            .await
            .map_err(|e| e.within("group"))?;
        Ok(Response::new(pb::CreateGroupResponse {
            group: Some(to_proto(group)),
        }))
    }

    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GetGroupResponse>, Status> {
        let reader = staff(&request)?;
        let key = match request.into_inner().key {
            Some(pb::get_group_request::Key::Id(id)) => GroupKey::Id(parse_id("id", &id)?),
            Some(pb::get_group_request::Key::Name(name)) if !name.is_empty() => {
                GroupKey::Name(name)
            }
            _ => return Err(Error::invalid("key", "give an id or a name").into()),
        };
        let group = self.groups.get(&reader, &key).await?;
        Ok(Response::new(pb::GetGroupResponse {
            group: Some(to_proto(group)),
        }))
    }

    async fn update_group(
        &self,
        request: Request<pb::UpdateGroupRequest>,
    ) -> Result<Response<pb::UpdateGroupResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields =
            GroupField::from_mask(&request.update_mask.map(|m| m.paths).unwrap_or_default())?;
        let group = request.group.unwrap_or_default();
        let id = parse_id("group.id", &group.id)?;
        let etag = group.etag.clone();
        let input = input(group).map_err(|e| e.within("group"))?;
        let group = self
            .groups
            .update(&admin, id, &etag, &fields, &input)
            .await
            .map_err(|e| e.within("group"))?;
        Ok(Response::new(pb::UpdateGroupResponse {
            group: Some(to_proto(group)),
        }))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .groups
            .list(
                &reader,
                request.include_invalid,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListGroupsResponse {
            groups: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn input(group: pb::Group) -> Result<GroupInput> {
    let (responsible_agent_id, default_sla_policy_id) = both(
        parse_optional_id("responsible_agent_id", &group.responsible_agent_id),
        parse_optional_id("default_sla_policy_id", &group.default_sla_policy_id),
    )?;
    Ok(GroupInput {
        validity: validity_from_proto("validity", group.validity)?,
        responsible_agent_id,
        default_sla_policy_id,
        name: group.name,
        comment: group.comment,
    })
}

fn to_proto(group: Group) -> pb::Group {
    pb::Group {
        etag: group.etag(),
        id: group.id.to_string(),
        name: group.name,
        comment: group.comment,
        validity: validity_to_proto(group.validity),
        responsible_agent_id: group
            .responsible_agent_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        default_sla_policy_id: optional_id(group.default_sla_policy_id),
        create_time: Some(timestamp(group.create_time)),
        update_time: Some(timestamp(group.update_time)),
    }
}
