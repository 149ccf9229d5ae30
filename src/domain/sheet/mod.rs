//! The printable sheet of a customer or an organisation (ConSol's customer sheet): master
//! data, contacts, open tickets with their deadlines, and notes, as a PDF. It shows what the
//! caller may read and nothing else: the overview's rules for the record and its tickets,
//! notes for staff only.

mod pdf;

use std::{collections::HashMap, fmt::Write as _, sync::Arc};

use jiff::{Timestamp, tz::TimeZone};
use uuid::Uuid;

use self::pdf::Layout;
use super::{
    Comments, Tickets,
    access::Principal,
    comment::CommentQuery,
    customer::CustomerKey,
    organisation::OrganisationKey,
    ticket_list::{MAX_OVERVIEW_LIMIT, Overview, OverviewOf},
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{
        Alert, Comment, CommentParent, Customer, DetailsAccess, Organisation, Party, Ticket,
        TicketState, Validity,
    },
};

/// How many notes a sheet prints at most (the newest).
pub const MAX_NOTES: usize = 200;

/// Whose sheet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SheetOf {
    /// A customer's.
    Customer(Uuid),
    /// An organisation's.
    Organisation(Uuid),
}

/// The notes a sheet prints.
#[derive(Clone, Debug)]
struct Notes {
    /// The newest, newest first.
    newest: Vec<Comment>,
    /// Whether there are older ones.
    more: bool,
}

/// A rendered sheet.
#[derive(Clone, Debug)]
pub struct Sheet {
    /// A name to save it under.
    pub file_name: String,
    /// The PDF file.
    pub content: Vec<u8>,
}

/// The sheet rules, over the ticket and comment rules.
#[derive(Clone, Debug)]
pub struct Sheets {
    tickets: Tickets,
    comments: Comments,
    clock: Arc<dyn Clock>,
}

impl Sheets {
    /// Sheets made of what `tickets` and `comments` let a caller read.
    pub fn new(tickets: Tickets, comments: Comments, clock: Arc<dyn Clock>) -> Self {
        Self {
            tickets,
            comments,
            clock,
        }
    }

    /// The sheet of `of` as `principal` may see it, with times in `time_zone` (IANA; empty
    /// for UTC).
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn render(
        &self,
        principal: &Principal,
        of: SheetOf,
        time_zone: &str,
    ) -> Result<Sheet> {
        let zone = zone(time_zone)?;
        let overview_of = match of {
            SheetOf::Customer(id) => OverviewOf::Customer(CustomerKey::Id(id)),
            SheetOf::Organisation(id) => OverviewOf::Organisation(OrganisationKey::Id(id)),
        };
        let limit = i32::try_from(MAX_OVERVIEW_LIMIT).unwrap_or(i32::MAX);
        let overview = self
            .tickets
            .overview(principal, &overview_of, limit, None)
            .await?;
        let parent = match of {
            SheetOf::Customer(id) => CommentParent::Customer(id),
            SheetOf::Organisation(id) => CommentParent::Organisation(id),
        };
        let notes = if principal.details_access() == DetailsAccess::None {
            None
        } else {
            Some(self.notes(principal, parent).await?)
        };
        let names = self
            .names(
                principal,
                &overview,
                notes.as_ref().map(|n| n.newest.as_slice()),
            )
            .await?;
        let printed = self.clock.now();
        let sheet = Printing {
            zone: &zone,
            zone_name: if time_zone.is_empty() {
                "UTC"
            } else {
                time_zone
            },
            names: &names,
        };
        let (file_name, content) = match (&overview.customer, &overview.organisation) {
            (Some(customer), _) => (
                format!("customer-{}.pdf", customer.id),
                sheet.customer(customer, &overview, notes.as_ref(), printed),
            ),
            (None, Some(organisation)) => (
                format!("organisation-{}.pdf", organisation.id),
                sheet.organisation(organisation, &overview, notes.as_ref(), printed),
            ),
            (None, None) => return Err(Error::Internal("an overview of nothing".into())),
        };
        Ok(Sheet { file_name, content })
    }

