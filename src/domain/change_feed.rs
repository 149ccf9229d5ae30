//! The change feed and the history of every resource (DESIGN §3), as the caller may read
//! them: administrators every change; agents the master data's (organisations, customers,
//! groups, grants, agents, settings, calendars, SLA policies) and those of tickets and comments
//! within their ticket rights; customers those of the tickets and comments they may read. A
//! comment whose text the caller may not read (someone else's private comment) is a stub;
//! tokens' changes are the administrators'. Rights are the caller's now, over the resource as
//! it is now.

use std::{collections::HashMap, time::Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tokio::sync::watch;
use uuid::Uuid;

use super::{
    Comments,
    access::Principal,
    paging::{self, Page},
    stream_rights::RIGHTS_TTL,
    ticket::TicketKey,
};
use crate::{
    error::{Error, Result},
    model::{Customer, FieldChange, Level, Organisation, ResourceType, StoredChange, Ticket},
    store::{ChangeFilter, CommentScope, Scope, TicketScope},
};

/// How many changes one read of a watch examines.
const WATCH_BATCH: u64 = 1000;
/// What a cursor starts with, so that a token of another kind is refused.
const CURSOR_PREFIX: &str = "chg1:";

/// The change feed of one server.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    comments: Comments,
}

/// A change as the caller sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeenChange {
    /// The change; a stub's actor and fields are empty.
    pub change: StoredChange,
    /// Whether it is a stub: the caller may know that the resource changed, not how.
    pub redacted: bool,
    /// The resource as it is now, when asked for and readable.
    pub resource: Option<Resource>,
}

/// A resource as it is now, shown beside a change of it.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    /// An organisation.
    Organisation(Organisation),
    /// A customer.
    Customer(Customer),
    /// A ticket.
    Ticket(Box<Ticket>),
}

/// A page of the feed.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedPage {
    /// The changes the caller may see, in commit order.
    pub changes: Vec<SeenChange>,
    /// The position after every change the page examined.
    pub next: i64,
    /// Whether the page was full: more may follow at once.
    pub more: bool,
}

/// The opaque cursor of feed position `position`.
pub fn encode_cursor(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{position}"))
}

/// The feed position of `cursor` (empty: before the first change), sent in `field`.
pub fn decode_cursor(field: &'static str, cursor: &str) -> Result<i64> {
    if cursor.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX)?.parse::<i64>().ok())
        .filter(|position| *position >= 0)
        .ok_or_else(|| {
            Error::invalid(
                field,
                "is not a cursor of the change feed: send a `cursor` or `next_cursor` as received",
            )
        })
}

/// What the caller may see of a batch of changes.
enum Sight {
    /// Everything.
    All,
    /// What a ticket scope and a comment scope allow, and master data for staff.
    Scoped {
        staff: bool,
        tickets: TicketScope,
        comments: CommentScope,
        contacts: Scope,
    },
}

impl ChangeFeed {
    /// The feed over the comments' (and through them the tickets') rights.
    pub fn new(comments: Comments) -> Self {
        Self { comments }
    }

