//! Customers: create (with domain assignment), read, update, list, validity, delete.

use std::{collections::BTreeMap, sync::Arc};

use uuid::Uuid;

use super::{
    changes::{self, check_etag, check_etag_of},
    customer_fields::{CustomerField, CustomerInput, apply, audit, check_consistency},
    domain_assignment::{self, Assignment},
    fields::{self, Violations},
    paging::{self, Page},
    rights::MasterDataWriter,
};
use crate::domain::{access::ServiceWork, catalogue::Checks};
use crate::{
    clock::Clock,
    error::{Error, PreconditionViolation, Result},
    model::{
        Actor, ChangeEvent, ChangeKind, Customer, ERASED_DOMAIN, Erasure, ErasureReport,
        Organisation, RecordType, ResourceType, Validity,
    },
    store::{
        Cursor, CustomerFilter, CustomerOrder, IdempotencyKey, Inserted, Scope, Store,
        ValidityFilter,
    },
};

/// What a list of customers shows, as a client asks for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Customers of this organisation (primary or secondary).
    pub organisation_id: Option<Uuid>,
    /// Substring of names, email or login.
    pub text: String,
    /// Exactly this type, or empty.
    pub customer_type: String,
    /// Exactly this validity.
    pub validity: Option<Validity>,
    /// Invalid ones too.
    pub include_invalid: bool,
    /// The order.
    pub order: CustomerOrder,
    /// Last changed at or after.
    pub updated_since: Option<jiff::Timestamp>,
    /// A custom field's key and the exact value it holds.
    pub custom_field: Option<(String, String)>,
}

/// Which customer to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerKey {
    /// By id.
    Id(Uuid),
    /// By any of its email addresses, case-insensitively.
    Email(String),
    /// By login, case-insensitively.
    Login(String),
}

/// How the organisations a customer names are called in the request, for error messages:
/// `organisation_id` in the API, `organisation` in an import row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrganisationFields {
    pub(crate) primary: &'static str,
    pub(crate) secondary: &'static str,
}

impl OrganisationFields {
    /// The names of the API's Customer message.
    pub(crate) const API: Self = Self {
        primary: "organisation_id",
        secondary: "secondary_organisation_ids",
    };
}

/// How an erasure treats what the person left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EraseOptions {
    /// Keep the comments the person wrote, with the tombstone as author.
    pub keep_conversation: bool,
    /// Erase even with open tickets, which stay open with the tombstone.
    pub keep_open_tickets: bool,
}

/// DeleteCustomer (no tickets at all, nothing kept) or EraseCustomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErasureKind {
    Delete,
    Erase(EraseOptions),
}

/// ConSol: a deactivated customer is not moved to another organisation (it may leave one).
fn refuse_moving_invalid(current: &Customer, next: &Customer) -> Result<()> {
    if next.validity.is_valid() {
        return Ok(());
    }
    let joined: Vec<PreconditionViolation> = next
        .organisation_ids()
        .filter(|id| !current.organisation_ids().any(|had| had == *id))
        .map(|id| PreconditionViolation {
            kind: "CUSTOMER_INVALID".into(),
            subject: id.to_string(),
            description: "an organisation the deactivated customer would join".into(),
        })
        .collect();
    if joined.is_empty() {
        return Ok(());
    }
    Err(Error::FailedPrecondition {
        reason: "CUSTOMER_INVALID",
        message: "a deactivated customer is not moved to another organisation: reactivate it \
                  first"
            .into(),
        violations: joined,
    })
}

/// What remains of `current` under its id when tickets or kept comments still name it: no
/// personal data, out of use.
fn tombstone(current: &Customer, now: jiff::Timestamp) -> Customer {
    Customer {
        id: current.id,
        email: format!("erased-{}@{}", current.id.simple(), ERASED_DOMAIN),
        secondary_emails: Vec::new(),
        login: None,
        first_name: String::new(),
        last_name: "Erased customer".into(),
        title: String::new(),
        phone: String::new(),
        mobile: String::new(),
        organisation_id: None,
        secondary_organisation_ids: Vec::new(),
        customer_type: String::new(),
        custom_fields: BTreeMap::new(),
        external_id: None,
        validity: Validity::Invalid,
        create_time: current.create_time,
        update_time: now,
        version: current.version + 1,
        // The link stays: an entry that comes back is refused, not filled in again.
        source: current.source.clone(),
        directory_id: current.directory_id,
    }
}

