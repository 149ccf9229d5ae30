//! A person's data (GDPR articles 15, 17 and 20): the erasure of a customer, and the export of
//! everything stored about one, read through the caller's own rights.

use std::collections::HashSet;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Comments, Customers, access::Principal, customer::EraseOptions, rights};
use crate::{
    error::{Error, Result},
    model::{
        Comment, CommentParent, Customer, ErasureReport, Grant, Organisation, Party, ResourceType,
        StoredChange, Subject, Ticket, TicketCursor, TicketFilter, TicketOrder, TicketOrderKey,
        Token, TokenOwner,
    },
    store::{CommentCursor, CommentFilter, CommentScope},
};

/// How many rows one read of an export takes.
const EXPORT_PAGE: u64 = 200;

/// One item of an export, in the order ExportCustomerData documents.
#[derive(Clone, Debug)]
pub enum ExportItem {
    /// The record.
    Customer(Customer),
    /// One of its organisations.
    Organisation(Organisation),
    /// One of its grants.
    Grant(Grant),
    /// One of its API tokens.
    Token(Token),
    /// A ticket it is party to.
    Ticket(Box<Ticket>),
    /// A comment on one of those tickets, one it wrote, or a note about it.
    Comment(Comment),
    /// A recorded change of the record, those tickets or those comments.
    Change(StoredChange),
}

/// Erasure and export.
#[derive(Clone, Debug)]
pub struct Privacy {
    customers: Customers,
    comments: Comments,
}

impl Privacy {
    /// Over the customer and comment rules.
    pub fn new(customers: Customers, comments: Comments) -> Self {
        Self {
            customers,
            comments,
        }
    }

    /// Erases customer `id` for `principal` (administrators and customer administrators).
    pub async fn erase(
        &self,
        principal: &Principal,
        id: Uuid,
        etag: &str,
        options: EraseOptions,
    ) -> Result<ErasureReport> {
        let writer = rights::master_data_writer(principal)?;
        self.customers.erase(&writer, id, etag, options).await
    }

    /// The export of customer `id` for `principal`: administrators and customer
    /// administrators export anyone, a customer itself. Refused here, before anything is
    /// sent, when the caller may not or the customer is not there.
    pub async fn export(&self, principal: &Principal, id: Uuid) -> Result<Export> {
        let itself =
            matches!(principal, Principal::Customer { customer_id, .. } if *customer_id == id);
        if !itself {
            match rights::master_data_writer(principal) {
                Ok(_) => {}
                // Someone else's data is, to a customer, not there.
                Err(_) if matches!(principal, Principal::Customer { .. }) => {
                    return Err(Error::NotFound {
                        resource: "customer",
                    });
                }
                Err(error) => return Err(error),
            }
        }
        let customer = self
            .customers
            .store
            .customer(&principal.scope(), id)
            .await?
            .filter(|customer| !customer.is_erased())
            .ok_or(Error::NotFound {
                resource: "customer",
            })?;
        Ok(Export {
            privacy: self.clone(),
            principal: principal.clone(),
            customer,
        })
    }
}

/// An export that may run: [`Export::run`] sends its items.
#[derive(Debug)]
pub struct Export {
    privacy: Privacy,
    principal: Principal,
    customer: Customer,
}