    /// The newest notes on `parent` (at most [`MAX_NOTES`]), newest first, and whether there
    /// are older ones.
    async fn notes(&self, principal: &Principal, parent: CommentParent) -> Result<Notes> {
        let query = CommentQuery {
            parent: Some(parent),
            author: None,
            created_from: None,
            created_until: None,
            text: String::new(),
            include_deleted: false,
            newest_first: true,
        };
        let size = i32::try_from(MAX_NOTES).unwrap_or(i32::MAX);
        let page = self.comments.list(principal, &query, size, "").await?;
        Ok(Notes {
            newest: page.items,
            more: !page.next_page_token.is_empty(),
        })
    }

    /// The names the sheet prints for the ids it shows: groups, organisations, note authors.
    async fn names(
        &self,
        principal: &Principal,
        overview: &Overview,
        notes: Option<&[Comment]>,
    ) -> Result<HashMap<Uuid, String>> {
        let store = &self.tickets.store;
        let scope = principal.scope();
        let mut names = HashMap::new();
        // Group names are for staff (GetGroup and ListGroups are).
        let staff = !matches!(principal, Principal::Customer { .. });
        for ticket in overview.open.iter().filter(|_| staff) {
            if let std::collections::hash_map::Entry::Vacant(entry) = names.entry(ticket.group_id)
                && let Some(group) = store.group(ticket.group_id).await?
            {
                entry.insert(group.name);
            }
        }
        if let Some(customer) = &overview.customer {
            for id in customer.organisation_ids() {
                if let Some(organisation) = store.organisation(&scope, id).await? {
                    names.insert(id, format!("{} ({})", organisation.name, organisation.code));
                }
            }
        }
        for note in notes.unwrap_or_default() {
            if names.contains_key(&note.author.id()) {
                continue;
            }
            let (id, name) = match note.author {
                Party::Agent(id) => (
                    id,
                    store
                        .agent(id)
                        .await?
                        .map(|a| full_name(&a.first_name, &a.last_name, &a.login)),
                ),
                Party::Customer(id) => (
                    id,
                    store
                        .customer(&scope, id)
                        .await?
                        .map(|c| full_name(&c.first_name, &c.last_name, &c.email)),
                ),
                Party::Admin(id) => (id, Some("an administrator".to_owned())),
            };
            if let Some(name) = name {
                names.insert(id, name);
            }
        }
        Ok(names)
    }
}

/// The time zone `name` names; empty for UTC.
fn zone(name: &str) -> Result<TimeZone> {
    if name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    if name.len() > 64 || name.contains('\0') {
        return Err(Error::invalid("time_zone", "is not an IANA time zone name"));
    }
    TimeZone::get(name).map_err(|_| {
        Error::invalid(
            "time_zone",
            format!("{name:?} is not a known IANA time zone, e.g. Europe/Berlin"),
        )
    })
}

fn full_name(first: &str, last: &str, otherwise: &str) -> String {
    let name = format!("{first} {last}");
    let name = name.trim();
    if name.is_empty() {
        otherwise.to_owned()
    } else {
        name.to_owned()
    }
}

/// What one sheet is printed with.
struct Printing<'a> {
    zone: &'a TimeZone,
    zone_name: &'a str,
    names: &'a HashMap<Uuid, String>,
}