/// The customer rules, over the store.
#[derive(Clone, Debug)]
pub struct Customers {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    /// The ticket rights of whoever moves a customer's tickets (merges).
    pub(crate) permissions: super::Permissions,
    /// What the customer sources own, read-only to everyone but their syncs.
    pub(crate) sources: super::customer_source::SourceRules,
}

impl Customers {
    /// The rules over `store`, reading time from `clock` and ticket rights from
    /// `permissions`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, permissions: super::Permissions) -> Self {
        Self {
            permissions,
            store,
            clock,
            sources: super::customer_source::SourceRules::default(),
        }
    }

    /// The same rules, keeping what the customer sources own read-only.
    pub fn with_sources(mut self, sources: super::customer_source::SourceRules) -> Self {
        self.sources = sources;
        self
    }

    /// Creates a customer; with `request_id`, a retry returns the first result.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        writer: &MasterDataWriter,
        input: CustomerInput,
        request_id: Option<String>,
    ) -> Result<Customer> {
        let key = fields::idempotency_key("CreateCustomer", writer.actor(), request_id, &input);
        let inserted = self
            .insert(writer, &input, key.as_ref(), OrganisationFields::API)
            .await?;
        fields::created(inserted, key.as_ref(), async |id| {
            self.get(writer.contacts(), &CustomerKey::Id(id)).await
        })
        .await
    }

    /// The customer with `input`'s email address (primary or secondary, any validity), or a
    /// new one made from `input` as [`Customers::create`] makes it; `true` when it was made
    /// now. Calls for the same address at the same moment all answer the one customer: the
    /// losers of the race find the winner's.
    #[tracing::instrument(skip(self, input), level = "debug", err(level = "debug"))]
    pub async fn find_or_create(
        &self,
        writer: &MasterDataWriter,
        input: CustomerInput,
    ) -> Result<(Customer, bool)> {
        let lookup = super::email::lookup_form(&input.email);
        for _ in 0..3 {
            if let Some(found) = self
                .store
                .customer_by_email(&ServiceWork::RULE_CHECKS.master_data(), &lookup)
                .await?
            {
                if writer.contacts().admits_customer_record(&found) {
                    return Ok((found, false));
                }
                // One the writer may not read: answered as creating it would be (the address
                // is taken), not with the hidden record.
                return match self
                    .insert(writer, &input, None, OrganisationFields::API)
                    .await?
                {
                    Inserted::New(customer) => Ok((customer, true)),
                    Inserted::Replay { resource_id, .. } => {
                        Ok((self.read(writer, resource_id).await?, false))
                    }
                };
            }
            match self
                .insert(writer, &input, None, OrganisationFields::API)
                .await
            {
                Ok(Inserted::New(customer)) => return Ok((customer, true)),
                Ok(Inserted::Replay { resource_id, .. }) => {
                    return Ok((self.read(writer, resource_id).await?, false));
                }
                // Another call made it (or the organisation of its domain) meanwhile.
                Err(Error::AlreadyExists { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Err(Error::Unavailable(
            "the address kept changing hands while the customer was looked for; try again".into(),
        ))
    }

    /// Validates and inserts a new customer, assigning it an organisation by its email
    /// domain when it names none.
    pub(crate) async fn insert(
        &self,
        writer: &MasterDataWriter,
        input: &CustomerInput,
        key: Option<&IdempotencyKey>,
        names: OrganisationFields,
    ) -> Result<Inserted<Customer>> {
        let actor = writer.actor();
        let now = self.clock.now();
        let mut violations = Violations::default();
        let mut customer = Customer {
            id: Uuid::now_v7(),
            email: String::new(),
            secondary_emails: Vec::new(),
            login: None,
            first_name: String::new(),
            last_name: String::new(),
            title: String::new(),
            phone: String::new(),
            mobile: String::new(),
            organisation_id: None,
            secondary_organisation_ids: Vec::new(),
            customer_type: String::new(),
            custom_fields: BTreeMap::new(),
            external_id: None,
            validity: input.validity.unwrap_or(Validity::Valid),
            create_time: now,
            update_time: now,
            version: 1,
            directory_id: None,
            source: None,
        };
        for field in CustomerField::ALL {
            apply(&mut violations, &mut customer, field, input);
        }
        customer.source = input.source.clone();
        check_consistency(&mut violations, &customer);
        let catalogue = Checks::load(&self.store).await?;
        customer.customer_type = catalogue.customer_type(&mut violations, &customer.customer_type);
        catalogue.custom_fields(
            &mut violations,
            RecordType::Customer,
            &customer.custom_fields,
        );
        violations.finish()?;
        self.check_organisations(
            writer,
            &customer,
            None,
            &input.secondary_organisation_ids,
            names,
        )
        .await?;
        super::directory::check_filing(&self.store, writer.contacts(), None, customer.directory_id)
            .await?;

        // Two customers of a new domain may race to create its organisation; the loser
        // finds the winner's on its second attempt.
        for attempt in 0..2 {
            let assignment = match customer.organisation_id {
                Some(_) => Assignment::None,
                // The directory says the customer has no organisation.
                None if self.sources.owns(&customer, CustomerField::OrganisationId) => {
                    Assignment::None
                }
                None => domain_assignment::assignment_for(&self.store, &customer, now).await?,
            };
            let mut customer = customer.clone();
            let mut events = Vec::new();
            let new_organisation = match assignment {
                Assignment::None => None,
                Assignment::Existing(id) => {
                    customer.organisation_id = Some(id);
                    None
                }
                Assignment::New(org) => {
                    customer.organisation_id = Some(org.id);
                    events.push(changes::event(
                        actor,
                        now,
                        ResourceType::Organisation,
                        org.id,
                        ChangeKind::Created,
                        changes::diff(None, &super::organisation_fields::audit(&org)),
                    ));
                    Some(*org)
                }
            };
            events.push(changes::event(
                actor,
                now,
                ResourceType::Customer,
                customer.id,
                ChangeKind::Created,
                changes::diff(None, &audit(&customer)),
            ));
            let inserted = self
                .store
                .insert_customer(&customer, new_organisation.as_ref(), &events, key)
                .await;
            match inserted {
                Err(Error::AlreadyExists {
                    resource: "organisation",
                    ..
                }) if new_organisation.is_some() && attempt == 0 => continue,
                Err(error) => return Err(in_request_order(error, &customer, input)),
                Ok(inserted) => return Ok(inserted),
            }
        }
        Err(Error::Unavailable(
            "the organisation for this email domain changed concurrently; retry".into(),
        ))
    }

    /// Reads one customer within `scope`, whatever its validity.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn get(&self, scope: &Scope, key: &CustomerKey) -> Result<Customer> {
        let found = match key {
            CustomerKey::Id(id) => self.store.customer(scope, *id).await?,
            CustomerKey::Email(email) => {
                self.store
                    .customer_by_email(scope, &super::email::lookup_form(email))
                    .await?
            }
            CustomerKey::Login(login) => self.store.customer_by_login(scope, login).await?,
        };
        found.ok_or(Error::NotFound {
            resource: "customer",
        })
    }

    /// Changes `fields` of customer `id` to the values in `input`, if `etag` is current.
    #[tracing::instrument(skip(self, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        etag: &str,
        fields: &[CustomerField],
        input: &CustomerInput,
    ) -> Result<Customer> {
        let current = self.get(writer.contacts(), &CustomerKey::Id(id)).await?;
        check_etag("customer", &current.etag(), etag)?;
        self.change(
            writer,
            current,
            fields,
            input,
            None,
            OrganisationFields::API,
        )
        .await
    }

    /// Applies `fields` of `input` to `current`, and `validity` if given (imports set it
    /// with the fields; the API changes it through Deactivate/Reactivate), and saves the
    /// result.
    pub(crate) async fn change(
        &self,
        writer: &MasterDataWriter,
        current: Customer,
        fields: &[CustomerField],
        input: &CustomerInput,
        validity: Option<Validity>,
        names: OrganisationFields,
    ) -> Result<Customer> {
        let actor = writer.actor();
        let mut next = current.clone();
        let mut violations = Violations::default();
        for field in fields {
            apply(&mut violations, &mut next, *field, input);
        }
        if let Some(validity) = validity {
            next.validity = validity;
        }
        check_consistency(&mut violations, &next);
        // The catalogue checks what changes.
        let (new_type, new_fields) = (
            fields.contains(&CustomerField::Type),
            fields.contains(&CustomerField::CustomFields),
        );
        if new_type || new_fields {
            let catalogue = Checks::load(&self.store).await?;
            if new_type && next.customer_type != current.customer_type {
                next.customer_type = catalogue.customer_type(&mut violations, &next.customer_type);
            }
            if new_fields {
                catalogue.custom_fields(&mut violations, RecordType::Customer, &next.custom_fields);
            }
        }
        violations.finish()?;
        self.sources.check_change(actor, &current, &next)?;
        refuse_moving_invalid(&current, &next)?;
        self.check_organisations(
            writer,
            &next,
            Some(&current),
            &input.secondary_organisation_ids,
            names,
        )
        .await?;
        super::directory::check_filing(
            &self.store,
            writer.contacts(),
            current.directory_id,
            next.directory_id,
        )
        .await?;
        if next.validity.is_valid() && !current.validity.is_valid() {
            self.check_reactivation(writer, &next).await?;
        }
        let kind = match (current.validity.is_valid(), next.validity.is_valid()) {
            (true, false) => ChangeKind::Deactivated,
            (false, true) => ChangeKind::Reactivated,
            _ => ChangeKind::Updated,
        };
        self.save(actor, current, next.clone(), kind)
            .await
            .map_err(|e| in_request_order(e, &next, input))
    }

    /// One page of customers.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list(
        &self,
        scope: &Scope,
        query: &CustomerQuery,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Customer>> {
        let limit = paging::page_size(page_size)?;
        let mut violations = Violations::default();
        let text = fields::single_line(&mut violations, "text", &query.text, 200, false);
        let customer_type =
            fields::single_line(&mut violations, "type", &query.customer_type, 50, false);
        fields::custom_field_filter(&mut violations, query.custom_field.as_ref());
        violations.finish()?;
        let filter = CustomerFilter {
            organisation_id: query.organisation_id,
            text: crate::model::Fragment::of(&text),
            customer_type: (!customer_type.is_empty()).then_some(customer_type),
            validity: ValidityFilter::new(query.validity, query.include_invalid),
            updated_since: query.updated_since.map(|time| time.as_microsecond()),
            custom_field: query.custom_field.clone(),
        };
        // An organisation the caller may not read has, to it, no customers.
        if let Some(id) = filter.organisation_id
            && scope.hides_filed()
            && self.store.organisation(scope, id).await?.is_none()
        {
            return Ok(Page {
                items: Vec::new(),
                next_page_token: String::new(),
            });
        }
        let fingerprint = paging::fingerprint(&(&filter, query.order));
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_customers(scope, &filter, query.order, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |customer| {
            filter.cursor_after(query.order, customer)
        }))
    }

    /// Takes customer `id` out of use.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn deactivate(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        validity: Validity,
        etag: &str,
    ) -> Result<Customer> {
        let actor = writer.actor();
        if validity.is_valid() {
            return Err(Error::invalid(
                "validity",
                "must be VALIDITY_INVALID or VALIDITY_INVALID_TEMPORARILY",
            ));
        }
        let current = self.read(writer, id).await?;
        // Already so: a retry of a call that went through answers as the first did.
        if current.validity == validity {
            return Ok(current);
        }
        check_etag("customer", &current.etag(), etag)?;
        // The store refuses, inside the write, while an open ticket has the customer as main
        // or additional customer.
        let mut next = current.clone();
        next.validity = validity;
        self.sources.check_change(actor, &current, &next)?;
        self.save(actor, current, next, ChangeKind::Deactivated)
            .await
    }

    /// Puts customer `id` back into use, unless its primary organisation is invalid.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn reactivate(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        etag: &str,
    ) -> Result<Customer> {
        let actor = writer.actor();
        let current = self.read(writer, id).await?;
        if current.validity.is_valid() {
            return Ok(current);
        }
        check_etag("customer", &current.etag(), etag)?;
        let mut next = current.clone();
        next.validity = Validity::Valid;
        self.sources.check_change(actor, &current, &next)?;
        if !current.validity.is_valid() {
            self.check_reactivation(writer, &next).await?;
        }
        self.save(actor, current, next, ChangeKind::Reactivated)
            .await
    }

    /// Deletes customer `id` for good, as an erasure: once it has no ticket at all, nothing
    /// about the person remains (ConSol: "completely removed").
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn delete(&self, writer: &MasterDataWriter, id: Uuid, etag: &str) -> Result<()> {
        let current = self.current(writer, id, "etag", etag).await?;
        self.sources.check_removal(&current, "deleted")?;
        self.erase_current(writer.actor(), current, ErasureKind::Delete)
            .await?;
        Ok(())
    }

    /// Erases customer `id` (PrivacyService.EraseCustomer); with a non-empty `etag`, only
    /// the version it names.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn erase(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        etag: &str,
        options: EraseOptions,
    ) -> Result<ErasureReport> {
        let current = self.read(writer, id).await?;
        if !etag.is_empty() {
            check_etag("customer", &current.etag(), etag)?;
        }
        self.sources.check_removal(&current, "erased")?;
        self.erase_current(writer.actor(), current, ErasureKind::Erase(options))
            .await
    }

    async fn erase_current(
        &self,
        actor: &Actor,
        current: Customer,
        kind: ErasureKind,
    ) -> Result<ErasureReport> {
        if current.is_erased() {
            return Err(Error::NotFound {
                resource: "customer",
            });
        }
        let now = self.clock.now();
        let options = match kind {
            ErasureKind::Delete => EraseOptions::default(),
            ErasureKind::Erase(options) => options,
        };
        let erasure = Erasure {
            id: current.id,
            expected_version: current.version,
            keep_conversation: options.keep_conversation,
            keep_open_tickets: options.keep_open_tickets,
            refuse_tickets: kind == ErasureKind::Delete,
            tombstone: tombstone(&current, now),
            event: changes::event(
                actor,
                now,
                ResourceType::Customer,
                current.id,
                if kind == ErasureKind::Delete {
                    ChangeKind::Deleted
                } else {
                    ChangeKind::Erased
                },
                Vec::new(),
            ),
        };
        self.store.erase_customer(&erasure).await
    }

    /// The customer `id`, whatever its validity.
    /// Customer `id` as `writer` reads it: one it may not read is NOT_FOUND.
    async fn read(&self, writer: &MasterDataWriter, id: Uuid) -> Result<Customer> {
        self.get(writer.contacts(), &CustomerKey::Id(id)).await
    }

    /// The customer `id`, checked against the etag the client sent in `field`.
    pub(crate) async fn current(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
        field: &'static str,
        etag: &str,
    ) -> Result<Customer> {
        let current = self.read(writer, id).await?;
        check_etag_of(field, "customer", &current.etag(), etag)?;
        Ok(current)
    }

    /// Stores `next` over `current` with an event of `kind`, unless nothing changed.
    pub(crate) async fn save(
        &self,
        actor: &Actor,
        current: Customer,
        mut next: Customer,
        kind: ChangeKind,
    ) -> Result<Customer> {
        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            actor,
            next.update_time,
            ResourceType::Customer,
            next.id,
            kind,
            changes,
        );
        self.store
            .update_customers(&[(next.clone(), current.version)], &[event])
            .await?;
        Ok(next)
    }

    /// Every organisation `next` names that `current` did not must exist (for `writer`: one
    /// it may not read does not) and be valid: an invalid organisation takes no new customers.
    async fn check_organisations(
        &self,
        writer: &MasterDataWriter,
        next: &Customer,
        current: Option<&Customer>,
        requested: &[Uuid],
        names: OrganisationFields,
    ) -> Result<()> {
        let known: Vec<Uuid> = current
            .map(|c| c.organisation_ids().collect())
            .unwrap_or_default();
        // Secondary organisations are named by their place in the request.
        let named = next
            .organisation_id
            .map(|id| (names.primary.to_owned(), id))
            .into_iter()
            .chain(next.secondary_organisation_ids.iter().map(|id| {
                let field = match requested.iter().position(|r| r == id) {
                    Some(index) => format!("{}[{index}]", names.secondary),
                    None => names.secondary.to_owned(),
                };
                (field, *id)
            }));
        let mut violations = Violations::default();
        let mut invalid = Vec::new();
        for (field, id) in named {
            if known.contains(&id) {
                continue;
            }
            match self.store.organisation(writer.contacts(), id).await? {
                None => violations.add(field, format!("no organisation has the id {id}")),
                Some(org) if !org.validity.is_valid() => invalid.push(org),
                Some(_) => {}
            }
        }
        violations.finish()?;
        organisations_valid(&invalid)
    }

    /// A customer returning to use needs a valid primary organisation. The organisation is
    /// named only to a writer who may read it (it may be filed in a directory the writer
    /// cannot read, while the customer is not).
    async fn check_reactivation(
        &self,
        writer: &MasterDataWriter,
        customer: &Customer,
    ) -> Result<()> {
        let Some(id) = customer.organisation_id else {
            return Ok(());
        };
        match self
            .store
            .organisation(&ServiceWork::RULE_CHECKS.master_data(), id)
            .await?
        {
            Some(org) if !org.validity.is_valid() => {
                let named = if writer.contacts().admits_organisation_record(&org) {
                    format!("organisation {}", org.code)
                } else {
                    "the customer's organisation".to_owned()
                };
                Err(Error::FailedPrecondition {
                    reason: "ORGANISATION_INVALID",
                    message: format!(
                        "{named} is invalid: reactivate it or move the customer first"
                    ),
                    violations: vec![PreconditionViolation {
                        kind: "ORGANISATION_INVALID".into(),
                        subject: org.id.to_string(),
                        description: format!("{named} is invalid"),
                    }],
                })
            }
            _ => Ok(()),
        }
    }

    /// Records the events of customers changed together (domain assignment), in one write.
    pub(crate) async fn save_all(
        &self,
        changed: Vec<(Customer, i64)>,
        events: Vec<ChangeEvent>,
    ) -> Result<()> {
        self.store.update_customers(&changed, &events).await
    }
}

