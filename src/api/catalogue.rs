//! `clientele.v1.FieldCatalogueService`.

use tonic::{Request, Response, Status};

use super::{admin, parse_id, staff, timestamp, validity_from_proto, validity_to_proto};
use crate::{
    domain::{
        FieldCatalogue,
        catalogue::{
            CustomerTypeField, CustomerTypeInput, FieldDefinitionField, FieldDefinitionInput,
        },
    },
    error::{Error, Result},
    model::{CustomerType, FieldDefinition, FieldValueType, RecordType},
    proto::v1::{self as pb, field_catalogue_service_server::FieldCatalogueService},
};

/// The gRPC face of [`FieldCatalogue`].
#[derive(Clone, Debug)]
pub struct FieldCatalogueApi {
    catalogue: FieldCatalogue,
}

impl FieldCatalogueApi {
    /// Serves `catalogue`.
    pub fn new(catalogue: FieldCatalogue) -> Self {
        Self { catalogue }
    }
}

#[tonic::async_trait]
impl FieldCatalogueService for FieldCatalogueApi {
    async fn create_customer_type(
        &self,
        request: Request<pb::CreateCustomerTypeRequest>,
    ) -> Result<Response<pb::CreateCustomerTypeResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let within = |e: Error| e.within("customer_type");
        let input = type_input(request.customer_type.unwrap_or_default()).map_err(within)?;
        let kind = self
            .catalogue
            .create_type(&admin, &input, request_id)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::CreateCustomerTypeResponse {
            customer_type: Some(type_to_proto(kind)),
        }))
    }

    async fn update_customer_type(
        &self,
        request: Request<pb::UpdateCustomerTypeRequest>,
    ) -> Result<Response<pb::UpdateCustomerTypeResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields = CustomerTypeField::from_mask(
            &request.update_mask.map(|m| m.paths).unwrap_or_default(),
        )?;
        let kind = request.customer_type.unwrap_or_default();
        let id = parse_id("customer_type.id", &kind.id)?;
        let etag = kind.etag.clone();
        let within = |e: Error| e.within("customer_type");
        let input = type_input(kind).map_err(within)?;
        let kind = self
            .catalogue
            .update_type(&admin, id, &etag, &fields, &input)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::UpdateCustomerTypeResponse {
            customer_type: Some(type_to_proto(kind)),
        }))
    }

    async fn list_customer_types(
        &self,
        request: Request<pb::ListCustomerTypesRequest>,
    ) -> Result<Response<pb::ListCustomerTypesResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .catalogue
            .list_types(
                &reader,
                request.include_invalid,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListCustomerTypesResponse {
            types: page.items.into_iter().map(type_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_field_definition(
        &self,
        request: Request<pb::CreateFieldDefinitionRequest>,
    ) -> Result<Response<pb::CreateFieldDefinitionResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let within = |e: Error| e.within("field_definition");
        let input =
            definition_input(request.field_definition.unwrap_or_default()).map_err(within)?;
        let definition = self
            .catalogue
            .create_definition(&admin, &input, request_id)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::CreateFieldDefinitionResponse {
            field_definition: Some(definition_to_proto(definition)),
        }))
    }

    async fn update_field_definition(
        &self,
        request: Request<pb::UpdateFieldDefinitionRequest>,
    ) -> Result<Response<pb::UpdateFieldDefinitionResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields = FieldDefinitionField::from_mask(
            &request.update_mask.map(|m| m.paths).unwrap_or_default(),
        )?;
        let definition = request.field_definition.unwrap_or_default();
        let id = parse_id("field_definition.id", &definition.id)?;
        let etag = definition.etag.clone();
        let within = |e: Error| e.within("field_definition");
        let input = definition_input(definition).map_err(within)?;
        let definition = self
            .catalogue
            .update_definition(&admin, id, &etag, &fields, &input)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::UpdateFieldDefinitionResponse {
            field_definition: Some(definition_to_proto(definition)),
        }))
    }

    async fn list_field_definitions(
        &self,
        request: Request<pb::ListFieldDefinitionsRequest>,
    ) -> Result<Response<pb::ListFieldDefinitionsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let record_type = record_type_from_proto("record_type", request.record_type)?;
        let page = self
            .catalogue
            .list_definitions(
                &reader,
                record_type,
                request.include_invalid,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListFieldDefinitionsResponse {
            field_definitions: page.items.into_iter().map(definition_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn type_input(kind: pb::CustomerType) -> Result<CustomerTypeInput> {
    Ok(CustomerTypeInput {
        validity: validity_from_proto("validity", kind.validity)?,
        name: kind.name,
        comment: kind.comment,
    })
}

fn type_to_proto(kind: CustomerType) -> pb::CustomerType {
    pb::CustomerType {
        etag: kind.etag(),
        id: kind.id.to_string(),
        name: kind.name,
        comment: kind.comment,
        validity: validity_to_proto(kind.validity),
        create_time: Some(timestamp(kind.create_time)),
        update_time: Some(timestamp(kind.update_time)),
    }
}

fn record_type_from_proto(field: &str, raw: i32) -> Result<Option<RecordType>> {
    match pb::RecordType::try_from(raw) {
        Ok(pb::RecordType::Unspecified) => Ok(None),
        Ok(pb::RecordType::Customer) => Ok(Some(RecordType::Customer)),
        Ok(pb::RecordType::Organisation) => Ok(Some(RecordType::Organisation)),
        Err(_) => Err(Error::invalid(field, format!("{raw} is not a RecordType"))),
    }
}

fn definition_input(definition: pb::FieldDefinition) -> Result<FieldDefinitionInput> {
    let value_type = match pb::FieldValueType::try_from(definition.value_type) {
        Ok(pb::FieldValueType::Unspecified) => None,
        Ok(pb::FieldValueType::Text) => Some(FieldValueType::Text),
        Ok(pb::FieldValueType::Number) => Some(FieldValueType::Number),
        Ok(pb::FieldValueType::Boolean) => Some(FieldValueType::Boolean),
        Ok(pb::FieldValueType::Date) => Some(FieldValueType::Date),
        Ok(pb::FieldValueType::Choice) => Some(FieldValueType::Choice),
        Err(_) => {
            return Err(Error::invalid(
                "value_type",
                format!("{} is not a FieldValueType", definition.value_type),
            ));
        }
    };
    let (record_type, validity) = super::both(
        record_type_from_proto("record_type", definition.record_type),
        validity_from_proto("validity", definition.validity),
    )?;
    Ok(FieldDefinitionInput {
        record_type,
        key: definition.key,
        display_name: definition.display_name,
        value_type,
        required: definition.required,
        allowed_values: definition.allowed_values,
        comment: definition.comment,
        validity,
    })
}

fn definition_to_proto(definition: FieldDefinition) -> pb::FieldDefinition {
    pb::FieldDefinition {
        etag: definition.etag(),
        id: definition.id.to_string(),
        record_type: match definition.record_type {
            RecordType::Customer => pb::RecordType::Customer,
            RecordType::Organisation => pb::RecordType::Organisation,
        }
        .into(),
        key: definition.key,
        display_name: definition.display_name,
        value_type: match definition.value_type {
            FieldValueType::Text => pb::FieldValueType::Text,
            FieldValueType::Number => pb::FieldValueType::Number,
            FieldValueType::Boolean => pb::FieldValueType::Boolean,
            FieldValueType::Date => pb::FieldValueType::Date,
            FieldValueType::Choice => pb::FieldValueType::Choice,
        }
        .into(),
        required: definition.required,
        allowed_values: definition.allowed_values,
        comment: definition.comment,
        validity: validity_to_proto(definition.validity),
        create_time: Some(timestamp(definition.create_time)),
        update_time: Some(timestamp(definition.update_time)),
    }
}
