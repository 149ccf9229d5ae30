//! Questions about rights: may this principal do that on this resource and why, and what may
//! it do on every group.

use super::{Asked, Permissions, Resource};
use crate::{
    domain::{
        access::{Decision, Effective, Reason, ServiceWork},
        rights::StaffReader,
    },
    error::{Error, Result},
    model::{Level, Subject},
};

impl Permissions {
    /// May `who` have `wanted` on `resource`, and why.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn check(
        &self,
        reader: &StaffReader,
        who: Asked,
        wanted: Level,
        resource: Resource,
    ) -> Result<Decision> {
        // The resource must exist, whoever asks; a contact the caller may not read does not.
        let mut ticket = None;
        let mut filed = None;
        match resource {
            Resource::Organisation(id) => {
                filed = self
                    .store
                    .organisation(reader.contacts(), id)
                    .await?
                    .ok_or(Error::NotFound {
                        resource: "organisation",
                    })?
                    .directory_id;
            }
            Resource::Customer(id) => {
                filed = self
                    .store
                    .customer(reader.contacts(), id)
                    .await?
                    .ok_or(Error::NotFound {
                        resource: "customer",
                    })?
                    .directory_id;
            }
            Resource::Group(id) => {
                self.store
                    .group(id)
                    .await?
                    .ok_or(Error::NotFound { resource: "group" })?;
            }
            Resource::Ticket(id) => {
                ticket = Some(
                    self.store
                        .ticket(&ServiceWork::RIGHTS_QUESTIONS.tickets(), id)
                        .await?
                        .ok_or(Error::NotFound { resource: "ticket" })?,
                );
            }
        }
        let subject = match who {
            Asked::Admin => return Ok(Decision::rule(true, Reason::Admin)),
            Asked::Agent(id) => {
                let agent = self
                    .store
                    .agent(id)
                    .await?
                    .ok_or(Error::NotFound { resource: "agent" })?;
                if !agent.validity.is_valid() {
                    return Ok(Decision::rule(false, Reason::PrincipalInvalid));
                }
                if let Resource::Organisation(_) | Resource::Customer(_) = resource {
                    return Ok(self.rights(Subject::Agent(id)).await?.explain_contact(
                        filed,
                        wanted,
                        agent.manage_customers,
                    ));
                }
                Subject::Agent(id)
            }
            Asked::Customer(id) => {
                // A customer the caller may not read is not there to be asked about.
                let customer =
                    self.store
                        .customer(reader.contacts(), id)
                        .await?
                        .ok_or(Error::NotFound {
                            resource: "customer",
                        })?;
                if !customer.validity.is_valid() {
                    return Ok(Decision::rule(false, Reason::PrincipalInvalid));
                }
                match resource {
                    Resource::Customer(_) | Resource::Organisation(_) if wanted == Level::Rw => {
                        return Ok(Decision::rule(false, Reason::CustomersReadOnly));
                    }
                    Resource::Customer(other) if other == id => {
                        return Ok(Decision::rule(true, Reason::SelfRecord));
                    }
                    Resource::Organisation(org)
                        if customer.organisation_ids().any(|o| o == org) =>
                    {
                        return Ok(Decision::rule(true, Reason::OwnOrganisation));
                    }
                    Resource::Customer(_) | Resource::Organisation(_) => {
                        return Ok(Decision::rule(false, Reason::NotOwn));
                    }
                    Resource::Group(_) | Resource::Ticket(_) => Subject::Customer(id),
                }
            }
        };
        let rights = self.rights(subject).await?;
        Ok(match (resource, ticket) {
            (_, Some(ticket)) => rights.explain_ticket(
                ticket.group_id,
                ticket.organisation_id,
                ticket.reader_group_id,
                ticket.customer_ids(),
                wanted,
            ),
            (Resource::Group(group_id), None) => rights.explain_group(group_id, wanted),
            // The other resources were answered above.
            (_, None) => Decision::rule(false, Reason::NoGrant),
        })
    }

    /// What `subject` may do on every group, and why.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn effective(
        &self,
        reader: &StaffReader,
        subject: Subject,
    ) -> Result<Vec<Effective>> {
        // A contact the reader may not read is as missing.
        if !self.reads_subject(reader, subject).await? {
            return Err(Error::invalid(
                "subject",
                format!("no {} has the id {}", subject.kind().as_str(), subject.id()),
            ));
        }
        self.valid_subjects(&[subject])
            .await
            .or_else(|error| match error {
                // An invalid subject has no rights at all; that is an answer, not an error.
                Error::FailedPrecondition { .. } => Ok(()),
                other => Err(other),
            })?;
        Ok(self.rights(subject).await?.effective())
    }
}
