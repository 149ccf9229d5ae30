//! Comments (DESIGN §2 "Comment"): on tickets the conversation with visibility PUBLIC,
//! INTERNAL or PRIVATE; on organisations and customers agents' notes. Soft delete and
//! undelete; the effects of a comment on its ticket's SLA clocks.

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use super::{
    Tickets,
    changes::{self, check_etag},
    fields::{self, Violations},
    paging::{self, Page},
};
use crate::{
    clock::Clock,
    domain::access::Principal,
    error::{Error, PreconditionViolation, Result},
    model::{
        ChangeKind, Comment, CommentParent, DetailsAccess, FieldChange, Level, Party, ResourceType,
        Ticket, Visibility,
    },
    store::{CommentCursor, CommentFilter, CommentScope, Store},
};

/// The longest comment text, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most recipients of one private comment.
pub const MAX_RECIPIENTS: usize = 50;

/// The values a client sends for a comment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommentInput {
    /// What it is written on.
    pub parent: Option<CommentParent>,
    /// The text.
    pub body: String,
    /// Who may read it; `None` means public.
    pub visibility: Option<Visibility>,
    /// Further readers of a private comment.
    pub recipients: Vec<Party>,
}

/// What a list of comments shows, as a client asks for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommentQuery {
    /// Comments on this parent.
    pub parent: Option<CommentParent>,
    /// Comments by this author.
    pub author: Option<Party>,
    /// Written at or after.
    pub created_from: Option<Timestamp>,
    /// Written before.
    pub created_until: Option<Timestamp>,
    /// Substring of the text.
    pub text: String,
    /// Deleted ones too.
    pub include_deleted: bool,
    /// Newest first (else oldest first).
    pub newest_first: bool,
}

/// The comment rules, over the store.
#[derive(Clone, Debug)]
pub struct Comments {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tickets: Tickets,
    /// The largest attachment, in bytes.
    pub(crate) attachment_limit: u64,
}

/// The party a principal is, as author or reader of comments.
pub fn party_of(principal: &Principal) -> Party {
    match principal {
        Principal::Admin { token_id } => Party::Admin(*token_id),
        Principal::Agent { agent_id, .. } => Party::Agent(*agent_id),
        Principal::Customer { customer_id, .. } => Party::Customer(*customer_id),
    }
}