impl Export {
    /// Sends to `sink` everything stored about the customer that the caller may read, in the
    /// order ExportCustomerData documents; stops when `sink` is gone.
    pub async fn run(self, sink: &mpsc::Sender<Result<ExportItem>>) -> Result<()> {
        let Self {
            privacy,
            principal,
            customer,
        } = self;
        let principal = &principal;
        let id = customer.id;
        let store = &privacy.customers.store;
        let organisations = customer.organisation_ids().collect::<Vec<_>>();
        let out = Out(sink);
        out.send(ExportItem::Customer(customer)).await?;
        for organisation in organisations {
            if let Some(organisation) = store.organisation(&principal.scope(), organisation).await?
            {
                out.send(ExportItem::Organisation(organisation)).await?;
            }
        }
        let mut grants = Vec::new();
        for grant in store.grants_of(&[Subject::Customer(id)]).await? {
            grants.push(grant.id);
            out.send(ExportItem::Grant(grant)).await?;
        }
        let mut tokens = Vec::new();
        let now = privacy.customers.clock.now();
        let mut after = None;
        loop {
            let page = store
                .list_tokens(
                    Some(TokenOwner::Customer(id)),
                    true,
                    now,
                    after,
                    EXPORT_PAGE,
                )
                .await?;
            after = page.last().map(|token| token.id);
            let full = page.len() as u64 == EXPORT_PAGE;
            for token in page {
                tokens.push(token.id);
                out.send(ExportItem::Token(token)).await?;
            }
            if !full {
                break;
            }
        }

        let scope = privacy.comments.scope(principal).await?;
        let tickets = privacy.tickets(&scope, id, &out).await?;
        let mut comments = Vec::new();
        for ticket in &tickets {
            privacy
                .comments_where(
                    &scope,
                    CommentParent::Ticket(*ticket).into(),
                    &out,
                    &mut comments,
                    |_| true,
                )
                .await?;
        }
        let on_listed: HashSet<Uuid> = tickets.iter().copied().collect();
        let elsewhere = CommentFilter {
            author: Some(Party::Customer(id)),
            include_deleted: true,
            ..CommentFilter::default()
        };
        privacy.comments_where(&scope, elsewhere, &out, &mut comments, |comment| {
            !matches!(comment.parent, CommentParent::Ticket(ticket) if on_listed.contains(&ticket))
        })
        .await?;
        if scope.notes {
            privacy
                .comments_where(
                    &scope,
                    CommentParent::Customer(id).into(),
                    &out,
                    &mut comments,
                    |_| true,
                )
                .await?;
        }

        let histories = std::iter::once((ResourceType::Customer, id))
            .chain(grants.iter().map(|id| (ResourceType::Grant, *id)))
            .chain(tokens.iter().map(|id| (ResourceType::Token, *id)))
            .chain(tickets.iter().map(|id| (ResourceType::Ticket, *id)))
            .chain(comments.iter().map(|id| (ResourceType::Comment, *id)));
        for (resource_type, resource) in histories {
            for change in store.changes_of(resource_type, resource).await? {
                out.send(ExportItem::Change(change)).await?;
            }
        }
        Ok(())
    }
}

impl Privacy {
    /// Sends the tickets `scope` reaches that customer `id` is party to; returns their ids.
    async fn tickets(&self, scope: &CommentScope, id: Uuid, out: &Out<'_>) -> Result<Vec<Uuid>> {
        let filter = TicketFilter {
            customer_id: Some(id),
            ..TicketFilter::default()
        };
        let order = TicketOrder {
            key: TicketOrderKey::Number,
            descending: false,
        };
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .customers
                .store
                .list_tickets(&scope.tickets, &filter, order, cursor.as_ref(), EXPORT_PAGE)
                .await?;
            cursor = page.last().map(|ticket| TicketCursor {
                key: ticket.number,
                id: ticket.id,
            });
            let full = page.len() as u64 == EXPORT_PAGE;
            for ticket in page {
                ids.push(ticket.id);
                out.send(ExportItem::Ticket(Box::new(ticket))).await?;
            }
            if !full {
                return Ok(ids);
            }
        }
    }

    /// Sends the comments `scope` reaches that match `filter` and `wanted`, deleted ones too
    /// and stubs of others' private comments left out; adds their ids to `ids`.
    async fn comments_where(
        &self,
        scope: &CommentScope,
        filter: CommentFilter,
        out: &Out<'_>,
        ids: &mut Vec<Uuid>,
        wanted: impl Fn(&Comment) -> bool,
    ) -> Result<()> {
        let filter = CommentFilter {
            include_deleted: true,
            ..filter
        };
        let mut cursor = None;
        loop {
            let page = self
                .customers
                .store
                .list_comments(scope, &filter, cursor.as_ref(), EXPORT_PAGE)
                .await?;
            cursor = page.last().map(|comment| CommentCursor {
                time: comment.create_time.as_microsecond(),
                id: comment.id,
            });
            let full = page.len() as u64 == EXPORT_PAGE;
            for comment in page {
                if comment.redacted || !wanted(&comment) {
                    continue;
                }
                ids.push(comment.id);
                out.send(ExportItem::Comment(comment)).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }
}

impl From<CommentParent> for CommentFilter {
    fn from(parent: CommentParent) -> Self {
        Self {
            parent: Some(parent),
            ..Self::default()
        }
    }
}

/// The export's receiver; gone, the export ends.
struct Out<'a>(&'a mpsc::Sender<Result<ExportItem>>);

impl Out<'_> {
    async fn send(&self, item: ExportItem) -> Result<()> {
        self.0
            .send(Ok(item))
            .await
            .map_err(|_| Error::Unavailable("the export's receiver went away".into()))
    }
}
