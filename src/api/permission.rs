//! `clientele.v1.PermissionService`: for now, the settings.

use tonic::{Request, Response, Status};

use super::{actor, timestamp};
use crate::{
    domain::{
        SettingsRules,
        settings::{SettingsField, SettingsInput},
    },
    error::Result,
    model::Settings,
    proto::v1::{self as pb, permission_service_server::PermissionService},
};

/// The gRPC face of [`SettingsRules`].
#[derive(Clone, Debug)]
pub struct PermissionApi {
    settings: SettingsRules,
}

impl PermissionApi {
    /// Serves `settings`.
    pub fn new(settings: SettingsRules) -> Self {
        Self { settings }
    }
}

#[tonic::async_trait]
impl PermissionService for PermissionApi {
    async fn get_settings(
        &self,
        _request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::GetSettingsResponse>, Status> {
        let settings = self.settings.get().await?;
        Ok(Response::new(pb::GetSettingsResponse {
            settings: Some(to_proto(settings)),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        let fields = SettingsField::from_mask(
            &request
                .update_mask
                .map(|mask| mask.paths)
                .unwrap_or_default(),
        )?;
        let settings = request.settings.unwrap_or_default();
        let input = SettingsInput {
            auto_create_organisations: settings.auto_create_organisations,
            auto_create_organisation_country: settings.auto_create_organisation_country,
        };
        let settings = self
            .settings
            .update(&actor, &settings.etag, &fields, &input)
            .await
            .map_err(|e| e.within("settings"))?;
        Ok(Response::new(pb::UpdateSettingsResponse {
            settings: Some(to_proto(settings)),
        }))
    }
}

fn to_proto(settings: Settings) -> pb::Settings {
    pb::Settings {
        etag: settings.etag(),
        auto_create_organisations: settings.auto_create_organisations,
        auto_create_organisation_country: settings.auto_create_organisation_country,
        update_time: Some(timestamp(settings.update_time)),
    }
}