    /// One page of the feed after `after` (a position), filtered by `filter`, as `principal`
    /// may see it.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn page(
        &self,
        principal: &Principal,
        after: i64,
        filter: &ChangeFilter,
        page_size: i32,
        include_resources: bool,
    ) -> Result<FeedPage> {
        let limit = paging::page_size(page_size)?;
        let sight = self.sight(principal).await?;
        self.store().settle_changes().await;
        let mut page = self.read(&sight, after, filter, limit).await?;
        if include_resources {
            self.add_resources(principal, &mut page.changes).await?;
        }
        Ok(page)
    }

    /// Adds to each shown change of an organisation, a customer or a ticket that resource as
    /// `principal` may read it now.
    pub async fn add_resources(
        &self,
        principal: &Principal,
        changes: &mut [SeenChange],
    ) -> Result<()> {
        let wanted = |kind: ResourceType| {
            let mut ids: Vec<Uuid> = changes
                .iter()
                .filter(|seen| !seen.redacted && seen.change.resource_type == kind.as_str())
                .map(|seen| seen.change.resource_id)
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let scope = principal.scope();
        let mut found: HashMap<Uuid, Resource> = HashMap::new();
        for id in wanted(ResourceType::Organisation) {
            if let Some(organisation) = self.store().organisation(&scope, id).await? {
                found.insert(id, Resource::Organisation(organisation));
            }
        }
        for id in wanted(ResourceType::Customer) {
            if let Some(customer) = self.store().customer(&scope, id).await? {
                found.insert(id, Resource::Customer(customer));
            }
        }
        let tickets = wanted(ResourceType::Ticket);
        if !tickets.is_empty() {
            let scope = self.comments.tickets.scope(principal, Level::Ro).await?;
            for ticket in self.store().tickets(&scope, &tickets).await? {
                found.insert(ticket.id, Resource::Ticket(Box::new(ticket)));
            }
        }
        for seen in changes.iter_mut().filter(|seen| !seen.redacted) {
            seen.resource = found.get(&seen.change.resource_id).cloned();
        }
        Ok(())
    }

    /// A watch of the feed after `after` (`None`: after the latest change).
    pub async fn watch(
        &self,
        principal: &Principal,
        after: Option<i64>,
        filter: ChangeFilter,
        include_resources: bool,
    ) -> Result<ChangeWatch> {
        // Subscribed before the head is read: a change committed in between wakes the watch.
        let generation = self.store().subscribe_changes();
        let sight = self.stream_sight(principal).await?;
        let after = match after {
            Some(after) => after,
            None => {
                // "From now" is after this replica's own latest writes too.
                self.store().settle_changes().await;
                self.store().feed_head().await?
            }
        };
        Ok(ChangeWatch {
            feed: self.clone(),
            principal: principal.clone(),
            filter,
            after,
            generation,
            sight,
            checked: Instant::now(),
            include_resources,
        })
    }

    /// One page of the history of resource `id` of `resource_type`, oldest first. A resource
    /// the caller may not read, or one without history, is NOT_FOUND.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn history(
        &self,
        principal: &Principal,
        resource_type: ResourceType,
        id: Uuid,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<SeenChange>> {
        let not_found = || Error::NotFound {
            resource: resource_name(resource_type),
        };
        let customer = matches!(principal, Principal::Customer { .. });
        let admin = matches!(principal, Principal::Admin { .. });
        match resource_type {
            ResourceType::Ticket => {
                self.comments
                    .tickets
                    .get(principal, TicketKey::Id(id))
                    .await?;
            }
            ResourceType::Comment => {
                let scope = self.comments.scope(principal).await?;
                if self.store().comment(&scope, id).await?.is_none() {
                    return Err(not_found());
                }
            }
            ResourceType::Token | ResourceType::Webhook if !admin => return Err(not_found()),
            _ if customer => return Err(not_found()),
            // A contact hidden by its directory: its history too.
            ResourceType::Customer | ResourceType::Organisation => {
                let (customers, organisations) = match resource_type {
                    ResourceType::Customer => (vec![id], Vec::new()),
                    _ => (Vec::new(), vec![id]),
                };
                if !self
                    .store()
                    .hidden_contacts(&principal.scope(), &customers, &organisations)
                    .await?
                    .is_empty()
                {
                    return Err(not_found());
                }
            }
            _ => {}
        }
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("history", resource_type.as_str(), id));
        let after: Option<i64> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store()
            .changes_after(resource_type, &[id], after.unwrap_or(0), limit + 1)
            .await?;
        if items.is_empty() && after.is_none() {
            return Err(not_found());
        }
        let page = paging::page(items, limit, &fingerprint, |change| change.seq);
        let sight = self.sight(principal).await?;
        Ok(Page {
            items: self.seen(&sight, page.items).await?,
            next_page_token: page.next_page_token,
        })
    }

    fn store(&self) -> &crate::store::Store {
        &self.comments.store
    }

    /// What `principal` may see of the feed.
    async fn sight(&self, principal: &Principal) -> Result<Sight> {
        if matches!(principal, Principal::Admin { .. }) {
            return Ok(Sight::All);
        }
        let comments = self.comments.scope(principal).await?;
        Ok(Sight::Scoped {
            staff: !matches!(principal, Principal::Customer { .. }),
            tickets: comments.tickets.clone(),
            comments,
            contacts: principal.scope(),
        })
    }

    /// [`Self::sight`] for a stream: UNAUTHENTICATED once the caller's token no longer works.
    async fn stream_sight(&self, principal: &Principal) -> Result<Sight> {
        // As the caller is now: an agent whose details_access was taken away sees no more
        // notes.
        let now = self.comments.tickets.stream_principal(principal).await?;
        self.sight(&now).await
    }

    async fn read(
        &self,
        sight: &Sight,
        after: i64,
        filter: &ChangeFilter,
        limit: u64,
    ) -> Result<FeedPage> {
        let changes = self.store().changes_in_feed(after, filter, limit).await?;
        let more = changes.len() as u64 == limit;
        let next = changes
            .last()
            .and_then(|change| change.position)
            .unwrap_or(after);
        Ok(FeedPage {
            changes: self.seen(sight, changes).await?,
            next,
            more,
        })
    }

    /// Of `changes`, those `sight` shows, stubbed where it shows only that they happened.
    async fn seen(&self, sight: &Sight, changes: Vec<StoredChange>) -> Result<Vec<SeenChange>> {
        let Sight::Scoped {
            staff,
            tickets,
            comments,
            contacts,
        } = sight
        else {
            return Ok(changes
                .into_iter()
                .map(|change| SeenChange {
                    change,
                    redacted: false,
                    resource: None,
                })
                .collect());
        };
        let ids_of = |kind: ResourceType| {
            let mut ids: Vec<Uuid> = changes
                .iter()
                .filter(|change| change.resource_type == kind.as_str())
                .map(|change| change.resource_id)
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let ticket_ids = ids_of(ResourceType::Ticket);
        let comment_ids = ids_of(ResourceType::Comment);
        let readable_tickets: std::collections::HashSet<Uuid> = if ticket_ids.is_empty() {
            Default::default()
        } else {
            self.store()
                .tickets(tickets, &ticket_ids)
                .await?
                .into_iter()
                .map(|ticket| ticket.id)
                .collect()
        };
        let seen_comments: HashMap<Uuid, bool> = if comment_ids.is_empty() {
            HashMap::new()
        } else {
            self.store()
                .comments_seen(comments, &comment_ids)
                .await?
                .into_iter()
                .collect()
        };
        // Where directories hide contacts, only the changes of those the caller reads now;
        // a change that names a hidden one (a contact group's members, a grant's subject)
        // shows only that it happened.
        let (mut customers, mut organisations) = (Vec::new(), Vec::new());
        if contacts.hides_filed() {
            customers = ids_of(ResourceType::Customer);
            organisations = ids_of(ResourceType::Organisation);
            for change in &changes {
                for (kind, id) in named_contacts(change) {
                    match kind {
                        ResourceType::Customer => customers.push(id),
                        _ => organisations.push(id),
                    }
                }
            }
        }
        let hidden_contacts = self
            .store()
            .hidden_contacts(contacts, &customers, &organisations)
            .await?;
        let names_hidden = |change: &StoredChange| {
            !hidden_contacts.is_empty()
                && named_contacts(change)
                    .iter()
                    .any(|(_, id)| hidden_contacts.contains(id))
        };
        Ok(changes
            .into_iter()
            .filter_map(|change| {
                let shown = match ResourceType::from_name(&change.resource_type) {
                    Some(ResourceType::Customer | ResourceType::Organisation)
                        if hidden_contacts.contains(&change.resource_id) =>
                    {
                        None
                    }
                    Some(ResourceType::Ticket) => readable_tickets
                        .contains(&change.resource_id)
                        .then_some(false),
                    Some(ResourceType::Comment) => seen_comments
                        .get(&change.resource_id)
                        .map(|readable| !readable),
                    Some(ResourceType::Token | ResourceType::Webhook) | None => None,
                    Some(_) => staff.then_some(names_hidden(&change)),
                };
                shown.map(|redacted| SeenChange {
                    change: if redacted { stub(change) } else { change },
                    redacted,
                    resource: None,
                })
            })
            .collect())
    }
}

