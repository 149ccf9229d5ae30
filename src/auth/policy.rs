//! The method policy: every RPC of every service and the roles that may call it at all. A
//! method missing from the table is denied to everyone; finer rules (grants, flags, what a
//! customer may read) are the domain's.

use super::Role;

/// The roles that may call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Callers(&'static [Role]);

impl Callers {
    /// Whether `role` may call the method.
    pub fn admit(self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// The roles, for tests and documentation.
    pub fn roles(self) -> &'static [Role] {
        self.0
    }
}

/// Administrators only.
const ADMINS: Callers = Callers(&[Role::Admin]);
/// Administrators and agents.
const STAFF: Callers = Callers(&[Role::Admin, Role::Agent]);
/// Every authenticated principal; the domain limits what customers see.
const ANYONE: Callers = Callers(&[Role::Admin, Role::Agent, Role::Customer]);

/// Every RPC and who may call it.
pub const POLICY: &[(&str, Callers)] = &[
    ("/clientele.v1.ChangeService/ListChanges", ANYONE),
    ("/clientele.v1.ChangeService/WatchChanges", ANYONE),
    ("/clientele.v1.ChangeService/GetHistory", ANYONE),
    ("/clientele.v1.WebhookService/CreateWebhook", ADMINS),
    ("/clientele.v1.WebhookService/GetWebhook", ADMINS),
    ("/clientele.v1.WebhookService/ListWebhooks", ADMINS),
    ("/clientele.v1.WebhookService/UpdateWebhook", ADMINS),
    ("/clientele.v1.WebhookService/DeleteWebhook", ADMINS),
    ("/clientele.v1.WebhookService/ListWebhookDeliveries", ADMINS),
    ("/clientele.v1.WebhookService/RetryWebhookDelivery", ADMINS),
    ("/clientele.v1.WebhookService/CreateActivity", ADMINS),
    ("/clientele.v1.WebhookService/ListActivities", STAFF),
    ("/clientele.v1.WebhookService/DeleteActivity", ADMINS),
    ("/clientele.v1.WebhookService/RunActivity", STAFF),
    (
        "/clientele.v1.OrganisationService/CreateOrganisation",
        STAFF,
    ),
    ("/clientele.v1.OrganisationService/GetOrganisation", ANYONE),
    (
        "/clientele.v1.OrganisationService/UpdateOrganisation",
        STAFF,
    ),
    (
        "/clientele.v1.OrganisationService/ListOrganisations",
        ANYONE,
    ),
    (
        "/clientele.v1.OrganisationService/DeactivateOrganisation",
        STAFF,
    ),
    (
        "/clientele.v1.OrganisationService/ReactivateOrganisation",
        STAFF,
    ),
    (
        "/clientele.v1.OrganisationService/ApplyDomainAssignment",
        STAFF,
    ),
    (
        "/clientele.v1.OrganisationService/ImportOrganisations",
        STAFF,
    ),
    ("/clientele.v1.CustomerService/CreateCustomer", STAFF),
    ("/clientele.v1.CustomerService/GetCustomer", ANYONE),
    ("/clientele.v1.CustomerService/UpdateCustomer", STAFF),
    ("/clientele.v1.CustomerService/ListCustomers", ANYONE),
    ("/clientele.v1.CustomerService/DeactivateCustomer", STAFF),
    ("/clientele.v1.CustomerService/ReactivateCustomer", STAFF),
    ("/clientele.v1.CustomerService/DeleteCustomer", STAFF),
    ("/clientele.v1.CustomerService/MergeCustomers", STAFF),
    ("/clientele.v1.CustomerService/FindOrCreateCustomer", STAFF),
    ("/clientele.v1.PrivacyService/EraseCustomer", STAFF),
    ("/clientele.v1.PrivacyService/ExportCustomerData", ANYONE),
    ("/clientele.v1.CustomerService/ImportCustomers", STAFF),
    ("/clientele.v1.CustomerService/RenderCustomerSheet", ANYONE),
    ("/clientele.v1.GroupService/CreateGroup", ADMINS),
    ("/clientele.v1.GroupService/GetGroup", STAFF),
    ("/clientele.v1.GroupService/UpdateGroup", ADMINS),
    ("/clientele.v1.GroupService/ListGroups", STAFF),
    (
        "/clientele.v1.ContactGroupService/CreateContactGroupKind",
        ADMINS,
    ),
    (
        "/clientele.v1.ContactGroupService/UpdateContactGroupKind",
        ADMINS,
    ),
    (
        "/clientele.v1.ContactGroupService/ListContactGroupKinds",
        STAFF,
    ),
    (
        "/clientele.v1.ContactGroupService/CreateContactGroup",
        ADMINS,
    ),
    ("/clientele.v1.ContactGroupService/GetContactGroup", STAFF),
    (
        "/clientele.v1.ContactGroupService/UpdateContactGroup",
        ADMINS,
    ),
    ("/clientele.v1.ContactGroupService/ListContactGroups", STAFF),
    (
        "/clientele.v1.ContactGroupService/AddContactGroupMembers",
        STAFF,
    ),
    (
        "/clientele.v1.ContactGroupService/RemoveContactGroupMembers",
        STAFF,
    ),
    (
        "/clientele.v1.ContactGroupService/ListContactGroupMembers",
        STAFF,
    ),
    (
        "/clientele.v1.ContactGroupService/ListContactGroupMemberships",
        STAFF,
    ),
    (
        "/clientele.v1.FieldCatalogueService/CreateCustomerType",
        ADMINS,
    ),
    (
        "/clientele.v1.FieldCatalogueService/UpdateCustomerType",
        ADMINS,
    ),
    (
        "/clientele.v1.FieldCatalogueService/ListCustomerTypes",
        STAFF,
    ),
    (
        "/clientele.v1.FieldCatalogueService/CreateFieldDefinition",
        ADMINS,
    ),
    (
        "/clientele.v1.FieldCatalogueService/UpdateFieldDefinition",
        ADMINS,
    ),
    (
        "/clientele.v1.FieldCatalogueService/ListFieldDefinitions",
        STAFF,
    ),
    ("/clientele.v1.DirectoryService/CreateDirectory", ADMINS),
    ("/clientele.v1.DirectoryService/GetDirectory", STAFF),
    ("/clientele.v1.DirectoryService/UpdateDirectory", ADMINS),
    ("/clientele.v1.DirectoryService/ListDirectories", STAFF),
    (
        "/clientele.v1.CustomerSourceService/ListCustomerSources",
        ADMINS,
    ),
    (
        "/clientele.v1.CustomerSourceService/SyncCustomerSource",
        ADMINS,
    ),
    ("/clientele.v1.PriceListService/CreatePriceList", ADMINS),
    ("/clientele.v1.PriceListService/GetPriceList", STAFF),
    ("/clientele.v1.PriceListService/UpdatePriceList", ADMINS),
    ("/clientele.v1.PriceListService/ListPriceLists", STAFF),
    ("/clientele.v1.PriceListService/GetEffectivePrices", ANYONE),
    ("/clientele.v1.PermissionService/GetSettings", ADMINS),
    ("/clientele.v1.PermissionService/UpdateSettings", ADMINS),
    ("/clientele.v1.PermissionService/GrantPermission", ADMINS),
    ("/clientele.v1.PermissionService/SetPermission", ADMINS),
    ("/clientele.v1.PermissionService/RevokePermission", ADMINS),
    ("/clientele.v1.PermissionService/ListGrants", STAFF),
    (
        "/clientele.v1.PermissionService/SetGroupPermissions",
        ADMINS,
    ),
    ("/clientele.v1.PermissionService/CheckPermission", STAFF),
    (
        "/clientele.v1.PermissionService/GetEffectivePermissions",
        STAFF,
    ),
    ("/clientele.v1.AgentService/CreateAgent", ADMINS),
    ("/clientele.v1.AgentService/GetAgent", STAFF),
    ("/clientele.v1.AgentService/UpdateAgent", ADMINS),
    ("/clientele.v1.AgentService/ListAgents", STAFF),
    ("/clientele.v1.AgentService/CreateToken", ADMINS),
    ("/clientele.v1.AgentService/ListTokens", ADMINS),
    ("/clientele.v1.AgentService/RevokeToken", ANYONE),
    ("/clientele.v1.AgentService/WhoAmI", ANYONE),
    ("/clientele.v1.SlaService/CreateCalendar", ADMINS),
    ("/clientele.v1.SlaService/GetCalendar", STAFF),
    ("/clientele.v1.SlaService/UpdateCalendar", ADMINS),
    ("/clientele.v1.SlaService/ListCalendars", STAFF),
    ("/clientele.v1.SlaService/CreateSlaPolicy", ADMINS),
    ("/clientele.v1.SlaService/GetSlaPolicy", STAFF),
    ("/clientele.v1.SlaService/UpdateSlaPolicy", ADMINS),
    ("/clientele.v1.SlaService/ListSlaPolicies", STAFF),
    ("/clientele.v1.TicketService/CreateTicket", ANYONE),
    ("/clientele.v1.TicketService/GetTicket", ANYONE),
    ("/clientele.v1.TicketService/UpdateTicket", ANYONE),
    ("/clientele.v1.TicketService/ListTickets", ANYONE),
    ("/clientele.v1.TicketService/TransferTickets", STAFF),
    ("/clientele.v1.TicketService/MergeTickets", STAFF),
    ("/clientele.v1.TicketService/GetTicketHistory", ANYONE),
    (
        "/clientele.v1.TicketService/GetOrganisationOverview",
        ANYONE,
    ),
    ("/clientele.v1.TicketService/GetCustomerOverview", ANYONE),
    ("/clientele.v1.TicketService/WatchEscalations", ANYONE),
    ("/clientele.v1.CommentService/CreateComment", ANYONE),
    ("/clientele.v1.CommentService/GetComment", ANYONE),
    ("/clientele.v1.CommentService/ListComments", ANYONE),
    ("/clientele.v1.CommentService/DeleteComment", ANYONE),
    ("/clientele.v1.CommentService/UndeleteComment", ANYONE),
    ("/clientele.v1.CommentService/UploadAttachment", ANYONE),
    ("/clientele.v1.CommentService/DownloadAttachment", ANYONE),
    ("/clientele.v1.CommentService/ListAttachments", ANYONE),
    ("/clientele.v1.CommentService/DeleteAttachment", ANYONE),
    ("/clientele.v1.CommentService/UndeleteAttachment", ANYONE),
];

/// Who may call the method at `path` (`/package.Service/Method`), if it is in the table.
pub fn callers(path: &str) -> Option<Callers> {
    POLICY
        .iter()
        .find(|(method, _)| *method == path)
        .map(|(_, callers)| *callers)
}

/// Health checks and server reflection need no token.
pub fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}
