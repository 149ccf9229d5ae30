//! Granting: a subject's level on a group given, changed, taken away, listed, and set for
//! every subject of a group at once.

use std::collections::HashMap;

use uuid::Uuid;

use super::Permissions;
use crate::{
    domain::{
        access::ServiceWork,
        changes,
        fields::Violations,
        paging::{self, Page},
        rights::{Administrator, StaffReader},
    },
    error::{Error, PreconditionViolation, Result},
    model::{
        ChangeKind, FieldChange, Grant, GrantContext, GrantFilter, Group, Level, ResourceType,
        Subject, SubjectKind, Validity,
    },
};

/// What a grant call does to a grant of another level that the subject already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantMode {
    /// GrantPermission: adds a grant; another level already held is FAILED_PRECONDITION.
    Add,
    /// SetPermission: the level becomes `level`, whatever it was.
    Set,
}

impl Permissions {
    /// Grants `subject` `level` on `group_id` (in `context`, for organisations); with
    /// [`GrantMode::Set`] also changes the level of its grant. Returns the grant and the
    /// level it had before (none for a new grant). Granting the level already held changes
    /// nothing.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn grant(
        &self,
        admin: &Administrator,
        subject: Subject,
        group_id: Uuid,
        level: Level,
        context: GrantContext,
        mode: GrantMode,
    ) -> Result<(Grant, Option<Level>)> {
        check_context(subject.kind(), context)?;
        self.usable_group(group_id).await?;
        self.valid_subjects(&[subject]).await?;
        let now = self.clock.now();
        let existing = self.store.grant(subject, group_id, context).await?;
        let previous = existing.as_ref().map(|grant| grant.level);
        let (grant, kind, changes) = match existing {
            Some(grant) if grant.level == level => return Ok((grant, previous)),
            Some(grant) if mode == GrantMode::Add => {
                return Err(Error::FailedPrecondition {
                    reason: "GRANT_EXISTS",
                    message: format!(
                        "the subject already holds {} on this group; SetPermission changes the level",
                        grant.level.as_str().to_uppercase()
                    ),
                    violations: vec![PreconditionViolation {
                        kind: "GRANT_EXISTS".into(),
                        subject: grant.id.to_string(),
                        description: format!(
                            "holds {}: use SetPermission to change it, RevokePermission to take it away",
                            grant.level.as_str().to_uppercase()
                        ),
                    }],
                });
            }
            Some(grant) => (
                Grant {
                    level,
                    update_time: now,
                    ..grant.clone()
                },
                ChangeKind::Updated,
                vec![level_change(Some(grant.level), Some(level))],
            ),
            None => (
                Grant {
                    id: Uuid::now_v7(),
                    subject,
                    group_id,
                    context,
                    level,
                    create_time: now,
                    update_time: now,
                },
                ChangeKind::Created,
                grant_fields(subject, group_id, context, level),
            ),
        };
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Grant,
            grant.id,
            kind,
            changes,
        );
        self.store
            .write_grants(std::slice::from_ref(&grant), &[], &[event])
            .await?;
        Ok((grant, previous))
    }

    /// Takes away the grant of `subject` on `group_id` in `context`; false if there was none.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn revoke(
        &self,
        admin: &Administrator,
        subject: Subject,
        group_id: Uuid,
        context: GrantContext,
    ) -> Result<bool> {
        check_context(subject.kind(), context)?;
        let Some(grant) = self.store.grant(subject, group_id, context).await? else {
            return Ok(false);
        };
        let event = changes::event(
            admin.actor(),
            self.clock.now(),
            ResourceType::Grant,
            grant.id,
            ChangeKind::Deleted,
            vec![level_change(Some(grant.level), None)],
        );
        self.store.write_grants(&[], &[grant.id], &[event]).await?;
        Ok(true)
    }

    /// One page of the grants of a subject or of a group.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list(
        &self,
        reader: &StaffReader,
        filter: GrantFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Grant>> {
        if let GrantFilter::Subject(subject) = filter
            && !self.reads_subject(reader, subject).await?
        {
            return Ok(Page {
                items: Vec::new(),
                next_page_token: String::new(),
            });
        }
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&filter);
        let after: Option<Uuid> = paging::decode_token(page_token, &fingerprint)?;
        let items = self.store.list_grants(filter, after, limit + 1).await?;
        let mut page = paging::page(items, limit, &fingerprint, |grant| grant.id);
        // The grants of contacts the reader may not read are left out (the page may hold
        // fewer).
        let hidden = self
            .hidden_subjects(reader, page.items.iter().map(|g| g.subject))
            .await?;
        page.items
            .retain(|grant| !hidden.contains(&grant.subject.id()));
        Ok(page)
    }

    /// Whether `reader` reads `subject` (agents always; a customer or an organisation as its
    /// directory decides; one that does not exist reads as nothing).
    pub(super) async fn reads_subject(
        &self,
        reader: &StaffReader,
        subject: Subject,
    ) -> Result<bool> {
        Ok(self
            .hidden_subjects(reader, std::iter::once(subject))
            .await?
            .is_empty())
    }

    /// Of `subjects`, the ids of the customers and organisations `reader` may not read.
    async fn hidden_subjects(
        &self,
        reader: &StaffReader,
        subjects: impl Iterator<Item = Subject>,
    ) -> Result<std::collections::HashSet<Uuid>> {
        let (mut customers, mut organisations) = (Vec::new(), Vec::new());
        for subject in subjects {
            match subject {
                Subject::Agent(_) => {}
                Subject::Customer(id) => customers.push(id),
                Subject::Organisation(id) => organisations.push(id),
            }
        }
        self.store
            .hidden_contacts(reader.contacts(), &customers, &organisations)
            .await
    }

    /// Sets `level` (or none) for subjects of `kind` on `group_id` in one transaction: for
    /// `subject_ids`, or every valid subject of the kind when none are given. Returns how many
    /// grants changed.
    #[tracing::instrument(skip(self, admin, subject_ids), level = "debug", err(level = "debug"))]
    pub async fn set_group(
        &self,
        admin: &Administrator,
        group_id: Uuid,
        kind: SubjectKind,
        level: Option<Level>,
        context: GrantContext,
        subject_ids: Vec<Uuid>,
    ) -> Result<u64> {
        check_context(kind, context)?;
        self.usable_group(group_id).await?;
        let subjects: Vec<Uuid> = if subject_ids.is_empty() {
            self.store.valid_subjects(kind).await?
        } else {
            let subjects: Vec<Subject> = subject_ids
                .iter()
                .map(|id| Subject::of(kind, *id))
                .collect();
            self.valid_subjects(&subjects).await?;
            // A subject named twice is set once.
            let mut unique = subject_ids;
            unique.sort();
            unique.dedup();
            unique
        };
        let existing: HashMap<Uuid, Grant> = self
            .store
            .grants_on(group_id, kind, context)
            .await?
            .into_iter()
            .map(|grant| (grant.subject.id(), grant))
            .collect();
        let now = self.clock.now();
        let actor = admin.actor();
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        let mut events = Vec::new();
        for id in subjects {
            let subject = Subject::of(kind, id);
            match (existing.get(&id), level) {
                (Some(grant), None) => {
                    deletes.push(grant.id);
                    events.push(changes::event(
                        actor,
                        now,
                        ResourceType::Grant,
                        grant.id,
                        ChangeKind::Deleted,
                        vec![level_change(Some(grant.level), None)],
                    ));
                }
                (Some(grant), Some(level)) if grant.level != level => {
                    events.push(changes::event(
                        actor,
                        now,
                        ResourceType::Grant,
                        grant.id,
                        ChangeKind::Updated,
                        vec![level_change(Some(grant.level), Some(level))],
                    ));
                    puts.push(Grant {
                        level,
                        update_time: now,
                        ..grant.clone()
                    });
                }
                (None, Some(level)) => {
                    let grant = Grant {
                        id: Uuid::now_v7(),
                        subject,
                        group_id,
                        context,
                        level,
                        create_time: now,
                        update_time: now,
                    };
                    events.push(changes::event(
                        actor,
                        now,
                        ResourceType::Grant,
                        grant.id,
                        ChangeKind::Created,
                        grant_fields(subject, group_id, context, level),
                    ));
                    puts.push(grant);
                }
                _ => {}
            }
        }
        let changed = events.len() as u64;
        // Only spares the write lock when nothing changes. Equivalent mutant: `>=` commits an
        // empty transaction, which no reader can tell apart.
        if changed > 0 {
            self.store.write_grants(&puts, &deletes, &events).await?;
        }
        Ok(changed)
    }

    /// The group must exist (INVALID_ARGUMENT) and be valid (FAILED_PRECONDITION).
    async fn usable_group(&self, group_id: Uuid) -> Result<Group> {
        let group =
            self.store.group(group_id).await?.ok_or_else(|| {
                Error::invalid("group_id", format!("no group has the id {group_id}"))
            })?;
        if !group.validity.is_valid() {
            return Err(Error::FailedPrecondition {
                reason: "GROUP_INVALID",
                message: format!("group {} is invalid and takes no grants", group.name),
                violations: vec![PreconditionViolation {
                    kind: "GROUP_INVALID".into(),
                    subject: group.id.to_string(),
                    description: "reactivate the group first".into(),
                }],
            });
        }
        Ok(group)
    }

    /// Every subject must exist (INVALID_ARGUMENT) and be valid (FAILED_PRECONDITION).
    pub(super) async fn valid_subjects(&self, subjects: &[Subject]) -> Result<()> {
        let everything = ServiceWork::RIGHTS_QUESTIONS.master_data();
        let mut violations = Violations::default();
        let mut invalid = Vec::new();
        for (index, subject) in subjects.iter().enumerate() {
            let validity = match subject {
                Subject::Agent(id) => self.store.agent(*id).await?.map(|a| a.validity),
                Subject::Customer(id) => self
                    .store
                    .customer(&everything, *id)
                    .await?
                    .map(|c| c.validity),
                Subject::Organisation(id) => self
                    .store
                    .organisation(&everything, *id)
                    .await?
                    .map(|o| o.validity),
            };
            let field = if subjects.len() == 1 {
                "subject".to_owned()
            } else {
                format!("subject_ids[{index}]")
            };
            match validity {
                None => violations.add(
                    field,
                    format!("no {} has the id {}", subject.kind().as_str(), subject.id()),
                ),
                Some(Validity::Valid) => {}
                Some(_) => invalid.push(*subject),
            }
        }
        violations.finish()?;
        if invalid.is_empty() {
            return Ok(());
        }
        Err(Error::FailedPrecondition {
            reason: "SUBJECT_INVALID",
            message: "an invalid agent, customer or organisation takes no grants".into(),
            violations: invalid
                .iter()
                .map(|subject| PreconditionViolation {
                    kind: "SUBJECT_INVALID".into(),
                    subject: subject.id().to_string(),
                    description: format!("the {} is invalid", subject.kind().as_str()),
                })
                .collect(),
        })
    }
}

