//! `clientele.v1.CustomerService`.

use tonic::{Request, Response, Status};

use super::{
    both, optional_id, parse_id, parse_ids, parse_optional_id, parse_time, principal, scope,
    summary_to_proto, timestamp, validity_from_proto, validity_to_proto, writer,
};
use crate::{
    domain::{
        Customers, Sheets,
        customer::{CustomerKey, CustomerQuery},
        customer_fields::{CustomerField, CustomerInput},
        fields,
        import::{CustomerImport, CustomerRow},
        sheet::SheetOf,
    },
    error::{Error, Result},
    model::{Customer, CustomerOrder, Validity},
    proto::v1::{self as pb, customer_service_server::CustomerService},
};

/// The gRPC face of [`Customers`] and their printable [`Sheets`].
#[derive(Clone, Debug)]
pub struct CustomerApi {
    customers: Customers,
    sheets: Sheets,
}

impl CustomerApi {
    /// Serves `customers` and `sheets`.
    pub fn new(customers: Customers, sheets: Sheets) -> Self {
        Self { customers, sheets }
    }
}

/// The size of the pieces of a streamed sheet: 48 KiB, a multiple of 3, so that the base64
/// texts of the pieces (grpcurl's JSON) joined are the base64 text of the file.
const SHEET_CHUNK: usize = 48 * 1024;

#[tonic::async_trait]
impl CustomerService for CustomerApi {
    type RenderCustomerSheetStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<pb::RenderCustomerSheetResponse, Status>>>;

    async fn render_customer_sheet(
        &self,
        request: Request<pb::RenderCustomerSheetRequest>,
    ) -> Result<Response<Self::RenderCustomerSheetStream>, Status> {
        use pb::render_customer_sheet_request::Subject;
        let principal = principal(&request)?;
        let request = request.into_inner();
        let of = match &request.subject {
            Some(Subject::CustomerId(id)) => SheetOf::Customer(parse_id("customer_id", id)?),
            Some(Subject::OrganisationId(id)) => {
                SheetOf::Organisation(parse_id("organisation_id", id)?)
            }
            None => {
                return Err(Error::invalid(
                    "subject",
                    "is required: a customer_id or an organisation_id",
                )
                .into());
            }
        };
        let sheet = self
            .sheets
            .render(&principal, of, &request.time_zone)
            .await?;
        let size = i64::try_from(sheet.content.len()).unwrap_or(i64::MAX);
        let mut messages: Vec<Result<pb::RenderCustomerSheetResponse, Status>> = sheet
            .content
            .chunks(SHEET_CHUNK)
            .map(|piece| {
                Ok(pb::RenderCustomerSheetResponse {
                    chunk: piece.to_vec(),
                    ..Default::default()
                })
            })
            .collect();
        if let Some(Ok(first)) = messages.first_mut() {
            first.content_type = "application/pdf".into();
            first.file_name = sheet.file_name;
            first.size = size;
        }
        Ok(Response::new(tokio_stream::iter(messages)))
    }

    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::CreateCustomerResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let request_id = fields::request_id(&request.request_id)?;
        let input =
            input(request.customer.unwrap_or_default(), true).map_err(|e| e.within("customer"))?;
        let customer = self
            .customers
            .create(&writer, input, request_id)
            .await
            .map_err(|e| e.within("customer"))?;
        Ok(Response::new(pb::CreateCustomerResponse {
            customer: Some(to_proto(customer)),
        }))
    }

    async fn find_or_create_customer(
        &self,
        request: Request<pb::FindOrCreateCustomerRequest>,
    ) -> Result<Response<pb::FindOrCreateCustomerResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let input =
            input(request.customer.unwrap_or_default(), true).map_err(|e| e.within("customer"))?;
        let (customer, created) = self
            .customers
            .find_or_create(&writer, input)
            .await
            .map_err(|e| e.within("customer"))?;
        Ok(Response::new(pb::FindOrCreateCustomerResponse {
            customer: Some(to_proto(customer)),
            newly_created: created,
        }))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        use pb::get_customer_request::Key;
        let scope = scope(&request)?;
        let key = match request.into_inner().key {
            Some(Key::Id(id)) => CustomerKey::Id(parse_id("id", &id)?),
            Some(Key::Email(email)) if !email.is_empty() => CustomerKey::Email(email),
            Some(Key::Login(login)) if !login.is_empty() => CustomerKey::Login(login),
            _ => return Err(Error::invalid("key", "give an id, an email or a login").into()),
        };
        let customer = self.customers.get(&scope, &key).await?;
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(to_proto(customer)),
        }))
    }

    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::UpdateCustomerResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let fields = CustomerField::from_mask(
            &request
                .update_mask
                .map(|mask| mask.paths)
                .unwrap_or_default(),
        )?;
        let customer = request.customer.unwrap_or_default();
        let id = parse_id("customer.id", &customer.id)?;
        let etag = customer.etag.clone();
        let input = input(customer, false).map_err(|e| e.within("customer"))?;
        let customer = self
            .customers
            .update(&writer, id, &etag, &fields, &input)
            .await
            .map_err(|e| e.within("customer"))?;
        Ok(Response::new(pb::UpdateCustomerResponse {
            customer: Some(to_proto(customer)),
        }))
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResponse>, Status> {
        let scope = scope(&request)?;
        let request = request.into_inner();
        let order = match pb::CustomerOrder::try_from(request.order_by) {
            Ok(pb::CustomerOrder::Unspecified | pb::CustomerOrder::Name) => CustomerOrder::Name,
            Ok(pb::CustomerOrder::Email) => CustomerOrder::Email,
            Ok(pb::CustomerOrder::UpdateTime) => CustomerOrder::UpdateTime,
            Err(_) => return Err(Error::invalid("order_by", "is not a CustomerOrder").into()),
        };
        let query = CustomerQuery {
            organisation_id: parse_optional_id("organisation_id", &request.organisation_id)?,
            text: request.text,
            customer_type: request.r#type,
            validity: validity_from_proto("validity", request.validity)?,
            include_invalid: request.include_invalid,
            order,
            updated_since: parse_time("updated_since", request.updated_since)?,
            custom_field: request
                .custom_field
                .map(|filter| (filter.key, filter.value)),
        };
        let page = self
            .customers
            .list(&scope, &query, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListCustomersResponse {
            customers: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn deactivate_customer(
        &self,
        request: Request<pb::DeactivateCustomerRequest>,
    ) -> Result<Response<pb::DeactivateCustomerResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let validity =
            validity_from_proto("validity", request.validity)?.unwrap_or(Validity::Invalid);
        let customer = self
            .customers
            .deactivate(&writer, id, validity, &request.etag)
            .await?;
        Ok(Response::new(pb::DeactivateCustomerResponse {
            customer: Some(to_proto(customer)),
        }))
    }

    async fn reactivate_customer(
        &self,
        request: Request<pb::ReactivateCustomerRequest>,
    ) -> Result<Response<pb::ReactivateCustomerResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let customer = self
            .customers
            .reactivate(&writer, id, &request.etag)
            .await?;
        Ok(Response::new(pb::ReactivateCustomerResponse {
            customer: Some(to_proto(customer)),
        }))
    }

    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        let writer = writer(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        self.customers.delete(&writer, id, &request.etag).await?;
        Ok(Response::new(pb::DeleteCustomerResponse {}))
    }

    async fn merge_customers(
        &self,
        request: Request<pb::MergeCustomersRequest>,
    ) -> Result<Response<pb::MergeCustomersResponse>, Status> {
        let caller = principal(&request)?;
        let writer = writer(&request)?;
        let request = request.into_inner();
        let (source, target) = both(
            parse_id("source_id", &request.source_id),
            parse_id("target_id", &request.target_id),
        )?;
        let customer = self
            .customers
            .merge(
                &caller,
                &writer,
                source,
                target,
                &request.source_etag,
                &request.target_etag,
            )
            .await?;
        Ok(Response::new(pb::MergeCustomersResponse {
            customer: Some(to_proto(customer)),
        }))
    }

    async fn import_customers(
        &self,
        request: Request<tonic::Streaming<pb::ImportCustomersRequest>>,
    ) -> Result<Response<pb::ImportCustomersResponse>, Status> {
        let writer = writer(&request)?;
        let mut rows = request.into_inner();
        let mut import = CustomerImport::new(&self.customers, writer);
        while let Some(message) = rows.message().await? {
            import.row(row(message.row.unwrap_or_default())).await?;
        }
        Ok(Response::new(pb::ImportCustomersResponse {
            summary: Some(summary_to_proto(import.finish().await?)),
        }))
    }
}

