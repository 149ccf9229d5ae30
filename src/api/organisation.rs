//! `clientele.v1.OrganisationService`.

use tonic::{Request, Response, Status};

use super::{
    both, optional_id, parse_id, parse_optional_id, parse_time, scope, summary_to_proto, timestamp,
    validity_from_proto, validity_to_proto, writer,
};
use crate::{
    domain::{
        Customers, Organisations, fields,
        import::OrganisationImport,
        organisation::{OrganisationField, OrganisationInput, OrganisationKey, OrganisationQuery},
    },
    error::{Error, Result},
    model::{Organisation, OrganisationOrder, Validity},
    proto::v1::{self as pb, organisation_service_server::OrganisationService},
};

/// The gRPC face of [`Organisations`].
#[derive(Clone, Debug)]
pub struct OrganisationApi {
    organisations: Organisations,
    customers: Customers,
}

impl OrganisationApi {
    /// Serves `organisations`; domain assignment changes `customers`.
    pub fn new(organisations: Organisations, customers: Customers) -> Self {
        Self {
            organisations,
            customers,
        }
    }
}

#[tonic::async_trait]
impl OrganisationService for OrganisationApi {
    async fn create_organisation(
        &self,
        request: Request<pb::CreateOrganisationRequest>,
    ) -> Result<Response<pb::CreateOrganisationResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let request_id = fields::request_id(&request.request_id)?;
        let input = input(request.organisation.unwrap_or_default(), true)
            .map_err(|e| e.within("organisation"))?;
        let organisation = self
            .organisations
            .create(&writer, input, request_id)
            .await
            .map_err(|e| e.within("organisation"))?;
        Ok(Response::new(pb::CreateOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        }))
    }

    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::GetOrganisationResponse>, Status> {
        let scope = scope(&request)?;
        let key = match request.into_inner().key {
            Some(pb::get_organisation_request::Key::Id(id)) => {
                OrganisationKey::Id(parse_id("id", &id)?)
            }
            Some(pb::get_organisation_request::Key::Code(code)) if !code.is_empty() => {
                OrganisationKey::Code(code)
            }
            _ => return Err(Error::invalid("key", "give an id or a code").into()),
        };
        let organisation = self.organisations.get(&scope, &key).await?;
        Ok(Response::new(pb::GetOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        }))
    }

    async fn update_organisation(
        &self,
        request: Request<pb::UpdateOrganisationRequest>,
    ) -> Result<Response<pb::UpdateOrganisationResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let fields = OrganisationField::from_mask(
            &request
                .update_mask
                .map(|mask| mask.paths)
                .unwrap_or_default(),
        )?;
        let organisation = request.organisation.unwrap_or_default();
        let id = parse_id("organisation.id", &organisation.id)?;
        let etag = organisation.etag.clone();
        let input = input(organisation, false).map_err(|e| e.within("organisation"))?;
        let organisation = self
            .organisations
            .update(&writer, id, &etag, &fields, &input)
            .await
            .map_err(|e| e.within("organisation"))?;
        Ok(Response::new(pb::UpdateOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        }))
    }

    async fn list_organisations(
        &self,
        request: Request<pb::ListOrganisationsRequest>,
    ) -> Result<Response<pb::ListOrganisationsResponse>, Status> {
        let scope = scope(&request)?;
        let request = request.into_inner();
        let order = match pb::OrganisationOrder::try_from(request.order_by) {
            Ok(pb::OrganisationOrder::Unspecified | pb::OrganisationOrder::Name) => {
                OrganisationOrder::Name
            }
            Ok(pb::OrganisationOrder::Code) => OrganisationOrder::Code,
            Ok(pb::OrganisationOrder::UpdateTime) => OrganisationOrder::UpdateTime,
            Err(_) => return Err(Error::invalid("order_by", "is not an OrganisationOrder").into()),
        };
        let query = OrganisationQuery {
            text: request.text,
            country: request.country,
            validity: validity_from_proto("validity", request.validity)?,
            include_invalid: request.include_invalid,
            order,
            updated_since: parse_time("updated_since", request.updated_since)?,
            custom_field: request
                .custom_field
                .map(|filter| (filter.key, filter.value)),
        };
        let page = self
            .organisations
            .list(&scope, &query, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListOrganisationsResponse {
            organisations: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn deactivate_organisation(
        &self,
        request: Request<pb::DeactivateOrganisationRequest>,
    ) -> Result<Response<pb::DeactivateOrganisationResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let validity =
            validity_from_proto("validity", request.validity)?.unwrap_or(Validity::Invalid);
        let organisation = self
            .organisations
            .deactivate(&writer, id, validity, &request.etag)
            .await?;
        Ok(Response::new(pb::DeactivateOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        }))
    }

    async fn reactivate_organisation(
        &self,
        request: Request<pb::ReactivateOrganisationRequest>,
    ) -> Result<Response<pb::ReactivateOrganisationResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let organisation = self
            .organisations
            .reactivate(&writer, id, &request.etag)
            .await?;
        Ok(Response::new(pb::ReactivateOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        }))
    }

    async fn apply_domain_assignment(
        &self,
        request: Request<pb::ApplyDomainAssignmentRequest>,
    ) -> Result<Response<pb::ApplyDomainAssignmentResponse>, Status> {
        let writer = writer(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let assigned = self.customers.apply_domain_assignment(&writer, id).await?;
        Ok(Response::new(pb::ApplyDomainAssignmentResponse {
            assigned: i64::try_from(assigned).unwrap_or(i64::MAX),
        }))
    }

    async fn import_organisations(
        &self,
        request: Request<tonic::Streaming<pb::ImportOrganisationsRequest>>,
    ) -> Result<Response<pb::ImportOrganisationsResponse>, Status> {
        let writer = writer(&request)?;
        let mut rows = request.into_inner();
        let mut import = OrganisationImport::new(&self.organisations, writer);
        while let Some(message) = rows.message().await? {
            import
                .row(input(message.organisation.unwrap_or_default(), true))
                .await?;
        }
        Ok(Response::new(pb::ImportOrganisationsResponse {
            summary: Some(summary_to_proto(import.finish().await?)),
        }))
    }
}