impl Comments {
    /// The rules over `store`, reading time from `clock`, tickets through `tickets`;
    /// attachments may be up to `attachment_limit` bytes.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        tickets: Tickets,
        attachment_limit: u64,
    ) -> Self {
        Self {
            store,
            clock,
            tickets,
            attachment_limit,
        }
    }

    /// What `principal` may see of the comments.
    pub(crate) async fn scope(&self, principal: &Principal) -> Result<CommentScope> {
        let staff = !matches!(principal, Principal::Customer { .. });
        Ok(CommentScope {
            tickets: self.tickets.scope(principal, Level::Ro).await?,
            notes: principal.details_access() != DetailsAccess::None,
            contacts: principal.scope(),
            internal: staff,
            reader: party_of(principal),
        })
    }

    /// Writes a comment; with `request_id`, a retry returns the first result.
    #[tracing::instrument(skip(self, principal, input), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        principal: &Principal,
        input: CommentInput,
        request_id: Option<String>,
    ) -> Result<Comment> {
        let author = party_of(principal);
        let key = fields::idempotency_key("CreateComment", &principal.actor(), request_id, &input);
        let mut violations = Violations::default();
        let body = body(&mut violations, &input.body);
        let visibility = input.visibility.unwrap_or(Visibility::Public);
        if !author.is_staff() && visibility == Visibility::Internal {
            violations.add(
                "visibility",
                "customers write PUBLIC or PRIVATE comments; INTERNAL ones are for agents",
            );
        }
        let recipients = recipients(&mut violations, &input.recipients, visibility, author);
        if input.parent.is_none() {
            violations.add(
                "parent",
                "is required: a ticket, an organisation or a customer",
            );
        }
        violations.finish()?;
        let Some(parent) = input.parent else {
            return Err(Error::invalid("parent", "is required"));
        };
        let ticket = self.writable_parent(principal, parent).await?;
        self.check_recipients(principal, parent, ticket.as_ref(), &recipients)
            .await?;

        // A ticket changed meanwhile is read again: the comment's effect applies to the
        // ticket as it is.
        let mut ticket = ticket;
        for attempt in 0..4 {
            if let Some(ticket) = &ticket {
                crate::domain::ticket::refuse_merged(ticket)?;
            }
            let now = self.clock.now();
            let comment = Comment {
                id: Uuid::now_v7(),
                parent,
                author,
                body: body.clone(),
                visibility,
                recipients: recipients.clone(),
                attachments: Vec::new(),
                redacted: false,
                create_time: now,
                update_time: now,
                delete_time: None,
                version: 1,
            };
            let actor = principal.actor();
            let event = changes::event(
                &actor,
                now,
                ResourceType::Comment,
                comment.id,
                ChangeKind::Created,
                vec![
                    created("parent", serde_json::json!(parent)),
                    created("visibility", serde_json::json!(visibility)),
                    created("recipients", serde_json::json!(recipients)),
                ],
            );
            let effect = match &ticket {
                Some(ticket) => {
                    self.tickets
                        .after_comment(
                            ticket,
                            &actor,
                            !author.is_staff(),
                            visibility == Visibility::Public,
                            now,
                        )
                        .await?
                }
                None => None,
            };
            match self
                .store
                .insert_comment(&comment, &event, key.as_ref(), effect.as_ref())
                .await
            {
                Ok(inserted) => {
                    return fields::created(inserted, key.as_ref(), async |id| {
                        self.get(principal, id).await
                    })
                    .await;
                }
                Err(Error::StaleEtag { resource: "ticket" }) if attempt < 3 => {
                    ticket = Some(
                        self.tickets
                            .writable(principal, parent.id())
                            .await
                            .map_err(unknown_parent(parent))?,
                    );
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::Unavailable(
            "the ticket kept changing while the comment was written; retry".into(),
        ))
    }

    /// Reads one comment; a private one not addressed to the caller as a stub.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn get(&self, principal: &Principal, id: Uuid) -> Result<Comment> {
        let scope = self.scope(principal).await?;
        let comment = self
            .store
            .comment(&scope, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "comment",
            })?;
        Ok(present(comment, scope.reader))
    }

    /// One page of the comments the caller may see.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn list(
        &self,
        principal: &Principal,
        query: &CommentQuery,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Comment>> {
        let limit = paging::page_size(page_size)?;
        let mut violations = Violations::default();
        let text = fields::single_line(&mut violations, "text", &query.text, 200, false);
        if let (Some(from), Some(until)) = (query.created_from, query.created_until)
            && until <= from
        {
            violations.add("created_before", "must be after created_after");
        }
        violations.finish()?;
        if let Some(CommentParent::Organisation(_) | CommentParent::Customer(_)) = query.parent {
            needs_details(principal, DetailsAccess::Read)?;
        }
        let filter = CommentFilter {
            parent: query.parent,
            author: query.author,
            created_from: query.created_from.map(Timestamp::as_microsecond),
            created_until: query.created_until.map(Timestamp::as_microsecond),
            text: (!text.is_empty()).then_some(text),
            include_deleted: query.include_deleted,
            newest_first: query.newest_first,
        };
        let fingerprint = paging::fingerprint(&filter);
        let cursor: Option<CommentCursor> = paging::decode_token(page_token, &fingerprint)?;
        let scope = self.scope(principal).await?;
        let items = self
            .store
            .list_comments(&scope, &filter, cursor.as_ref(), limit + 1)
            .await?;
        let mut page = paging::page(items, limit, &fingerprint, |comment| CommentCursor {
            time: comment.create_time.as_microsecond(),
            id: comment.id,
        });
        page.items = page
            .items
            .into_iter()
            .map(|comment| present(comment, scope.reader))
            .collect();
        Ok(page)
    }

    /// Deletes (softly, with `deleted`) or restores a comment.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn set_deleted(
        &self,
        principal: &Principal,
        id: Uuid,
        etag: &str,
        deleted: bool,
    ) -> Result<Comment> {
        let scope = self.scope(principal).await?;
        let current = self
            .store
            .comment(&scope, id)
            .await?
            .ok_or(Error::NotFound {
                resource: "comment",
            })?;
        let reader = scope.reader;
        self.may_delete(principal, &current).await?;
        // Already so: a retry of a call that went through answers as the first did.
        if current.delete_time.is_some() == deleted {
            return Ok(present(current, reader));
        }
        check_etag("comment", &current.etag(), etag)?;
        let now = self.clock.now();
        let mut next = current.clone();
        next.delete_time = deleted.then_some(now);
        next.update_time = now;
        next.version = current.version + 1;
        let event = changes::event(
            &principal.actor(),
            now,
            ResourceType::Comment,
            id,
            if deleted {
                ChangeKind::Deleted
            } else {
                ChangeKind::Undeleted
            },
            vec![FieldChange {
                field: "delete_time".into(),
                old: serde_json::json!(current.delete_time.map(|t| t.to_string())),
                new: serde_json::json!(next.delete_time.map(|t| t.to_string())),
            }],
        );
        self.store
            .update_comment(&next, current.version, &event)
            .await?;
        Ok(present(next, reader))
    }

    /// Whether `principal` may delete and restore `comment` and its files: its author, staff
    /// who may write on its parent, or an admin; on a note, only with details_access WRITE.
    pub(crate) async fn may_delete(&self, principal: &Principal, comment: &Comment) -> Result<()> {
        if !matches!(comment.parent, CommentParent::Ticket(_)) {
            needs_details(principal, DetailsAccess::Write)?;
        }
        if comment.author != party_of(principal)
            && !self.moderates(principal, comment.parent).await?
        {
            return Err(Error::denied(
                "NOT_AUTHOR",
                "only its author, an agent who may write on its parent, or an admin may delete or restore a comment or its files",
            ));
        }
        Ok(())
    }

    /// Whether `principal` is staff that may write on `parent` (and so moderate its
    /// comments).
    async fn moderates(&self, principal: &Principal, parent: CommentParent) -> Result<bool> {
        Ok(match (principal, parent) {
            (Principal::Customer { .. }, _) => false,
            (Principal::Admin { .. }, _) => true,
            (_, CommentParent::Ticket(id)) => match self.tickets.writable(principal, id).await {
                Ok(_) => true,
                // Not allowed to write on it (or not even to read it): no moderator.
                Err(Error::PermissionDenied { .. } | Error::NotFound { .. }) => false,
                Err(other) => return Err(other),
            },
            (_, CommentParent::Organisation(_) | CommentParent::Customer(_)) => {
                principal.details_access() == DetailsAccess::Write
            }
        })
    }

    /// Checks that `principal` may write on `parent`; for a ticket, returns it.
    async fn writable_parent(
        &self,
        principal: &Principal,
        parent: CommentParent,
    ) -> Result<Option<Ticket>> {
        match parent {
            CommentParent::Ticket(id) => self
                .tickets
                .writable(principal, id)
                .await
                .map(Some)
                .map_err(unknown_parent(parent)),
            CommentParent::Organisation(id) => {
                needs_details(principal, DetailsAccess::Write)?;
                self.store
                    .organisation(&principal.scope(), id)
                    .await?
                    .ok_or_else(|| unknown(parent))?;
                Ok(None)
            }
            CommentParent::Customer(id) => {
                needs_details(principal, DetailsAccess::Write)?;
                self.store
                    .customer(&principal.scope(), id)
                    .await?
                    .ok_or_else(|| unknown(parent))?;
                Ok(None)
            }
        }
    }

    /// Every recipient must exist, be valid and be able to read the parent.
    async fn check_recipients(
        &self,
        author: &Principal,
        parent: CommentParent,
        ticket: Option<&Ticket>,
        recipients: &[Party],
    ) -> Result<()> {
        let mut violations = Violations::default();
        let mut unable = Vec::new();
        for (index, party) in recipients.iter().enumerate() {
            let field = format!("recipients[{index}]");
            let principal = match *party {
                Party::Agent(id) => match self.store.agent(id).await? {
                    Some(agent) if agent.validity.is_valid() => Principal::Agent {
                        token_id: Uuid::nil(),
                        agent_id: agent.id,
                        manage_customers: agent.manage_customers,
                        details: agent.details_access,
                        contacts: self
                            .tickets
                            .permissions
                            .rights(crate::model::Subject::Agent(agent.id))
                            .await?
                            .contacts(),
                    },
                    _ => {
                        violations.add(field, format!("no valid agent has the id {id}"));
                        continue;
                    }
                },
                // A customer the author may not read is, to it, no customer.
                Party::Customer(id) => match self.store.customer(&author.scope(), id).await? {
                    Some(customer) if customer.validity.is_valid() => Principal::Customer {
                        token_id: Uuid::nil(),
                        customer_id: customer.id,
                        organisation_ids: customer.organisation_ids().collect(),
                    },
                    _ => {
                        violations.add(field, format!("no valid customer has the id {id}"));
                        continue;
                    }
                },
                Party::Admin(_) => {
                    violations.add(field, "name an agent or a customer");
                    continue;
                }
            };
            let reads = match (parent, ticket, &principal) {
                (CommentParent::Ticket(_), Some(ticket), _) => {
                    let scope = self.tickets.scope(&principal, Level::Ro).await?;
                    scope.admits_ticket(ticket)
                }
                // Notes: those who may read supplementary details, of a contact they read.
                (CommentParent::Organisation(id), _, _) => {
                    principal.details_access() != DetailsAccess::None
                        && self
                            .store
                            .organisation(&principal.scope(), id)
                            .await?
                            .is_some()
                }
                (CommentParent::Customer(id), _, _) => {
                    principal.details_access() != DetailsAccess::None
                        && self.store.customer(&principal.scope(), id).await?.is_some()
                }
                (CommentParent::Ticket(_), None, _) => false,
            };
            if !reads {
                unable.push(*party);
            }
        }
        violations.finish()?;
        if unable.is_empty() {
            return Ok(());
        }
        Err(Error::FailedPrecondition {
            reason: "RECIPIENT_CANNOT_READ",
            message: "a recipient of a private comment must be able to read what it is written on"
                .into(),
            violations: unable
                .iter()
                .map(|party| PreconditionViolation {
                    kind: "RECIPIENT_CANNOT_READ".into(),
                    subject: party.id().to_string(),
                    description: format!("this {} may not read the parent", party.kind()),
                })
                .collect(),
        })
    }
}

