//! The gRPC adapter of `WebhookService` (administrators only).

use tonic::{Request, Response, Status};

use super::{
    admin,
    change::{resource_type, resource_type_to_proto},
    parse_id, parse_optional_id, principal,
    ticket::change_kind_to_proto,
    timestamp,
};
use crate::{
    domain::{
        Webhooks,
        change_feed::encode_cursor,
        webhook::{ActivityInput, WebhookField, WebhookInput},
    },
    error::{Error, Result},
    model::{Activity, ActivityTarget, ChangeKind, Delivery, DeliveryStatus, Webhook},
    proto::v1::{self as pb, webhook_service_server::WebhookService},
};

/// Serves `clientele.v1.WebhookService`.
#[derive(Clone, Debug)]
pub struct WebhookApi {
    webhooks: Webhooks,
}

impl WebhookApi {
    /// The service over `webhooks`.
    pub fn new(webhooks: Webhooks) -> Self {
        Self { webhooks }
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookResponse>, Status> {
        let admin = admin(&request)?;
        let input = input(request.into_inner().webhook.unwrap_or_default())
            .map_err(|e| e.within("webhook"))?;
        let webhook = self
            .webhooks
            .create(&admin, input)
            .await
            .map_err(|e| e.within("webhook"))?;
        Ok(Response::new(pb::CreateWebhookResponse {
            secret: webhook.secret.clone(),
            webhook: Some(to_proto(webhook)),
        }))
    }

    async fn get_webhook(
        &self,
        request: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::GetWebhookResponse>, Status> {
        let admin = admin(&request)?;
        let id = parse_id("id", &request.into_inner().id)?;
        let webhook = self.webhooks.get(&admin, id).await?;
        Ok(Response::new(pb::GetWebhookResponse {
            webhook: Some(to_proto(webhook)),
        }))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let page = self
            .webhooks
            .list(&admin, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::UpdateWebhookResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields =
            WebhookField::from_mask(&request.update_mask.map(|m| m.paths).unwrap_or_default())?;
        let webhook = request.webhook.unwrap_or_default();
        let id = parse_id("webhook.id", &webhook.id)?;
        let etag = webhook.etag.clone();
        let input = input(webhook).map_err(|e| e.within("webhook"))?;
        let webhook = self
            .webhooks
            .update(&admin, id, &etag, &fields, input)
            .await
            .map_err(|e| e.within("webhook"))?;
        Ok(Response::new(pb::UpdateWebhookResponse {
            webhook: Some(to_proto(webhook)),
        }))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        self.webhooks.delete(&admin, id, &request.etag).await?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let id = parse_id("webhook_id", &request.webhook_id)?;
        let status = match pb::DeliveryStatus::try_from(request.status) {
            Ok(pb::DeliveryStatus::Unspecified) => None,
            Ok(pb::DeliveryStatus::Pending) => Some(DeliveryStatus::Pending),
            Ok(pb::DeliveryStatus::Delivered) => Some(DeliveryStatus::Delivered),
            Ok(pb::DeliveryStatus::Dead) => Some(DeliveryStatus::Dead),
            Err(_) => return Err(Error::invalid("status", "is not a DeliveryStatus").into()),
        };
        let page = self
            .webhooks
            .deliveries(&admin, id, status, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries: page.items.into_iter().map(delivery_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_activity(
        &self,
        request: Request<pb::CreateActivityRequest>,
    ) -> Result<Response<pb::CreateActivityResponse>, Status> {
        let admin = admin(&request)?;
        let activity = request.into_inner().activity.unwrap_or_default();
        let input = ActivityInput {
            webhook_id: if activity.webhook_id.is_empty() {
                None
            } else {
                Some(
                    parse_id("webhook_id", &activity.webhook_id)
                        .map_err(|e| e.within("activity"))?,
                )
            },
            applies_to: match pb::ActivityTarget::try_from(activity.applies_to) {
                Ok(pb::ActivityTarget::Customer) => Some(ActivityTarget::Customer),
                Ok(pb::ActivityTarget::Organisation) => Some(ActivityTarget::Organisation),
                _ => None,
            },
            name: activity.name,
            description: activity.description,
            customer_types: activity.customer_types,
        };
        let activity = self
            .webhooks
            .create_activity(&admin, input)
            .await
            .map_err(|e| e.within("activity"))?;
        Ok(Response::new(pb::CreateActivityResponse {
            activity: Some(activity_to_proto(activity)),
        }))
    }

    async fn list_activities(
        &self,
        request: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ListActivitiesResponse>, Status> {
        let principal = principal(&request)?;
        let customer = parse_optional_id("customer_id", &request.into_inner().customer_id)?;
        let activities = self.webhooks.activities(&principal, customer).await?;
        Ok(Response::new(pb::ListActivitiesResponse {
            activities: activities.into_iter().map(activity_to_proto).collect(),
        }))
    }

    async fn delete_activity(
        &self,
        request: Request<pb::DeleteActivityRequest>,
    ) -> Result<Response<pb::DeleteActivityResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        self.webhooks
            .delete_activity(&admin, id, &request.etag)
            .await?;
        Ok(Response::new(pb::DeleteActivityResponse {}))
    }

    async fn run_activity(
        &self,
        request: Request<pb::RunActivityRequest>,
    ) -> Result<Response<pb::RunActivityResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let id = parse_id("activity_id", &request.activity_id)?;
        let target = parse_id("target_id", &request.target_id)?;
        let (run, seq) = self.webhooks.run_activity(&principal, id, target).await?;
        Ok(Response::new(pb::RunActivityResponse {
            run: Some(super::change::event_to_proto(run, seq)),
        }))
    }

    async fn retry_webhook_delivery(
        &self,
        request: Request<pb::RetryWebhookDeliveryRequest>,
    ) -> Result<Response<pb::RetryWebhookDeliveryResponse>, Status> {
        let admin = admin(&request)?;
        let id = parse_id("id", &request.into_inner().id)?;
        let delivery = self.webhooks.retry(&admin, id).await?;
        Ok(Response::new(pb::RetryWebhookDeliveryResponse {
            delivery: Some(delivery_to_proto(delivery)),
        }))
    }
}

fn activity_to_proto(activity: Activity) -> pb::Activity {
    pb::Activity {
        id: activity.id.to_string(),
        etag: activity.etag(),
        name: activity.name,
        description: activity.description,
        webhook_id: activity.webhook_id.to_string(),
        applies_to: match activity.applies_to {
            ActivityTarget::Customer => pb::ActivityTarget::Customer,
            ActivityTarget::Organisation => pb::ActivityTarget::Organisation,
        }
        .into(),
        customer_types: activity.customer_types,
        create_time: Some(timestamp(activity.create_time)),
    }
}

fn input(webhook: pb::Webhook) -> Result<WebhookInput> {
    let mut resource_types = Vec::new();
    for (index, raw) in webhook.resource_types.iter().enumerate() {
        let kind = resource_type("resource_types", *raw).map_err(|_| {
            Error::invalid(
                format!("resource_types[{index}]"),
                "is not a resource type: name one, e.g. RESOURCE_TYPE_CUSTOMER",
            )
        })?;
        if !resource_types.contains(&kind) {
            resource_types.push(kind);
        }
    }
    let mut kinds = Vec::new();
    for (index, raw) in webhook.kinds.iter().enumerate() {
        let kind = match pb::ChangeKind::try_from(*raw) {
            Ok(pb::ChangeKind::Unspecified) | Err(_) => None,
            Ok(kind) => ChangeKind::ALL
                .into_iter()
                .find(|k| change_kind_to_proto(k.as_str()) == kind),
        }
        .ok_or_else(|| {
            Error::invalid(
                format!("kinds[{index}]"),
                "is not a change kind: name one, e.g. CHANGE_KIND_UPDATED",
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(WebhookInput {
        url: webhook.url,
        description: webhook.description,
        resource_types,
        kinds,
        active: webhook.active,
        max_attempts: webhook.max_attempts,
    })
}

fn to_proto(webhook: Webhook) -> pb::Webhook {
    pb::Webhook {
        id: webhook.id.to_string(),
        etag: webhook.etag(),
        url: webhook.url,
        description: webhook.description,
        resource_types: webhook
            .resource_types
            .iter()
            .map(|t| resource_type_to_proto(t.as_str()).into())
            .collect(),
        kinds: webhook
            .kinds
            .iter()
            .map(|k| change_kind_to_proto(k.as_str()).into())
            .collect(),
        active: webhook.active,
        max_attempts: webhook.max_attempts,
        create_time: Some(timestamp(webhook.create_time)),
        update_time: Some(timestamp(webhook.update_time)),
    }
}

fn delivery_to_proto(delivery: Delivery) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        id: delivery.id.to_string(),
        webhook_id: delivery.webhook_id.to_string(),
        cursor: encode_cursor(delivery.position),
        seq: delivery.seq,
        resource_type: resource_type_to_proto(&delivery.resource_type).into(),
        resource_id: delivery.resource_id.to_string(),
        kind: change_kind_to_proto(&delivery.kind).into(),
        status: match delivery.status {
            DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
            DeliveryStatus::Delivered => pb::DeliveryStatus::Delivered,
            DeliveryStatus::Dead => pb::DeliveryStatus::Dead,
        }
        .into(),
        attempts: delivery.attempts,
        next_attempt_time: (delivery.status == DeliveryStatus::Pending)
            .then(|| timestamp(delivery.next_attempt_time)),
        last_http_status: delivery.last_status.unwrap_or(0),
        last_error: delivery.last_error,
        deliver_time: delivery.delivered_time.map(timestamp),
        create_time: Some(timestamp(delivery.create_time)),
    }
}