/// The client's values; `validity` is read only on create.
fn input(customer: pb::Customer, with_validity: bool) -> Result<CustomerInput> {
    let validity = if with_validity {
        validity_from_proto("validity", customer.validity)?
    } else {
        None
    };
    let ((organisation_id, secondary_organisation_ids), directory_id) = both(
        both(
            parse_optional_id("organisation_id", &customer.organisation_id),
            parse_ids(
                "secondary_organisation_ids",
                &customer.secondary_organisation_ids,
            ),
        ),
        parse_optional_id("directory_id", &customer.directory_id),
    )?;
    Ok(CustomerInput {
        email: customer.email,
        secondary_emails: customer.secondary_emails,
        login: customer.login,
        first_name: customer.first_name,
        last_name: customer.last_name,
        title: customer.title,
        phone: customer.phone,
        mobile: customer.mobile,
        organisation_id,
        secondary_organisation_ids,
        customer_type: customer.r#type,
        custom_fields: customer.custom_fields.into_iter().collect(),
        external_id: customer.external_id,
        validity,
        directory_id,
        source: None,
    })
}

fn row(row: pb::CustomerImportRow) -> Result<CustomerRow> {
    Ok(CustomerRow {
        validity: validity_from_proto("validity", row.validity)?,
        email: row.email,
        login: row.login,
        first_name: row.first_name,
        last_name: row.last_name,
        title: row.title,
        phone: row.phone,
        mobile: row.mobile,
        organisation_code: row.organisation_code,
        secondary_organisation_codes: row.secondary_organisation_codes,
        customer_type: row.r#type,
        external_id: row.external_id,
        custom_fields: row.custom_fields.into_iter().collect(),
    })
}

pub(crate) fn to_proto(customer: Customer) -> pb::Customer {
    pb::Customer {
        etag: customer.etag(),
        erased: customer.is_erased(),
        id: customer.id.to_string(),
        email: customer.email,
        secondary_emails: customer.secondary_emails,
        login: customer.login.unwrap_or_default(),
        first_name: customer.first_name,
        last_name: customer.last_name,
        title: customer.title,
        phone: customer.phone,
        mobile: customer.mobile,
        organisation_id: customer
            .organisation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        secondary_organisation_ids: customer
            .secondary_organisation_ids
            .iter()
            .map(ToString::to_string)
            .collect(),
        r#type: customer.customer_type,
        custom_fields: customer.custom_fields.into_iter().collect(),
        external_id: customer.external_id.unwrap_or_default(),
        validity: validity_to_proto(customer.validity),
        directory_id: optional_id(customer.directory_id),
        source: customer.source.map(|link| link.name).unwrap_or_default(),
        create_time: Some(timestamp(customer.create_time)),
        update_time: Some(timestamp(customer.update_time)),
    }
}