/// FAILED_PRECONDITION naming every invalid organisation in `invalid`.
pub(crate) fn organisations_valid(invalid: &[Organisation]) -> Result<()> {
    if invalid.is_empty() {
        return Ok(());
    }
    Err(Error::FailedPrecondition {
        reason: "ORGANISATION_INVALID",
        message: format!(
            "an invalid organisation takes no new customers: {}",
            invalid
                .iter()
                .map(|org| org.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        violations: invalid
            .iter()
            .map(|org| PreconditionViolation {
                kind: "ORGANISATION_INVALID".into(),
                subject: org.id.to_string(),
                description: format!("organisation {} is invalid", org.code),
            })
            .collect(),
    })
}

/// The store names a taken secondary address by its place in the stored, sorted list; the
/// client knows it by its place in the request.
fn in_request_order(error: Error, stored: &Customer, input: &CustomerInput) -> Error {
    let Error::AlreadyExists {
        resource,
        field,
        reason,
    } = error
    else {
        return error;
    };
    let position = field
        .strip_prefix("secondary_emails[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|index| index.parse::<usize>().ok())
        .and_then(|index| stored.secondary_emails.get(index))
        .and_then(|taken| {
            input.secondary_emails.iter().position(|raw| {
                super::email::normalise_email(raw)
                    .is_ok_and(|email| email.to_lowercase() == taken.to_lowercase())
            })
        });
    Error::AlreadyExists {
        resource,
        field: position.map_or(field, |position| format!("secondary_emails[{position}]")),
        reason,
    }
}