impl Printing<'_> {
    fn customer(
        &self,
        customer: &Customer,
        overview: &Overview,
        notes: Option<&Notes>,
        printed: Timestamp,
    ) -> Vec<u8> {
        let given = format!("{} {}", customer.title, customer.first_name);
        let name = full_name(given.trim(), &customer.last_name, &customer.email);
        let mut page = Layout::new(&format!("Customer sheet: {name}"));
        page.title(&name);
        page.small(&format!("Customer sheet · {}", self.printed(printed)));
        page.heading("Master data");
        page.field("Email", &customer.email);
        page.field("Other addresses", &customer.secondary_emails.join(", "));
        page.field("Login", customer.login.as_deref().unwrap_or_default());
        page.field("Phone", &customer.phone);
        page.field("Mobile", &customer.mobile);
        page.field("Type", &customer.customer_type);
        page.field("Organisation", &self.name_of(customer.organisation_id));
        let others: Vec<String> = customer
            .secondary_organisation_ids
            .iter()
            .map(|id| self.name_of(Some(*id)))
            .collect();
        page.field("Other organisations", &others.join(", "));
        page.field(
            "External id",
            customer.external_id.as_deref().unwrap_or_default(),
        );
        page.field("Status", validity(customer.validity));
        page.field("Created", &self.stamp(customer.create_time));
        page.field("Last changed", &self.stamp(customer.update_time));
        custom_fields(&mut page, &customer.custom_fields);
        self.tickets(&mut page, overview);
        self.notes(&mut page, notes);
        page.finish(&format!("Clientele · {name}"), self.civil(printed))
    }

    fn organisation(
        &self,
        organisation: &Organisation,
        overview: &Overview,
        notes: Option<&Notes>,
        printed: Timestamp,
    ) -> Vec<u8> {
        let mut page = Layout::new(&format!("Organisation sheet: {}", organisation.name));
        page.title(&organisation.name);
        page.small(&format!(
            "Organisation sheet · key {} · {}",
            organisation.code,
            self.printed(printed)
        ));
        page.heading("Master data");
        page.field("Key", &organisation.code);
        let city = format!("{} {}", organisation.zip, organisation.city);
        let address: Vec<&str> = [
            organisation.street.as_str(),
            city.trim(),
            organisation.country.as_str(),
        ]
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect();
        page.field("Address", &address.join("\n"));
        page.field("Web", &organisation.url);
        page.field("Email domains", &organisation.email_domains.join(", "));
        if !organisation.email_domains.is_empty() {
            let assignment = if organisation.domain_assignment {
                "new customers of these domains join it"
            } else {
                "off"
            };
            page.field("Domain assignment", assignment);
        }
        page.field("Comment", &organisation.comment);
        page.field(
            "External id",
            organisation.external_id.as_deref().unwrap_or_default(),
        );
        page.field("Status", validity(organisation.validity));
        page.field("Created", &self.stamp(organisation.create_time));
        page.field("Last changed", &self.stamp(organisation.update_time));
        custom_fields(&mut page, &organisation.custom_fields);
        page.heading(&format!("Contacts ({})", overview.customers.len()));
        if overview.customers.is_empty() {
            page.paragraph("No contacts.", 0.0, false);
        }
        for contact in &overview.customers {
            page.entry(0.0, 2);
            page.paragraph(
                &full_name(&contact.first_name, &contact.last_name, &contact.email),
                0.0,
                true,
            );
            let mut reach = vec![contact.email.clone()];
            reach.extend(
                [("phone", &contact.phone), ("mobile", &contact.mobile)]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(label, v)| format!("{label} {v}")),
            );
            if !contact.validity.is_valid() {
                reach.push(validity(contact.validity).to_lowercase());
            }
            page.paragraph(&reach.join(" · "), 12.0, false);
        }
        self.tickets(&mut page, overview);
        self.notes(&mut page, notes);
        page.finish(
            &format!("Clientele · {}", organisation.name),
            self.civil(printed),
        )
    }

    fn tickets(&self, page: &mut Layout, overview: &Overview) {
        let counts = &overview.counts;
        page.heading(&format!("Open tickets ({})", counts.open));
        page.small(&format!(
            "{} open, {} closed; of the open ones {} escalated, {} in warning, {} with a reminder due",
            counts.open,
            counts.closed,
            overview.escalated.len(),
            overview.warning.len(),
            overview.reminder_due.len()
        ));
        if overview.open.is_empty() {
            page.paragraph("No open tickets.", 0.0, false);
        }
        for ticket in &overview.open {
            page.entry(3.0, 3);
            page.paragraph(&format!("#{}  {}", ticket.number, ticket.title), 0.0, true);
            let mut about = vec![
                state(ticket.state).to_owned(),
                format!("priority {}", ticket.priority),
            ];
            if let Some(group) = self.names.get(&ticket.group_id) {
                about.push(format!("group {group}"));
            }
            about.push(format!("opened {}", self.stamp(ticket.create_time)));
            page.paragraph(&about.join(" · "), 12.0, false);
            let deadlines = self.deadlines(ticket);
            if !deadlines.is_empty() {
                page.paragraph(&deadlines, 12.0, false);
            }
        }
        let shown = u64::try_from(overview.open.len()).unwrap_or(u64::MAX);
        if counts.open > shown {
            page.paragraph(
                &format!(
                    "… and {} more open tickets (ListTickets has them all).",
                    counts.open - shown
                ),
                0.0,
                false,
            );
        }
    }

    /// The deadlines of `ticket` that run, with their alerts, and its pending time.
    fn deadlines(&self, ticket: &Ticket) -> String {
        let mut parts = Vec::new();
        for (label, due, alert) in [
            (
                "first response due",
                ticket.first_response_due,
                ticket.alerts.first_response,
            ),
            ("update due", ticket.update_due, ticket.alerts.update),
            ("solution due", ticket.solution_due, ticket.alerts.solution),
        ] {
            if let Some(due) = due {
                let mut part = format!("{label} {}", self.stamp(due));
                match alert {
                    Alert::Escalated => part.push_str(" (ESCALATED)"),
                    Alert::Warning => part.push_str(" (warning)"),
                    Alert::None => {}
                }
                parts.push(part);
            }
        }
        if let Some(until) = ticket.pending_until {
            let mut part = format!("pending until {}", self.stamp(until));
            if ticket.alerts.reminder_due {
                part.push_str(" (reminder due)");
            }
            parts.push(part);
        }
        let mut text = String::new();
        for (index, part) in parts.iter().enumerate() {
            if index == 0 {
                let mut chars = part.chars();
                if let Some(first) = chars.next() {
                    let _ = write!(text, "{}{}", first.to_uppercase(), chars.as_str());
                }
            } else {
                let _ = write!(text, " · {part}");
            }
        }
        text
    }

    fn notes(&self, page: &mut Layout, notes: Option<&Notes>) {
        let Some(Notes { newest, more }) = notes else {
            return;
        };
        if *more {
            page.heading(&format!("Notes (the newest {})", newest.len()));
        } else {
            page.heading(&format!("Notes ({})", newest.len()));
        }
        if newest.is_empty() {
            page.paragraph("No notes.", 0.0, false);
        }
        for note in newest {
            page.entry(3.0, 2);
            let author = self
                .names
                .get(&note.author.id())
                .cloned()
                .unwrap_or_else(|| "someone no longer known".into());
            page.paragraph(
                &format!("{} · {author}", self.stamp(note.create_time)),
                0.0,
                true,
            );
            let body = if note.redacted {
                "(private: not for the printer of this sheet)"
            } else {
                note.body.as_str()
            };
            page.paragraph(body, 12.0, false);
        }
    }

    fn name_of(&self, id: Option<Uuid>) -> String {
        id.map(|id| {
            self.names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| id.to_string())
        })
        .unwrap_or_default()
    }

    fn civil(&self, time: Timestamp) -> jiff::civil::DateTime {
        self.zone.to_datetime(time)
    }

    /// `time` as people read it, in the sheet's zone.
    fn stamp(&self, time: Timestamp) -> String {
        self.civil(time).strftime("%Y-%m-%d %H:%M").to_string()
    }

    /// When it was printed, and the zone of its times.
    fn printed(&self, time: Timestamp) -> String {
        format!("printed {}, times in {}", self.stamp(time), self.zone_name)
    }
}

fn custom_fields(page: &mut Layout, fields: &std::collections::BTreeMap<String, String>) {
    if fields.is_empty() {
        return;
    }
    page.heading("Custom fields");
    for (name, value) in fields {
        page.field(name, value);
    }
}

fn validity(validity: Validity) -> &'static str {
    match validity {
        Validity::Valid => "Valid",
        Validity::Invalid => "Invalid",
        Validity::InvalidTemporarily => "Invalid for now",
    }
}

fn state(state: TicketState) -> &'static str {
    match state {
        TicketState::New => "New",
        TicketState::Open => "Open",
        TicketState::PendingReminder => "Pending (reminder)",
        TicketState::PendingClose => "Pending (close)",
        TicketState::Closed => "Closed",
    }
}
