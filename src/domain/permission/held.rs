//! The rights a principal holds: compiled once from what shapes them and kept until a change
//! that may change them commits.

use std::{collections::HashSet, sync::Arc};

use uuid::Uuid;

use super::Permissions;
use crate::{
    domain::access::{Holder, Principal, Rights, ServiceWork, Sources},
    error::{Error, Result},
    model::{Customer, Directory, Level, Subject},
    store::TicketScope,
};

impl Permissions {
    /// The tickets `principal` may read (`Level::Ro`) or work on (`Level::Rw`): the scope
    /// every ticket query of theirs is filtered by.
    pub async fn ticket_scope(&self, principal: &Principal, level: Level) -> Result<TicketScope> {
        let subject = match principal {
            Principal::Admin { .. } => return Ok(Rights::admin_scope()),
            Principal::Agent { agent_id, .. } => Subject::Agent(*agent_id),
            Principal::Customer { customer_id, .. } => Subject::Customer(*customer_id),
        };
        Ok(self.rights(subject).await?.scope(level).clone())
    }

    /// Whether customer `customer` may use group `group_id` for its own tickets at `level`.
    pub(crate) async fn customer_may_use(
        &self,
        customer: &Customer,
        group_id: Uuid,
        level: Level,
    ) -> Result<bool> {
        Ok(self
            .rights(Subject::Customer(customer.id))
            .await?
            .explain_group(group_id, level)
            .allowed)
    }

    /// The rights of `subject`. Kept until a change that may change rights commits (on this
    /// replica before the write returns; from another replica as its notification arrives,
    /// and within [`RIGHTS_TTL`] at the latest).
    pub(crate) async fn rights(&self, subject: Subject) -> Result<Arc<Rights>> {
        // The generation is read first: a change committed while the rights are read leaves
        // them marked with the generation before, so that they are read again.
        let generation = self.store.rights_generation();
        if let Some((read_at, rights)) = self.rights.get(&subject)
            && read_at == generation
        {
            self.metrics.rights_checked(true);
            return Ok(rights);
        }
        self.metrics.rights_checked(false);
        let rights = Arc::new(self.read_rights(subject, generation).await?);
        self.rights.insert(subject, (generation, rights.clone()));
        Ok(rights)
    }

    /// Reads what shapes the rights of `subject` and compiles them.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    async fn read_rights(&self, subject: Subject, generation: u64) -> Result<Rights> {
        let everything = ServiceWork::RIGHTS_QUESTIONS.master_data();
        let (holder, subjects) = match subject {
            Subject::Agent(id) => {
                let valid = self
                    .store
                    .agent(id)
                    .await?
                    .is_some_and(|agent| agent.validity.is_valid());
                (Holder::Agent { id, valid }, vec![subject])
            }
            Subject::Organisation(id) => {
                let org =
                    self.store
                        .organisation(&everything, id)
                        .await?
                        .ok_or(Error::NotFound {
                            resource: "organisation",
                        })?;
                let valid = org.validity.is_valid();
                (Holder::Organisation { id, valid }, vec![subject])
            }
            Subject::Customer(id) => match self.store.customer(&everything, id).await? {
                Some(customer) if customer.validity.is_valid() => {
                    let mut organisations = Vec::new();
                    for id in customer.organisation_ids() {
                        if let Some(org) = self.store.organisation(&everything, id).await?
                            && org.validity.is_valid()
                        {
                            organisations.push(org.id);
                        }
                    }
                    let mut subjects = vec![subject];
                    subjects.extend(organisations.iter().map(|id| Subject::Organisation(*id)));
                    let holder = Holder::Customer {
                        id,
                        valid: true,
                        organisations,
                    };
                    (holder, subjects)
                }
                _ => {
                    let holder = Holder::Customer {
                        id,
                        valid: false,
                        organisations: Vec::new(),
                    };
                    (holder, Vec::new())
                }
            },
        };
        let grants = if subjects.is_empty() {
            Vec::new()
        } else {
            self.store.grants_of(&subjects).await?
        };
        Ok(Rights::compile(Sources {
            holder,
            grants,
            settings: &self.store.settings().await?,
            valid_groups: self.valid_group_ids(generation).await?,
            directories: self.directories(generation).await?,
        }))
    }

    /// The ids of every valid group, read once per rights generation (and at most every
    /// `RIGHTS_TTL`).
    async fn valid_group_ids(&self, generation: u64) -> Result<Arc<HashSet<Uuid>>> {
        if let Some(ids) = self.valid_groups.get(generation) {
            return Ok(ids);
        }
        let ids: Arc<HashSet<Uuid>> =
            Arc::new(self.store.valid_group_ids().await?.into_iter().collect());
        self.valid_groups.put(generation, ids.clone());
        Ok(ids)
    }

    /// Every directory, read once per rights generation (and at most every `RIGHTS_TTL`).
    async fn directories(&self, generation: u64) -> Result<Arc<Vec<Directory>>> {
        if let Some(directories) = self.directories.get(generation) {
            return Ok(directories);
        }
        let directories = Arc::new(self.store.all_directories().await?);
        self.directories.put(generation, directories.clone());
        Ok(directories)
    }
}