/// A comment as `reader` may see it: a private one not addressed to it as a stub.
pub(crate) fn present(mut comment: Comment, reader: Party) -> Comment {
    if comment.visibility == Visibility::Private && !comment.addressed_to(reader) {
        comment.body.clear();
        comment.recipients.clear();
        comment.attachments.clear();
        comment.redacted = true;
    }
    comment
}

fn created(field: &str, value: serde_json::Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old: serde_json::Value::Null,
        new: value,
    }
}

/// The text: not blank, at most 64 KiB; kept as written.
fn body(violations: &mut Violations, raw: &str) -> String {
    if raw.trim().is_empty() {
        violations.add("body", "is required");
    } else if raw.len() > MAX_BODY_BYTES {
        violations.add(
            "body",
            format!("must be at most {MAX_BODY_BYTES} bytes (64 KiB)"),
        );
    } else if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        violations.add("body", "must not contain control characters");
    }
    raw.to_owned()
}

/// Recipients: only for private comments, agents or customers, each once, not the author.
fn recipients(
    violations: &mut Violations,
    raw: &[Party],
    visibility: Visibility,
    author: Party,
) -> Vec<Party> {
    if raw.is_empty() {
        return Vec::new();
    }
    if visibility != Visibility::Private {
        violations.add("recipients", "only a PRIVATE comment has recipients");
        return Vec::new();
    }
    if raw.len() > MAX_RECIPIENTS {
        violations.add(
            "recipients",
            format!("must name at most {MAX_RECIPIENTS} recipients"),
        );
        return Vec::new();
    }
    let mut parties: Vec<Party> = Vec::with_capacity(raw.len());
    for (index, party) in raw.iter().enumerate() {
        if *party == author {
            violations.add(format!("recipients[{index}]"), "is the author");
        } else if parties.contains(party) {
            violations.add(format!("recipients[{index}]"), "is named twice");
        } else {
            parties.push(*party);
        }
    }
    parties.sort();
    parties
}

