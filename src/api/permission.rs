//! `clientele.v1.PermissionService`: settings, grants, and questions about rights.

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{admin, parse_id, parse_ids, staff, timestamp};
use crate::{
    domain::{
        Permissions, SettingsRules,
        access::{Decision, Effective, Reason, Whose},
        permission::{Asked, GrantMode, Resource},
        rights::Administrator,
        settings::{SettingsField, SettingsInput},
    },
    error::{Error, Result},
    model::{Grant, GrantContext, GrantFilter, Level, Settings, Subject, SubjectKind},
    proto::v1::{self as pb, permission_service_server::PermissionService},
};

/// The gRPC face of [`SettingsRules`] and [`Permissions`].
#[derive(Clone, Debug)]
pub struct PermissionApi {
    settings: SettingsRules,
    permissions: Permissions,
}

impl PermissionApi {
    /// Serves `settings` and `permissions`.
    pub fn new(settings: SettingsRules, permissions: Permissions) -> Self {
        Self {
            settings,
            permissions,
        }
    }

    /// Grants or sets the level of `grant` as `mode` says; errors name fields within `grant`.
    async fn grant(
        &self,
        admin: &Administrator,
        grant: pb::Grant,
        mode: GrantMode,
    ) -> Result<(Grant, Option<Level>), Status> {
        let (subject, group_id, level, context) = (|| {
            let subject = subject(grant.subject.as_ref(), "subject")?;
            let group_id = parse_id("group_id", &grant.group_id)?;
            let level = match level_from_proto("level", grant.level)? {
                Some(level) => level,
                None => return Err(Error::invalid("level", "must be RO or RW")),
            };
            Ok((subject, group_id, level, context_from_proto(grant.context)?))
        })()
        .map_err(|e| e.within("grant"))?;
        Ok(self
            .permissions
            .grant(admin, subject, group_id, level, context, mode)
            .await
            .map_err(|e| e.within("grant"))?)
    }
}

