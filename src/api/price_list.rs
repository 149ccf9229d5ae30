//! `clientele.v1.PriceListService`.

use tonic::{Request, Response, Status};

use super::{admin, parse_id, scope, staff, timestamp, validity_from_proto, validity_to_proto};
use crate::{
    domain::{
        PriceLists,
        price_list::{PriceListField, PriceListInput, PriceListKey, PriceQuery},
    },
    error::{Error, Result},
    model::{EffectivePrice, PriceList},
    proto::v1::{self as pb, price_list_service_server::PriceListService},
};

/// The gRPC face of [`PriceLists`].
#[derive(Clone, Debug)]
pub struct PriceListApi {
    price_lists: PriceLists,
}

impl PriceListApi {
    /// Serves `price_lists`.
    pub fn new(price_lists: PriceLists) -> Self {
        Self { price_lists }
    }
}

#[tonic::async_trait]
impl PriceListService for PriceListApi {
    async fn create_price_list(
        &self,
        request: Request<pb::CreatePriceListRequest>,
    ) -> Result<Response<pb::CreatePriceListResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let within = |e: Error| e.within("price_list");
        let input = input(request.price_list.unwrap_or_default()).map_err(within)?;
        let list = self
            .price_lists
            .create(&admin, &input, request_id)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::CreatePriceListResponse {
            price_list: Some(to_proto(list)),
        }))
    }

    async fn get_price_list(
        &self,
        request: Request<pb::GetPriceListRequest>,
    ) -> Result<Response<pb::GetPriceListResponse>, Status> {
        let reader = staff(&request)?;
        let key = match request.into_inner().key {
            Some(pb::get_price_list_request::Key::Id(id)) => PriceListKey::Id(parse_id("id", &id)?),
            Some(pb::get_price_list_request::Key::Name(name)) if !name.is_empty() => {
                PriceListKey::Name(name)
            }
            _ => return Err(Error::invalid("key", "give an id or a name").into()),
        };
        let list = self.price_lists.get(&reader, &key).await?;
        Ok(Response::new(pb::GetPriceListResponse {
            price_list: Some(to_proto(list)),
        }))
    }

    async fn update_price_list(
        &self,
        request: Request<pb::UpdatePriceListRequest>,
    ) -> Result<Response<pb::UpdatePriceListResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields =
            PriceListField::from_mask(&request.update_mask.map(|m| m.paths).unwrap_or_default())?;
        let list = request.price_list.unwrap_or_default();
        let id = parse_id("price_list.id", &list.id)?;
        let etag = list.etag.clone();
        let within = |e: Error| e.within("price_list");
        let input = input(list).map_err(within)?;
        let list = self
            .price_lists
            .update(&admin, id, &etag, &fields, &input)
            .await
            .map_err(within)?;
        Ok(Response::new(pb::UpdatePriceListResponse {
            price_list: Some(to_proto(list)),
        }))
    }

    async fn list_price_lists(
        &self,
        request: Request<pb::ListPriceListsRequest>,
    ) -> Result<Response<pb::ListPriceListsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .price_lists
            .list(
                &reader,
                request.include_invalid,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListPriceListsResponse {
            price_lists: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_effective_prices(
        &self,
        request: Request<pb::GetEffectivePricesRequest>,
    ) -> Result<Response<pb::GetEffectivePricesResponse>, Status> {
        let scope = scope(&request)?;
        let request = request.into_inner();
        let query = PriceQuery {
            customer_id: parse_id("customer_id", &request.customer_id)?,
            currency: request.currency,
            item_codes: request.item_codes,
        };
        let page = self
            .price_lists
            .effective(&scope, &query, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::GetEffectivePricesResponse {
            prices: page.items.into_iter().map(price_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn input(list: pb::PriceList) -> Result<PriceListInput> {
    Ok(PriceListInput {
        validity: validity_from_proto("validity", list.validity)?,
        name: list.name,
        currency: list.currency,
        comment: list.comment,
        items: list
            .items
            .into_iter()
            .map(|item| (item.item_code, item.name, item.unit_price))
            .collect(),
    })
}

fn to_proto(list: PriceList) -> pb::PriceList {
    pb::PriceList {
        etag: list.etag(),
        id: list.id.to_string(),
        name: list.name,
        currency: list.currency,
        comment: list.comment,
        validity: validity_to_proto(list.validity),
        items: list
            .items
            .into_iter()
            .map(|item| pb::PriceItem {
                item_code: item.item_code,
                name: item.name,
                unit_price: item.unit_price.to_string(),
            })
            .collect(),
        create_time: Some(timestamp(list.create_time)),
        update_time: Some(timestamp(list.update_time)),
    }
}

fn price_to_proto(price: EffectivePrice) -> pb::EffectivePrice {
    pb::EffectivePrice {
        item_code: price.item.item_code,
        name: price.item.name,
        unit_price: price.item.unit_price.to_string(),
        currency: price.currency,
        price_list_id: price.price_list_id.to_string(),
        contact_group_id: price.contact_group_id.to_string(),
        precedence: price.precedence,
    }
}