/// Organisations' grants name a context; agents' and customers' grants none.
fn check_context(kind: SubjectKind, context: GrantContext) -> Result<()> {
    match (kind, context) {
        (SubjectKind::Organisation, GrantContext::None) => Err(Error::invalid(
            "context",
            "an organisation's grant needs SAME_ORGANISATION or OTHER_ORGANISATIONS",
        )),
        (SubjectKind::Agent | SubjectKind::Customer, GrantContext::None)
        | (SubjectKind::Organisation, _) => Ok(()),
        _ => Err(Error::invalid(
            "context",
            "only organisations' grants have a context",
        )),
    }
}

fn level_change(old: Option<Level>, new: Option<Level>) -> FieldChange {
    FieldChange {
        field: "level".into(),
        old: serde_json::json!(old),
        new: serde_json::json!(new),
    }
}

fn grant_fields(
    subject: Subject,
    group_id: Uuid,
    context: GrantContext,
    level: Level,
) -> Vec<FieldChange> {
    let set = |field: &str, value: serde_json::Value| FieldChange {
        field: field.into(),
        old: serde_json::Value::Null,
        new: value,
    };
    vec![
        set("subject", serde_json::json!(subject)),
        set("group_id", serde_json::json!(group_id)),
        set("context", serde_json::json!(context)),
        set("level", serde_json::json!(level)),
    ]
}