#[tonic::async_trait]
impl PermissionService for PermissionApi {
    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::GetSettingsResponse>, Status> {
        let admin = admin(&request)?;
        let settings = self.settings.get(&admin).await?;
        Ok(Response::new(pb::GetSettingsResponse {
            settings: Some(settings_to_proto(settings)),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields = SettingsField::from_mask(
            &request
                .update_mask
                .map(|mask| mask.paths)
                .unwrap_or_default(),
        )?;
        let settings = request.settings.unwrap_or_default();
        let input = (|| {
            Ok::<_, Error>(SettingsInput {
                auto_create_organisations: settings.auto_create_organisations,
                auto_create_organisation_country: settings.auto_create_organisation_country,
                customer_group_support: settings.customer_group_support,
                always_groups: parse_ids("always_groups", &settings.always_groups)?,
                company_always_groups: parse_ids(
                    "company_always_groups",
                    &settings.company_always_groups,
                )?,
                default_group_id: super::parse_optional_id(
                    "default_group_id",
                    &settings.default_group_id,
                )?,
            })
        })()
        .map_err(|e| e.within("settings"))?;
        let settings = self
            .settings
            .update(&admin, &settings.etag, &fields, &input)
            .await
            .map_err(|e| e.within("settings"))?;
        Ok(Response::new(pb::UpdateSettingsResponse {
            settings: Some(settings_to_proto(settings)),
        }))
    }

    async fn grant_permission(
        &self,
        request: Request<pb::GrantPermissionRequest>,
    ) -> Result<Response<pb::GrantPermissionResponse>, Status> {
        let admin = admin(&request)?;
        let grant = request.into_inner().grant.unwrap_or_default();
        let (grant, _) = self.grant(&admin, grant, GrantMode::Add).await?;
        Ok(Response::new(pb::GrantPermissionResponse {
            grant: Some(grant_to_proto(grant)),
        }))
    }

    async fn set_permission(
        &self,
        request: Request<pb::SetPermissionRequest>,
    ) -> Result<Response<pb::SetPermissionResponse>, Status> {
        let admin = admin(&request)?;
        let grant = request.into_inner().grant.unwrap_or_default();
        let (grant, previous) = self.grant(&admin, grant, GrantMode::Set).await?;
        Ok(Response::new(pb::SetPermissionResponse {
            grant: Some(grant_to_proto(grant)),
            previous_level: previous.map_or(pb::PermissionLevel::None as i32, level_to_proto),
        }))
    }

    async fn revoke_permission(
        &self,
        request: Request<pb::RevokePermissionRequest>,
    ) -> Result<Response<pb::RevokePermissionResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let subject = subject(request.subject.as_ref(), "subject")?;
        let group_id = parse_id("group_id", &request.group_id)?;
        let context = context_from_proto(request.context)?;
        let revoked = self
            .permissions
            .revoke(&admin, subject, group_id, context)
            .await?;
        Ok(Response::new(pb::RevokePermissionResponse { revoked }))
    }

    async fn list_grants(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let filter = match request.of {
            Some(pb::list_grants_request::Of::Subject(subject_message)) => {
                GrantFilter::Subject(subject(Some(&subject_message), "subject")?)
            }
            Some(pb::list_grants_request::Of::GroupId(group_id)) => {
                GrantFilter::Group(parse_id("group_id", &group_id)?)
            }
            None => return Err(Error::invalid("of", "give a subject or a group_id").into()),
        };
        let page = self
            .permissions
            .list(&reader, filter, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListGrantsResponse {
            grants: page.items.into_iter().map(grant_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn set_group_permissions(
        &self,
        request: Request<pb::SetGroupPermissionsRequest>,
    ) -> Result<Response<pb::SetGroupPermissionsResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let group_id = parse_id("group_id", &request.group_id)?;
        let kind = match pb::SubjectKind::try_from(request.kind) {
            Ok(pb::SubjectKind::Agent) => SubjectKind::Agent,
            Ok(pb::SubjectKind::Customer) => SubjectKind::Customer,
            Ok(pb::SubjectKind::Organisation) => SubjectKind::Organisation,
            _ => {
                return Err(
                    Error::invalid("kind", "must be AGENT, CUSTOMER or ORGANISATION").into(),
                );
            }
        };
        let level = match pb::PermissionLevel::try_from(request.level) {
            Ok(pb::PermissionLevel::None) => None,
            Ok(pb::PermissionLevel::Ro) => Some(Level::Ro),
            Ok(pb::PermissionLevel::Rw) => Some(Level::Rw),
            _ => return Err(Error::invalid("level", "must be NONE, RO or RW").into()),
        };
        let context = context_from_proto(request.context)?;
        let subject_ids = parse_ids("subject_ids", &request.subject_ids)?;
        let changed = self
            .permissions
            .set_group(&admin, group_id, kind, level, context, subject_ids)
            .await?;
        Ok(Response::new(pb::SetGroupPermissionsResponse {
            changed: i64::try_from(changed).unwrap_or(i64::MAX),
        }))
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let asked = match request.principal.and_then(|p| p.principal) {
            Some(pb::principal::Principal::Admin(true)) => Asked::Admin,
            Some(pb::principal::Principal::AgentId(id)) => {
                Asked::Agent(parse_id("principal.agent_id", &id)?)
            }
            Some(pb::principal::Principal::CustomerId(id)) => {
                Asked::Customer(parse_id("principal.customer_id", &id)?)
            }
            _ => {
                return Err(Error::invalid(
                    "principal",
                    "give admin, an agent_id or a customer_id",
                )
                .into());
            }
        };
        let level = level_from_proto("level", request.level)?
            .ok_or_else(|| Error::invalid("level", "must be RO or RW"))?;
        let resource = match request.resource.and_then(|r| r.resource) {
            Some(pb::resource::Resource::OrganisationId(id)) => {
                Resource::Organisation(parse_id("resource.organisation_id", &id)?)
            }
            Some(pb::resource::Resource::CustomerId(id)) => {
                Resource::Customer(parse_id("resource.customer_id", &id)?)
            }
            Some(pb::resource::Resource::TicketId(id)) => {
                Resource::Ticket(parse_id("resource.ticket_id", &id)?)
            }
            Some(pb::resource::Resource::GroupId(id)) => {
                Resource::Group(parse_id("resource.group_id", &id)?)
            }
            None => {
                return Err(Error::invalid(
                    "resource",
                    "give an organisation_id, a customer_id or a group_id",
                )
                .into());
            }
        };
        let Decision {
            allowed,
            reason,
            grant,
            whose,
        } = self
            .permissions
            .check(&reader, asked, level, resource)
            .await?;
        Ok(Response::new(pb::CheckPermissionResponse {
            allowed,
            reason: reason_to_proto(reason),
            grant: grant.map(grant_to_proto),
            scope: whose
                .map_or(pb::TicketScope::Unspecified, whose_to_proto)
                .into(),
        }))
    }

    async fn get_effective_permissions(
        &self,
        request: Request<pb::GetEffectivePermissionsRequest>,
    ) -> Result<Response<pb::GetEffectivePermissionsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let subject = subject(request.subject.as_ref(), "subject")?;
        let permissions = self.permissions.effective(&reader, subject).await?;
        Ok(Response::new(pb::GetEffectivePermissionsResponse {
            permissions: permissions.into_iter().map(effective_to_proto).collect(),
        }))
    }
}

fn subject(subject: Option<&pb::Subject>, field: &str) -> Result<Subject> {
    match subject.and_then(|s| s.subject.as_ref()) {
        Some(pb::subject::Subject::AgentId(id)) => {
            Ok(Subject::Agent(parse_id(&format!("{field}.agent_id"), id)?))
        }
        Some(pb::subject::Subject::CustomerId(id)) => Ok(Subject::Customer(parse_id(
            &format!("{field}.customer_id"),
            id,
        )?)),
        Some(pb::subject::Subject::OrganisationId(id)) => Ok(Subject::Organisation(parse_id(
            &format!("{field}.organisation_id"),
            id,
        )?)),
        None => Err(Error::invalid(
            field,
            "give an agent_id, a customer_id or an organisation_id",
        )),
    }
}

fn subject_to_proto(subject: Subject) -> pb::Subject {
    use pb::subject::Subject as S;
    pb::Subject {
        subject: Some(match subject {
            Subject::Agent(id) => S::AgentId(id.to_string()),
            Subject::Customer(id) => S::CustomerId(id.to_string()),
            Subject::Organisation(id) => S::OrganisationId(id.to_string()),
        }),
    }
}

/// A level from the API: unspecified is `None`, NONE is refused where a level is needed.
fn level_from_proto(field: &str, raw: i32) -> Result<Option<Level>> {
    match pb::PermissionLevel::try_from(raw) {
        Ok(pb::PermissionLevel::Unspecified) => Ok(None),
        Ok(pb::PermissionLevel::Ro) => Ok(Some(Level::Ro)),
        Ok(pb::PermissionLevel::Rw) => Ok(Some(Level::Rw)),
        _ => Err(Error::invalid(field, "must be RO or RW")),
    }
}

fn level_to_proto(level: Level) -> i32 {
    match level {
        Level::Ro => pb::PermissionLevel::Ro,
        Level::Rw => pb::PermissionLevel::Rw,
    }
    .into()
}

fn context_from_proto(raw: i32) -> Result<GrantContext> {
    match pb::GrantContext::try_from(raw) {
        Ok(pb::GrantContext::Unspecified) => Ok(GrantContext::None),
        Ok(pb::GrantContext::SameOrganisation) => Ok(GrantContext::SameOrganisation),
        Ok(pb::GrantContext::OtherOrganisations) => Ok(GrantContext::OtherOrganisations),
        Err(_) => Err(Error::invalid(
            "context",
            format!("{raw} is not a GrantContext"),
        )),
    }
}

fn context_to_proto(context: GrantContext) -> i32 {
    match context {
        GrantContext::None => pb::GrantContext::Unspecified,
        GrantContext::SameOrganisation => pb::GrantContext::SameOrganisation,
        GrantContext::OtherOrganisations => pb::GrantContext::OtherOrganisations,
    }
    .into()
}

pub(crate) fn grant_to_proto(grant: Grant) -> pb::Grant {
    pb::Grant {
        subject: Some(subject_to_proto(grant.subject)),
        group_id: grant.group_id.to_string(),
        level: level_to_proto(grant.level),
        context: context_to_proto(grant.context),
        create_time: Some(timestamp(grant.create_time)),
        update_time: Some(timestamp(grant.update_time)),
    }
}

fn reason_to_proto(reason: Reason) -> i32 {
    use pb::PermissionReason as P;
    match reason {
        Reason::Admin => P::Admin,
        Reason::AgentReadsMasterData => P::AgentReadsMasterData,
        Reason::ManageCustomers => P::ManageCustomers,
        Reason::NoManageCustomers => P::NoManageCustomers,
        Reason::OwnGrant => P::OwnGrant,
        Reason::OrganisationGrant => P::OrganisationGrant,
        Reason::AlwaysGroups => P::AlwaysGroups,
        Reason::CompanyAlwaysGroups => P::CompanyAlwaysGroups,
        Reason::CustomerGroupSupportOff => P::CustomerGroupSupportOff,
        Reason::SelfRecord => P::Self_,
        Reason::OwnOrganisation => P::OwnOrganisation,
        Reason::CustomersReadOnly => P::CustomersReadOnly,
        Reason::NoGrant => P::NoGrant,
        Reason::PrincipalInvalid => P::PrincipalInvalid,
        Reason::GroupInvalid => P::GroupInvalid,
        Reason::NotOwn => P::NotOwn,
        Reason::ReaderGroup => P::ReaderGroup,
        Reason::Directory => P::Directory,
        Reason::DirectoryReader => P::DirectoryReader,
    }
    .into()
}

fn whose_to_proto(whose: Whose) -> pb::TicketScope {
    match whose {
        Whose::Own => pb::TicketScope::Own,
        Whose::Organisation => pb::TicketScope::Organisation,
        Whose::All => pb::TicketScope::All,
    }
}

fn effective_to_proto(effective: Effective) -> pb::EffectivePermission {
    pb::EffectivePermission {
        group_id: effective.group_id.to_string(),
        scope: whose_to_proto(effective.scope).into(),
        level: level_to_proto(effective.basis.level),
        reason: reason_to_proto(effective.basis.reason),
        grant: effective.basis.grant.map(grant_to_proto),
    }
}

fn settings_to_proto(settings: Settings) -> pb::Settings {
    let ids = |ids: Vec<Uuid>| ids.iter().map(ToString::to_string).collect();
    pb::Settings {
        etag: settings.etag(),
        auto_create_organisations: settings.auto_create_organisations,
        auto_create_organisation_country: settings.auto_create_organisation_country,
        customer_group_support: settings.customer_group_support,
        always_groups: ids(settings.always_groups),
        company_always_groups: ids(settings.company_always_groups),
        default_group_id: super::optional_id(settings.default_group_id),
        update_time: Some(timestamp(settings.update_time)),
    }
}
