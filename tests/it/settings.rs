//! PermissionService settings.

use clientele::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::*;

fn update(settings: pb::Settings, paths: &[&str]) -> pb::UpdateSettingsRequest {
    pb::UpdateSettingsRequest {
        settings: Some(settings),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

backend_tests! {
    async fn settings_start_with_auto_create_off_and_change_with_their_etag(server) {
        let mut client = server.permissions();
        let initial = client.get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner().settings.expect("settings");
        assert!(!initial.auto_create_organisations);
        assert_eq!(initial.auto_create_organisation_country, "");
        let changed = client
            .update_settings(update(
                pb::Settings { auto_create_organisations: true, auto_create_organisation_country: "ch".into(), ..initial.clone() },
                &["*"],
            ))
            .await
            .expect("update")
            .into_inner()
            .settings
            .expect("settings");
        assert!(changed.auto_create_organisations);
        assert_eq!(changed.auto_create_organisation_country, "CH");
        assert_ne!(changed.etag, initial.etag);
        let stale = client
            .update_settings(update(pb::Settings { auto_create_organisations: false, ..initial }, &["auto_create_organisations"]))
            .await;
        expect_code(stale, Code::Aborted);
    }

    async fn auto_create_needs_a_valid_country(server) {
        let mut client = server.permissions();
        let current = client.get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner().settings.expect("settings");
        let without_country = client
            .update_settings(update(pb::Settings { auto_create_organisations: true, ..current.clone() }, &["auto_create_organisations"]))
            .await;
        expect_invalid(without_country, "settings.auto_create_organisation_country");
        let bad_country = client
            .update_settings(update(pb::Settings { auto_create_organisation_country: "XX".into(), ..current.clone() }, &["auto_create_organisation_country"]))
            .await;
        expect_invalid(bad_country, "settings.auto_create_organisation_country");
        expect_invalid(client.update_settings(update(current.clone(), &["etag"])).await, "update_mask.paths[0]");
        let after = client.get_settings(pb::GetSettingsRequest {}).await.expect("get").into_inner().settings.expect("settings");
        assert_eq!(after, current);
    }
}
