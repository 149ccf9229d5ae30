//! Domain assignment (DESIGN §2): a customer without organisation belongs to the valid
//! organisation with `domain_assignment` on that claims its email domain, or the most
//! specific parent domain; failing that, with `auto_create_organisations` on, to a new
//! organisation made from the domain. Free-mail domains never map.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    changes,
    customer::{Customers, organisations_valid},
    email_domain::{is_free_mail, self_and_parents},
    organisation_fields::{OrganisationInput, new_organisation},
    rights::MasterDataWriter,
};
use crate::domain::access::ServiceWork;
use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{ChangeKind, Customer, FieldChange, Organisation, ResourceType},
    store::Store,
};

/// Where domain assignment puts a new customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Assignment {
    /// Nowhere: the customer stays without organisation.
    None,
    /// To this existing organisation.
    Existing(Uuid),
    /// To this organisation, created with the customer.
    New(Box<Organisation>),
}

/// Where `customer` (which names no organisation) belongs by its email domain.
pub(crate) async fn assignment_for(
    store: &Store,
    customer: &Customer,
    now: jiff::Timestamp,
) -> Result<Assignment> {
    let domain = customer.email_domain();
    if is_free_mail(domain) {
        return Ok(Assignment::None);
    }
    let candidates: Vec<&str> = self_and_parents(domain).collect();
    if let Some(org) = store.organisation_assigned_to(&candidates).await? {
        return Ok(Assignment::Existing(org.id));
    }
    let settings = store.settings().await?;
    if !settings.auto_create_organisations {
        return Ok(Assignment::None);
    }
    // An organisation that appeared since the first look was made by a concurrent customer
    // of the same domain: join it. A claim by an organisation with assignment off, or the
    // business key taken by an organisation that does not claim the domain, means an
    // administrator decided otherwise: stay unassigned.
    let everything = ServiceWork::RULE_CHECKS.master_data();
    let claimant = match store.organisation_claiming(domain).await? {
        Some(id) => store.organisation(&everything, id).await?,
        None => None,
    };
    let namesake = store.organisation_by_code(&everything, domain).await?;
    if claimant.is_some() || namesake.is_some() {
        let joinable = claimant.into_iter().chain(namesake).find(|org| {
            org.domain_assignment
                && org.validity.is_valid()
                && org.email_domains.iter().any(|d| d == domain)
        });
        return Ok(joinable.map_or(Assignment::None, |org| Assignment::Existing(org.id)));
    }
    let input = OrganisationInput {
        code: domain.to_owned(),
        name: domain.to_owned(),
        country: settings.auto_create_organisation_country,
        email_domains: vec![domain.to_owned()],
        domain_assignment: true,
        ..OrganisationInput::default()
    };
    match new_organisation(&input, now) {
        Ok(org) => Ok(Assignment::New(Box::new(org))),
        Err(error) => {
            // A domain too long for a code, say: no organisation, not a failed create.
            tracing::info!(%domain, %error, "no organisation auto-created for this domain");
            Ok(Assignment::None)
        }
    }
}

impl Customers {
    /// Makes the valid customers without organisation whose email domain organisation `id`
    /// claims (most specifically) its customers; returns how many.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn apply_domain_assignment(
        &self,
        writer: &MasterDataWriter,
        id: Uuid,
    ) -> Result<u64> {
        let actor = writer.actor();
        let org = self
            .store
            .organisation(writer.contacts(), id)
            .await?
            .ok_or(Error::NotFound {
                resource: "organisation",
            })?;
        if !org.validity.is_valid() {
            organisations_valid(std::slice::from_ref(&org))?;
        }
        if !org.domain_assignment {
            return Err(Error::FailedPrecondition {
                reason: "DOMAIN_ASSIGNMENT_OFF",
                message: format!(
                    "organisation {} has domain_assignment off; turn it on first",
                    org.code
                ),
                violations: vec![PreconditionViolation {
                    kind: "DOMAIN_ASSIGNMENT_OFF".into(),
                    subject: org.id.to_string(),
                    description: "domain_assignment must be on".into(),
                }],
            });
        }
        let candidates = self
            .store
            .unassigned_customers_in(writer.contacts(), &org.email_domains)
            .await?;
        let mut owner_of: HashMap<String, Option<Uuid>> = HashMap::new();
        let now = self.clock.now();
        let mut changed = Vec::new();
        let mut events = Vec::new();
        for customer in candidates {
            // A customer source that maps the organisation decides it.
            if self.sources.owns(
                &customer,
                super::customer_fields::CustomerField::OrganisationId,
            ) {
                continue;
            }
            let domain = customer.email_domain().to_owned();
            let owner = match owner_of.get(&domain) {
                Some(owner) => *owner,
                None => {
                    let parents: Vec<&str> = self_and_parents(&domain).collect();
                    let owner = self
                        .store
                        .organisation_assigned_to(&parents)
                        .await?
                        .map(|o| o.id);
                    owner_of.insert(domain, owner);
                    owner
                }
            };
            if owner != Some(org.id) {
                continue;
            }
            let mut next = customer.clone();
            next.organisation_id = Some(org.id);
            next.version = customer.version + 1;
            next.update_time = now;
            events.push(changes::event(
                actor,
                now,
                ResourceType::Customer,
                customer.id,
                ChangeKind::Updated,
                vec![FieldChange {
                    field: "organisation_id".into(),
                    old: serde_json::Value::Null,
                    new: serde_json::json!(org.id),
                }],
            ));
            changed.push((next, customer.version));
        }
        let assigned = changed.len() as u64;
        if assigned > 0 {
            self.save_all(changed, events).await?;
        }
        Ok(assigned)
    }
}