/// The client's values; `validity` is read only on create.
fn input(organisation: pb::Organisation, with_validity: bool) -> Result<OrganisationInput> {
    let validity = if with_validity {
        validity_from_proto("validity", organisation.validity)?
    } else {
        None
    };
    let ((sla_policy_id, default_assignee_id), directory_id) = both(
        both(
            parse_optional_id("sla_policy_id", &organisation.sla_policy_id),
            parse_optional_id("default_assignee_id", &organisation.default_assignee_id),
        ),
        parse_optional_id("directory_id", &organisation.directory_id),
    )?;
    Ok(OrganisationInput {
        directory_id,
        sla_policy_id,
        default_assignee_id,
        code: organisation.code,
        name: organisation.name,
        street: organisation.street,
        zip: organisation.zip,
        city: organisation.city,
        country: organisation.country,
        url: organisation.url,
        comment: organisation.comment,
        validity,
        email_domains: organisation.email_domains,
        domain_assignment: organisation.domain_assignment,
        external_id: organisation.external_id,
        custom_fields: organisation.custom_fields.into_iter().collect(),
    })
}

pub(crate) fn to_proto(organisation: Organisation) -> pb::Organisation {
    pb::Organisation {
        etag: organisation.etag(),
        id: organisation.id.to_string(),
        code: organisation.code,
        name: organisation.name,
        street: organisation.street,
        zip: organisation.zip,
        city: organisation.city,
        country: organisation.country,
        url: organisation.url,
        comment: organisation.comment,
        validity: validity_to_proto(organisation.validity),
        email_domains: organisation.email_domains,
        domain_assignment: organisation.domain_assignment,
        external_id: organisation.external_id.unwrap_or_default(),
        custom_fields: organisation.custom_fields.into_iter().collect(),
        sla_policy_id: optional_id(organisation.sla_policy_id),
        default_assignee_id: optional_id(organisation.default_assignee_id),
        directory_id: optional_id(organisation.directory_id),
        create_time: Some(timestamp(organisation.create_time)),
        update_time: Some(timestamp(organisation.update_time)),
    }
}