/// The customers and organisations a change names besides its own resource: a contact
/// group's members joining or leaving, a new grant's subject.
fn named_contacts(change: &StoredChange) -> Vec<(ResourceType, Uuid)> {
    let mut named = Vec::new();
    let mut add = |kind: ResourceType, value: &serde_json::Value| {
        if let Some(id) = value.as_str().and_then(|text| Uuid::parse_str(text).ok()) {
            named.push((kind, id));
        }
    };
    for field in &change.changes {
        for value in [&field.old, &field.new] {
            match field.field.as_str() {
                "customer_ids" | "organisation_ids" => {
                    let kind = if field.field == "customer_ids" {
                        ResourceType::Customer
                    } else {
                        ResourceType::Organisation
                    };
                    for id in value.as_array().into_iter().flatten() {
                        add(kind, id);
                    }
                }
                "subject" => match value.get("kind").and_then(|kind| kind.as_str()) {
                    Some("customer") => add(ResourceType::Customer, &value["id"]),
                    Some("organisation") => add(ResourceType::Organisation, &value["id"]),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    named
}

/// A change without its actor and fields.
fn stub(change: StoredChange) -> StoredChange {
    StoredChange {
        actor: String::new(),
        changes: Vec::<FieldChange>::new(),
        ..change
    }
}

/// The resource's name in a NOT_FOUND.
fn resource_name(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::SlaPolicy => "SLA policy",
        other => other.as_str(),
    }
}

/// A follower of the feed: the backlog after its cursor, then each change as it commits.
#[derive(Debug)]
pub struct ChangeWatch {
    feed: ChangeFeed,
    principal: Principal,
    filter: ChangeFilter,
    after: i64,
    generation: watch::Receiver<u64>,
    sight: Sight,
    /// When `sight` was read.
    checked: Instant,
    /// Whether changes carry their resource.
    include_resources: bool,
}

impl std::fmt::Debug for Sight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::All => "All",
            Self::Scoped { .. } => "Scoped",
        })
    }
}

impl ChangeWatch {
    /// The position the watch has passed.
    pub fn position(&self) -> i64 {
        self.after
    }

    /// The next page of the feed: waits until changes past the cursor are committed. The
    /// caller's rights are read again before each page and at least every [`RIGHTS_TTL`]
    /// while it waits; the watch ends UNAUTHENTICATED once its token no longer works.
    pub async fn next(&mut self) -> Result<FeedPage> {
        loop {
            if self.checked.elapsed() >= RIGHTS_TTL {
                self.sight = self.feed.stream_sight(&self.principal).await?;
                self.checked = Instant::now();
            }
            self.generation.borrow_and_update();
            let page = self
                .feed
                .read(&self.sight, self.after, &self.filter, WATCH_BATCH)
                .await?;
            if page.next > self.after {
                self.after = page.next;
                let mut page = page;
                if self.include_resources {
                    self.feed
                        .add_resources(&self.principal, &mut page.changes)
                        .await?;
                }
                return Ok(page);
            }
            // The sender lives as long as the store this watch holds: it never closes.
            let _ = tokio::time::timeout(RIGHTS_TTL, self.generation.changed()).await;
        }
    }
}
