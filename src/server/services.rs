//! The services of one server, built in one place from the store and the configuration: the
//! domain services, the gRPC adapters over them, and the authenticator the auth layer asks.
//! Starting the server only mounts what is built here.

use std::sync::Arc;

use tonic::{
    codec::CompressionEncoding,
    service::{Routes, RoutesBuilder},
};

use super::Config;
use crate::{
    api::{
        AgentApi, ChangeApi, CommentApi, ContactGroupApi, CustomerApi, CustomerSourceApi,
        DirectoryApi, FieldCatalogueApi, GroupApi, OrganisationApi, PermissionApi, PriceListApi,
        PrivacyApi, SlaApi, TicketApi, WebhookApi,
    },
    auth::Authenticator,
    domain::customer_source::SourceRules,
    domain::{
        Agents, ChangeFeed, Comments, ContactGroups, CustomerSources, Customers, Directories,
        Escalations, FieldCatalogue, Groups, Organisations, Permissions, PriceLists, Privacy,
        SettingsRules, Sheets, Slas, Tickets, Tokens, Webhooks,
    },
    proto::v1::{
        agent_service_server::AgentServiceServer, change_service_server::ChangeServiceServer,
        comment_service_server::CommentServiceServer,
        contact_group_service_server::ContactGroupServiceServer,
        customer_service_server::CustomerServiceServer,
        customer_source_service_server::CustomerSourceServiceServer,
        directory_service_server::DirectoryServiceServer,
        field_catalogue_service_server::FieldCatalogueServiceServer,
        group_service_server::GroupServiceServer,
        organisation_service_server::OrganisationServiceServer,
        permission_service_server::PermissionServiceServer,
        price_list_service_server::PriceListServiceServer,
        privacy_service_server::PrivacyServiceServer, sla_service_server::SlaServiceServer,
        ticket_service_server::TicketServiceServer, webhook_service_server::WebhookServiceServer,
    },
    store::Store,
};

/// A generated service server with the server's message limits, taking gzip and zstd and
/// answering in whichever of them the client accepts.
macro_rules! configured {
    ($server:expr, $limits:expr) => {
        $server
            .max_decoding_message_size($limits.max_decoding_message_size)
            .max_encoding_message_size($limits.max_encoding_message_size)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd)
    };
}

/// What one server serves.
pub(super) struct Services {
    /// Turns bearer secrets into principals, for the auth layer.
    pub(super) authenticator: Arc<Authenticator>,
    /// Tokens, for registering the bootstrap token at start-up.
    pub(super) tokens: Tokens,
    /// The escalation scheduler and its watchers, run and closed by the server.
    pub(super) escalations: Escalations,
    /// The customer sources, whose syncs the server runs.
    pub(super) customer_sources: CustomerSources,
    /// The gRPC services of the API.
    pub(super) routes: Routes,
}

impl Services {
    /// Every service over `store`, configured by `config`.
    pub(super) fn new(store: &Store, config: &Config) -> Self {
        let clock = config.clock.clone();
        let permissions = Permissions::new(store.clone(), clock.clone(), config.metrics.clone());
        let authenticator = Arc::new(Authenticator::new(
            store.clone(),
            clock.clone(),
            config.metrics.clone(),
            permissions.clone(),
        ));
        let tokens = Tokens::new(store.clone(), clock.clone());
        let organisations = Organisations::new(store.clone(), clock.clone());
        let customers = Customers::new(store.clone(), clock.clone(), permissions.clone())
            .with_sources(SourceRules::new(&config.customer_sources));
        let customer_sources = CustomerSources::new(
            config.customer_sources.clone(),
            customers.clone(),
            store.clone(),
            clock.clone(),
        );
        let settings = SettingsRules::new(store.clone(), clock.clone());
        let groups = Groups::new(store.clone(), clock.clone());
        let contact_groups = ContactGroups::new(store.clone(), clock.clone());
        let price_lists = PriceLists::new(store.clone(), clock.clone(), contact_groups.clone());
        let agents = Agents::new(store.clone(), clock.clone());
        let slas = Slas::new(store.clone(), clock.clone());
        let tickets = Tickets::new(
            store.clone(),
            clock.clone(),
            permissions.clone(),
            slas.clone(),
            authenticator.clone(),
        )
        .with_link_templates(config.link_templates.clone());
        let escalations = Escalations::new(
            tickets.clone(),
            config.watch_backlog,
            config.metrics.clone(),
        );
        let comments = Comments::new(
            store.clone(),
            clock.clone(),
            tickets.clone(),
            config.attachment_limit,
        );
        let sheets = Sheets::new(tickets.clone(), comments.clone(), clock.clone());
        let limits = &config.limits;
        let mut routes = RoutesBuilder::default();
        routes
            .add_service(configured!(
                OrganisationServiceServer::new(OrganisationApi::new(
                    organisations,
                    customers.clone()
                )),
                limits
            ))
            .add_service(configured!(
                PrivacyServiceServer::new(PrivacyApi::new(Privacy::new(
                    customers.clone(),
                    comments.clone()
                ))),
                limits
            ))
            .add_service(configured!(
                CustomerServiceServer::new(CustomerApi::new(customers, sheets)),
                limits
            ))
            .add_service(configured!(
                CustomerSourceServiceServer::new(CustomerSourceApi::new(customer_sources.clone())),
                limits
            ))
            .add_service(configured!(
                PermissionServiceServer::new(PermissionApi::new(settings, permissions)),
                limits
            ))
            .add_service(configured!(
                GroupServiceServer::new(GroupApi::new(groups)),
                limits
            ))
            .add_service(configured!(
                ContactGroupServiceServer::new(ContactGroupApi::new(contact_groups)),
                limits
            ))
            .add_service(configured!(
                FieldCatalogueServiceServer::new(FieldCatalogueApi::new(FieldCatalogue::new(
                    store.clone(),
                    clock.clone()
                ))),
                limits
            ))
            .add_service(configured!(
                PriceListServiceServer::new(PriceListApi::new(price_lists)),
                limits
            ))
            .add_service(configured!(
                DirectoryServiceServer::new(DirectoryApi::new(Directories::new(
                    store.clone(),
                    clock.clone()
                ))),
                limits
            ))
            .add_service(configured!(
                AgentServiceServer::new(AgentApi::new(agents, tokens.clone())),
                limits
            ))
            .add_service(configured!(
                SlaServiceServer::new(SlaApi::new(slas)),
                limits
            ))
            .add_service(configured!(
                TicketServiceServer::new(TicketApi::new(
                    tickets,
                    escalations.clone(),
                    config.metrics.clone(),
                    config.watch_buffer,
                )),
                limits
            ))
            .add_service(configured!(
                CommentServiceServer::new(CommentApi::new(comments.clone())),
                limits
            ))
            .add_service(configured!(
                WebhookServiceServer::new(WebhookApi::new(Webhooks::new(
                    store.clone(),
                    clock.clone()
                ))),
                limits
            ))
            .add_service(configured!(
                ChangeServiceServer::new(ChangeApi::new(
                    ChangeFeed::new(comments),
                    config.metrics.clone()
                )),
                limits
            ));
        Self {
            authenticator,
            tokens,
            escalations,
            customer_sources,
            routes: routes.routes(),
        }
    }
}