/// The field that names `parent` in a request.
fn parent_field(parent: CommentParent) -> &'static str {
    match parent {
        CommentParent::Ticket(_) => "parent.ticket_id",
        CommentParent::Organisation(_) => "parent.organisation_id",
        CommentParent::Customer(_) => "parent.customer_id",
    }
}

fn unknown(parent: CommentParent) -> Error {
    Error::invalid(
        parent_field(parent),
        format!("no {} you may read has this id", parent.kind()),
    )
}

/// A ticket the caller may not read is named like a missing one.
fn unknown_parent(parent: CommentParent) -> impl Fn(Error) -> Error {
    move |error| match error {
        Error::NotFound { .. } => unknown(parent),
        other => other,
    }
}

/// PERMISSION_DENIED unless `principal` holds `needed` (or more) on supplementary details:
/// the notes on organisations and customers, with their attachments.
pub(crate) fn needs_details(principal: &Principal, needed: DetailsAccess) -> Result<()> {
    if matches!(principal, Principal::Customer { .. }) {
        return Err(notes_are_for_agents());
    }
    if principal.details_access() >= needed {
        return Ok(());
    }
    Err(match needed {
        DetailsAccess::Write => Error::denied(
            "NO_DETAILS_WRITE",
            "writing notes on organisations and customers (and their attachments) needs details_access WRITE",
        ),
        _ => Error::denied(
            "NO_DETAILS_ACCESS",
            "notes on organisations and customers need details_access READ or WRITE",
        ),
    })
}

fn notes_are_for_agents() -> Error {
    Error::denied(
        "NOTES_FOR_AGENTS",
        "notes on organisations and customers are for agents",
    )
}
