//! The settings row.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{Store, StoreFailure, change_log, entities::settings, finish, timestamp};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Settings},
};

/// The id of the one settings row.
const SETTINGS_ID: i32 = 1;

impl Store {
    /// The settings.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn settings(&self) -> Result<Settings> {
        let row = settings::Entity::find_by_id(SETTINGS_ID)
            .one(self.reader())
            .await?
            .ok_or_else(|| Error::Internal("the settings row is missing".into()))?;
        Ok(Settings {
            auto_create_organisations: row.auto_create_organisations,
            auto_create_organisation_country: row.auto_create_organisation_country,
            customer_group_support: row.customer_group_support,
            always_groups: super::decode_json(&row.always_groups, "always_groups")?,
            company_always_groups: super::decode_json(
                &row.company_always_groups,
                "company_always_groups",
            )?,
            default_group_id: row.default_group_id,
            update_time: timestamp(row.update_time)?,
            version: row.version,
        })
    }

    /// Writes `settings` over the stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"))]
    pub async fn update_settings(
        &self,
        settings: &Settings,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<Settings> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = settings::Entity::update_many()
                .set(settings::ActiveModel {
                    id: Set(SETTINGS_ID),
                    auto_create_organisations: Set(settings.auto_create_organisations),
                    auto_create_organisation_country: Set(settings
                        .auto_create_organisation_country
                        .clone()),
                    customer_group_support: Set(settings.customer_group_support),
                    always_groups: Set(super::encode_json(&settings.always_groups)),
                    company_always_groups: Set(super::encode_json(&settings.company_always_groups)),
                    update_time: Set(settings.update_time.as_microsecond()),
                    version: Set(settings.version),
                    default_group_id: Set(settings.default_group_id),
                })
                .filter(settings::Column::Id.eq(SETTINGS_ID))
                .filter(settings::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "settings",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(settings.clone())
        }
        .await;
        finish(tx, outcome, &[]).await
    }
}
