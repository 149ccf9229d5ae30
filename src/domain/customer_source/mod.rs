//! Customer sources: customers read from LDAP directories, read-only, next to those kept in
//! the helpdesk's own database (as OTRS and Znuny do). A source is configured in a file
//! ([`config`]); each is synced on its interval by one replica at a time (a lease in the
//! database), and on request. A sync pages through the directory ([`crate::ldap`]) and writes
//! each entry through the customer rules, as the source's own actor (`source:<name>` in the
//! change log); the customers it writes carry the source (`Customer.source`), and the fields
//! it maps are the directory's: [`SourceRules`] refuses anyone else changing them.

pub mod config;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use jiff::SignedDuration;
use tokio::sync::Mutex;
use uuid::Uuid;

use self::config::{Mapping, OrganisationAttribute, SourceConfig};
use super::{
    access::ServiceWork,
    customer::{Customers, OrganisationFields},
    customer_fields::{CustomerField, CustomerInput},
    rights::{Administrator, MasterDataWriter},
};
use crate::{
    clock::Clock,
    error::{Error, PreconditionViolation, Result},
    ldap::{Connection, Entry},
    model::{Actor, Customer, SourceLink, SourceRefusal, SourceSync, SyncKind, Validity},
    store::Store,
};

/// How long a replica holds a source's sync before another may take it over (a replica that
/// died mid-sync).
const LEASE: Duration = Duration::from_secs(30 * 60);

/// The most refused entries a sync's status lists; `entries_refused` counts them all.
pub const MAX_REFUSALS: usize = 100;

/// Entries marked seen at once, and customers made invalid at once.
const BATCH: usize = 500;

/// How the entries of a source name their organisations in errors.
const ENTRY_FIELDS: OrganisationFields = OrganisationFields {
    primary: "organisation",
    secondary: "secondary_organisation_ids",
};

/// The actor a source's sync writes as.
pub fn source_actor(name: &str) -> Actor {
    Actor::named("source", name)
}

/// Which customer fields each configured source owns: the rule that keeps them read-only
/// for everyone but the source's sync. A customer whose source is no longer configured is
/// the helpdesk's own again.
#[derive(Clone, Debug, Default)]
pub struct SourceRules(Arc<HashMap<String, Mapping>>);

impl SourceRules {
    /// The rules of `sources`.
    pub fn new(sources: &[SourceConfig]) -> Self {
        Self(Arc::new(
            sources
                .iter()
                .map(|source| (source.name.clone(), source.mapping.clone()))
                .collect(),
        ))
    }

    fn owner<'a>(&'a self, customer: &'a Customer) -> Option<(&'a str, &'a Mapping)> {
        let link = customer.source.as_ref()?;
        let mapping = self.0.get(&link.name)?;
        Some((&link.name, mapping))
    }

    /// Whether the source of `customer` owns `field`.
    pub(crate) fn owns(&self, customer: &Customer, field: CustomerField) -> bool {
        self.owner(customer)
            .is_some_and(|(_, mapping)| mapping.owned_fields().contains(&field))
    }

    /// Refuses a change of `current` into `next` by `actor` that touches what the
    /// customer's source owns: a mapped field, a mapped custom field, the validity.
    pub(crate) fn check_change(
        &self,
        actor: &Actor,
        current: &Customer,
        next: &Customer,
    ) -> Result<()> {
        let Some((name, mapping)) = self.owner(current) else {
            return Ok(());
        };
        if *actor == source_actor(name) {
            return Ok(());
        }
        let mut changed: Vec<String> = mapping
            .owned_fields()
            .into_iter()
            .filter(|field| *field != CustomerField::CustomFields)
            .filter(|field| field_value(current, *field) != field_value(next, *field))
            .map(|field| field.name().to_owned())
            .collect();
        for custom in mapping.custom_fields.keys() {
            if current.custom_fields.get(custom) != next.custom_fields.get(custom) {
                changed.push(format!("custom_fields.{custom}"));
            }
        }
        if current.validity != next.validity {
            changed.push("validity".into());
        }
        if changed.is_empty() {
            return Ok(());
        }
        Err(read_only(
            name,
            format!(
                "{} of this customer come from the customer source {name:?}: change them in the \
                 directory",
                changed.join(", ")
            ),
            changed,
        ))
    }

    /// Refuses removing `customer` (deleting, erasing, merging it away) while its entry is
    /// in its source: the next sync would bring it back. Once the entry is gone (the sync
    /// made the customer invalid) it may go.
    pub(crate) fn check_removal(&self, customer: &Customer, what: &str) -> Result<()> {
        match self.owner(customer) {
            Some((name, _)) if customer.validity.is_valid() => Err(read_only(
                name,
                format!(
                    "this customer comes from the customer source {name:?} and cannot be {what} \
                     while its entry is there: remove the entry (the next sync makes the \
                     customer invalid) first"
                ),
                vec!["id".into()],
            )),
            _ => Ok(()),
        }
    }

    /// Puts back into `next` what the source of `target` owns (a merge keeps the
    /// directory's values of its target).
    pub(crate) fn keep_owned(&self, target: &Customer, next: &mut Customer) {
        let Some((_, mapping)) = self.owner(target) else {
            return;
        };
        for field in mapping.owned_fields() {
            match field {
                CustomerField::Email => next.email.clone_from(&target.email),
                CustomerField::FirstName => next.first_name.clone_from(&target.first_name),
                CustomerField::LastName => next.last_name.clone_from(&target.last_name),
                CustomerField::Login => next.login.clone_from(&target.login),
                CustomerField::Title => next.title.clone_from(&target.title),
                CustomerField::Phone => next.phone.clone_from(&target.phone),
                CustomerField::Mobile => next.mobile.clone_from(&target.mobile),
                CustomerField::OrganisationId if target.organisation_id.is_some() => {}
                CustomerField::OrganisationId => {
                    // The source's organisation would become the target's primary; it stays
                    // a secondary one.
                    if let Some(id) = next.organisation_id.take()
                        && !next.secondary_organisation_ids.contains(&id)
                    {
                        next.secondary_organisation_ids.push(id);
                        next.secondary_organisation_ids.sort();
                    }
                }
                CustomerField::CustomFields => {
                    for custom in mapping.custom_fields.keys() {
                        match target.custom_fields.get(custom) {
                            Some(value) => {
                                next.custom_fields.insert(custom.clone(), value.clone());
                            }
                            None => {
                                next.custom_fields.remove(custom);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn field_value(customer: &Customer, field: CustomerField) -> String {
    match field {
        CustomerField::Email => customer.email.clone(),
        CustomerField::FirstName => customer.first_name.clone(),
        CustomerField::LastName => customer.last_name.clone(),
        CustomerField::Login => customer.login.clone().unwrap_or_default(),
        CustomerField::Title => customer.title.clone(),
        CustomerField::Phone => customer.phone.clone(),
        CustomerField::Mobile => customer.mobile.clone(),
        CustomerField::OrganisationId => customer
            .organisation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn read_only(name: &str, message: String, subjects: Vec<String>) -> Error {
    Error::FailedPrecondition {
        reason: "SOURCE_READ_ONLY",
        violations: subjects
            .into_iter()
            .map(|subject| PreconditionViolation {
                kind: "SOURCE_READ_ONLY".into(),
                subject,
                description: format!("owned by the customer source {name:?}"),
            })
            .collect(),
        message,
    }
}

/// A configured source and its last sync.
#[derive(Clone, Debug)]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Its base DN.
    pub base_dn: String,
    /// How often it is synced.
    pub sync_interval: Duration,
    /// Its last sync (empty before the first).
    pub sync: SourceSync,
}

/// The configured customer sources and their syncs.
#[derive(Clone, Debug)]
pub struct CustomerSources {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sources: Vec<SourceConfig>,
    customers: Customers,
    store: Store,
    clock: Arc<dyn Clock>,
    /// This replica, as the holder of sync leases.
    holder: String,
    /// One sync of a source at a time on this replica: a requested one waits for the
    /// scheduled one.
    running: HashMap<String, Mutex<()>>,
}

/// Why an entry was not written: refused (reported), or the sync cannot go on.
enum Failure {
    Refused(&'static str, String),
    Abort(String),
}

impl Failure {
    fn of(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Unavailable(_)
            | Error::ShuttingDown
            | Error::Internal(_)
            | Error::DataLoss(_) => Self::Abort(message),
            Error::AlreadyExists { reason, .. } | Error::FailedPrecondition { reason, .. } => {
                Self::Refused(reason, message)
            }
            Error::InvalidArgument { violations, .. } => Self::Refused(
                "INVALID_ENTRY",
                violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => Self::Refused("REFUSED", message),
        }
    }
}

/// What one sync did so far.
#[derive(Default)]
struct Counts {
    read: i64,
    changed: i64,
    refused: i64,
    invalidated: i64,
    refusals: Vec<SourceRefusal>,
}

impl Counts {
    fn refuse(&mut self, dn: &str, reason: &str, message: String) {
        self.refused += 1;
        if self.refusals.len() < MAX_REFUSALS {
            self.refusals.push(SourceRefusal {
                dn: bounded(dn, 1024),
                reason: reason.to_owned(),
                message: bounded(&message, 1024),
            });
        }
    }
}

/// One sync as it goes.
struct Run<'a> {
    source: &'a SourceConfig,
    /// Its number: the entries it sees are marked with it.
    number: i64,
    kind: SyncKind,
    /// An incremental sync reads the entries changed at or after this time.
    since: String,
    /// The latest believable `modifyTimestamp`.
    latest: String,
    /// Whether a directory without entries may make every customer invalid.
    accept_empty: bool,
    writer: MasterDataWriter,
    counts: Counts,
    /// Keys read, over every pass.
    keys_seen: u64,
    /// The newest `modifyTimestamp` read.
    newest: String,
    /// The oldest `modifyTimestamp` of a refused entry.
    oldest_refused: Option<String>,
}

/// When a lease taken or renewed at `now` runs out.
fn lease_end(now: jiff::Timestamp) -> jiff::Timestamp {
    now.checked_add(SignedDuration::try_from(LEASE).unwrap_or(SignedDuration::from_mins(30)))
        .unwrap_or(now)
}

fn lease_lost(source: &SourceConfig) -> Error {
    Error::FailedPrecondition {
        reason: "SYNC_RUNNING",
        message: format!(
            "another replica took over the sync of the customer source {:?}",
            source.name
        ),
        violations: Vec::new(),
    }
}

/// `text` cut to at most `limit` bytes, at a character boundary.
fn bounded(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl CustomerSources {
    /// The sources of `config`, written through `customers`.
    pub fn new(
        sources: Vec<SourceConfig>,
        customers: Customers,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let running = sources
            .iter()
            .map(|source| (source.name.clone(), Mutex::new(())))
            .collect();
        Self {
            inner: Arc::new(Inner {
                sources,
                customers,
                store,
                clock,
                holder: Uuid::now_v7().to_string(),
                running,
            }),
        }
    }

    /// Every configured source with its last sync, in the order of the configuration.
    pub async fn list(&self, _admin: &Administrator) -> Result<Vec<SourceStatus>> {
        let mut syncs: HashMap<String, SourceSync> = self
            .inner
            .store
            .source_syncs()
            .await?
            .into_iter()
            .map(|sync| (sync.name.clone(), sync))
            .collect();
        Ok(self
            .inner
            .sources
            .iter()
            .map(|source| {
                let sync = syncs.remove(&source.name).unwrap_or_else(|| SourceSync {
                    name: source.name.clone(),
                    ..SourceSync::default()
                });
                status(source, sync)
            })
            .collect())
    }

    /// Syncs source `name` now (every entry when `full`) and answers how it went.
    pub async fn sync(
        &self,
        _admin: &Administrator,
        name: &str,
        full: bool,
    ) -> Result<SourceStatus> {
        let source = self.source(name)?;
        let sync = self.sync_source(source, full).await?;
        Ok(status(source, sync))
    }

    /// The configured source `name`.
    fn source(&self, name: &str) -> Result<&SourceConfig> {
        self.inner
            .sources
            .iter()
            .find(|source| source.name == name)
            .ok_or(Error::NotFound {
                resource: "customer source",
            })
    }

    /// Syncs every source on its interval, until the task is dropped. The interval runs
    /// from the start of the last sync any replica made.
    pub async fn run(self) {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.inner.sources.len() {
            let sources = self.clone();
            tasks.spawn(async move { sources.run_one(index).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn run_one(&self, index: usize) {
        let source = &self.inner.sources[index];
        let clock = &self.inner.clock;
        let interval =
            SignedDuration::try_from(source.sync_interval).unwrap_or(SignedDuration::from_hours(1));
        loop {
            let last = match self.inner.store.source_syncs().await {
                Ok(syncs) => syncs
                    .into_iter()
                    .find(|sync| sync.name == source.name)
                    .and_then(|sync| sync.last_start_time),
                Err(error) => {
                    tracing::warn!(source = %source.name, %error, "reading the customer source's last sync failed");
                    None
                }
            };
            let now = clock.now();
            let due = last.and_then(|last| last.checked_add(interval).ok());
            match due {
                Some(due) if due > now => {
                    // Looked at again within a minute: another replica may sync meanwhile.
                    let wake = now
                        .checked_add(SignedDuration::from_mins(1))
                        .map_or(due, |soon| soon.min(due));
                    clock.sleep_until(wake).await;
                }
                _ => match self.sync_source(source, false).await {
                    Ok(sync) if sync.error.is_empty() => tracing::info!(
                        source = %source.name,
                        read = sync.entries_read,
                        changed = sync.entries_changed,
                        refused = sync.entries_refused,
                        invalidated = sync.entries_invalidated,
                        "customer source synced"
                    ),
                    Ok(sync) => {
                        tracing::warn!(source = %source.name, error = %sync.error, "customer source sync failed")
                    }
                    Err(Error::FailedPrecondition { .. }) => {
                        let wake = now.checked_add(SignedDuration::from_secs(5)).unwrap_or(now);
                        clock.sleep_until(wake).await;
                    }
                    Err(error) => {
                        tracing::warn!(source = %source.name, %error, "customer source sync could not run");
                        let wake = now.checked_add(SignedDuration::from_secs(5)).unwrap_or(now);
                        clock.sleep_until(wake).await;
                    }
                },
            }
        }
    }

    /// Syncs `source` in a task of its own: a panic on a malformed answer of the directory
    /// ends that sync, not the scheduler or the connection of the caller.
    async fn sync_source(&self, source: &SourceConfig, force_full: bool) -> Result<SourceSync> {
        let this = self.clone();
        let name = source.name.clone();
        let task = tokio::spawn(async move {
            let source = this.source(&name)?;
            this.sync_now(source, force_full).await
        });
        task.await.map_err(|e| {
            tracing::error!(source = %source.name, error = %e, "a customer source sync failed hard");
            Error::Unavailable(format!(
                "the sync of the customer source {:?} broke off; it is tried again",
                source.name
            ))
        })?
    }

    async fn sync_now(&self, source: &SourceConfig, force_full: bool) -> Result<SourceSync> {
        let inner = &self.inner;
        let _one_at_a_time = match inner.running.get(&source.name) {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let start = inner.clock.now();
        let Some(mut sync) = inner
            .store
            .begin_source_sync(&source.name, &inner.holder, start, lease_end(start))
            .await?
        else {
            return Err(Error::FailedPrecondition {
                reason: "SYNC_RUNNING",
                message: format!(
                    "another replica is syncing the customer source {:?}",
                    source.name
                ),
                violations: Vec::new(),
            });
        };
        let full_due = sync.last_full_sync_time.is_none_or(|last| {
            SignedDuration::try_from(source.full_sync_interval)
                .ok()
                .and_then(|every| last.checked_add(every).ok())
                .is_none_or(|due| due <= start)
        });
        let kind = if force_full || full_due || sync.watermark.is_empty() {
            SyncKind::Full
        } else {
            SyncKind::Incremental
        };
        // Entries changed while the last sync ran may carry a time before the newest it
        // read: the next reads from before that, by the length of that sync and a minute.
        let overlap = match (sync.last_success_time, sync.last_end_time) {
            (Some(start), Some(end)) if end > start => end
                .duration_since(start)
                .min(SignedDuration::from_hours(24)),
            _ => SignedDuration::ZERO,
        } + SignedDuration::from_mins(1);
        let mut run = Run {
            source,
            number: sync.run,
            kind,
            since: earlier(&sync.watermark, overlap),
            // Stamps beyond a day from now are a directory's clock gone wrong.
            latest: start
                .checked_add(SignedDuration::from_hours(24))
                .map(|t| t.strftime("%Y%m%d%H%M%SZ").to_string())
                .unwrap_or_default(),
            accept_empty: force_full,
            writer: ServiceWork::CUSTOMER_SOURCE_SYNC
                .master_data_writer(source_actor(&source.name)),
            counts: Counts::default(),
            keys_seen: 0,
            newest: String::new(),
            oldest_refused: None,
        };
        let outcome = self.read(&mut run).await;
        sync.kind = Some(kind);
        sync.last_end_time = Some(inner.clock.now());
        sync.entries_read = run.counts.read;
        sync.entries_changed = run.counts.changed;
        sync.entries_refused = run.counts.refused;
        sync.entries_invalidated = run.counts.invalidated;
        sync.refusals = run.counts.refusals;
        match outcome {
            Ok(()) => {
                sync.error.clear();
                sync.last_success_time = Some(start);
                if kind == SyncKind::Full {
                    sync.last_full_sync_time = Some(start);
                }
                // A refused entry is read again by the next syncs, until it is taken.
                let watermark = match run.oldest_refused {
                    Some(refused) if refused < run.newest => refused,
                    _ => run.newest,
                };
                if !watermark.is_empty() {
                    sync.watermark = watermark;
                }
            }
            Err(error) => sync.error = bounded(&error, 2048),
        }
        if !inner.store.end_source_sync(&sync, &inner.holder).await? {
            return Err(lease_lost(source));
        }
        Ok(sync)
    }

    /// Reads the directory and writes what it holds, or says why the sync failed.
    async fn read(&self, run: &mut Run<'_>) -> std::result::Result<(), String> {
        let mut connection = run
            .source
            .endpoint
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let outcome = self.read_entries(&mut connection, run).await;
        connection.close().await;
        outcome
    }

    async fn read_entries(
        &self,
        connection: &mut Connection,
        run: &mut Run<'_>,
    ) -> std::result::Result<(), String> {
        let source = run.source;
        let mut attributes = source.mapping.attributes();
        attributes.push(source.key_attribute.clone());
        attributes.push("modifyTimestamp".into());
        let filter = match run.kind {
            SyncKind::Full => source.filter.clone(),
            SyncKind::Incremental if generalized_time(&run.since) => {
                format!("(&{}(modifyTimestamp>={}))", source.filter, run.since)
            }
            SyncKind::Incremental => {
                return Err(format!("the watermark {:?} is not a time", run.since));
            }
        };
        let mut organisations: HashMap<String, Option<Uuid>> = HashMap::new();
        let mut keys = Vec::with_capacity(BATCH);
        let mut search = connection
            .search(&source.base_dn, &filter, attributes, source.page_size)
            .await
            .map_err(|e| e.to_string())?;
        while let Some(entry) = search.next().await.map_err(|e| e.to_string())? {
            run.counts.read += 1;
            let stamp = entry
                .first("modifyTimestamp")
                .filter(|stamp| generalized_time(stamp) && *stamp <= run.latest.as_str());
            if let Some(stamp) = stamp
                && stamp > run.newest.as_str()
            {
                run.newest = stamp.to_owned();
            }
            if let Some(key) = source.key_of(&entry) {
                keys.push(key);
            }
            match self
                .apply(&run.writer, source, &entry, &mut organisations)
                .await
            {
                Ok(true) => run.counts.changed += 1,
                Ok(false) => {}
                Err(Failure::Refused(reason, message)) => {
                    run.counts.refuse(&entry.dn, reason, message);
                    if let Some(stamp) = stamp
                        && run
                            .oldest_refused
                            .as_deref()
                            .is_none_or(|oldest| stamp < oldest)
                    {
                        run.oldest_refused = Some(stamp.to_owned());
                    }
                }
                Err(Failure::Abort(message)) => return Err(message),
            }
            if keys.len() >= BATCH {
                self.seen(run, &mut keys).await?;
            }
        }
        self.seen(run, &mut keys).await?;
        if run.kind == SyncKind::Incremental {
            // Only the keys, to find the entries that are gone.
            let mut search = connection
                .search(
                    &source.base_dn,
                    &source.filter,
                    vec![source.key_attribute.clone()],
                    source.page_size,
                )
                .await
                .map_err(|e| e.to_string())?;
            while let Some(entry) = search.next().await.map_err(|e| e.to_string())? {
                if let Some(key) = source.key_of(&entry) {
                    keys.push(key);
                }
                if keys.len() >= BATCH {
                    self.seen(run, &mut keys).await?;
                }
            }
            self.seen(run, &mut keys).await?;
        }
        self.invalidate_unseen(run).await
    }

    /// Marks the customers of `keys` as seen by this run, and keeps the lease: a sync that
    /// lost it to another replica stops.
    async fn seen(
        &self,
        run: &mut Run<'_>,
        keys: &mut Vec<String>,
    ) -> std::result::Result<(), String> {
        let store = &self.inner.store;
        let name = &run.source.name;
        let now = self.inner.clock.now();
        let kept = store
            .renew_source_lease(name, &self.inner.holder, lease_end(now))
            .await
            .map_err(|e| e.to_string())?;
        if !kept {
            return Err(lease_lost(run.source).to_string());
        }
        run.keys_seen += keys.len() as u64;
        store
            .mark_source_seen(name, keys, run.number)
            .await
            .map_err(|e| e.to_string())?;
        keys.clear();
        Ok(())
    }

    /// Makes the customers whose entries the sync did not see invalid.
    async fn invalidate_unseen(&self, run: &mut Run<'_>) -> std::result::Result<(), String> {
        let store = &self.inner.store;
        let name = &run.source.name;
        if run.keys_seen == 0 && !run.accept_empty {
            let any = store
                .unseen_source_customers(name, run.number, None, 1)
                .await
                .map_err(|e| e.to_string())?;
            if !any.is_empty() {
                return Err(
                    "the directory answered no entries for the base DN and filter: no customer \
                     was made invalid (a full sync on request accepts an empty directory)"
                        .into(),
                );
            }
        }
        let mut after = None;
        loop {
            let unseen = store
                .unseen_source_customers(name, run.number, after, BATCH as u64)
                .await
                .map_err(|e| e.to_string())?;
            for customer in &unseen {
                match self
                    .inner
                    .customers
                    .deactivate(
                        &run.writer,
                        customer.id,
                        Validity::Invalid,
                        &customer.etag(),
                    )
                    .await
                {
                    Ok(_) => run.counts.invalidated += 1,
                    Err(error) => match Failure::of(error) {
                        Failure::Refused(reason, message) => run.counts.refuse(
                            "",
                            reason,
                            format!(
                                "the entry of customer {} ({}) is gone, but the customer stays \
                                 valid: {message}",
                                customer.id, customer.email
                            ),
                        ),
                        Failure::Abort(message) => return Err(message),
                    },
                }
            }
            if unseen.len() < BATCH {
                return Ok(());
            }
            after = unseen.last().map(|customer| customer.id);
        }
    }

    /// Writes `entry`'s customer; whether it created or changed one.
    async fn apply(
        &self,
        writer: &MasterDataWriter,
        source: &SourceConfig,
        entry: &Entry,
        organisations: &mut HashMap<String, Option<Uuid>>,
    ) -> std::result::Result<bool, Failure> {
        let store = &self.inner.store;
        let customers = &self.inner.customers;
        let mapping = &source.mapping;
        let key = source.key_of(entry).ok_or_else(|| {
            Failure::Refused(
                "INVALID_ENTRY",
                format!("the entry has no {}", source.key_attribute),
            )
        })?;
        if key.len() > 256 || key.chars().any(char::is_control) {
            return Err(Failure::Refused(
                "INVALID_ENTRY",
                format!(
                    "the entry's {} is not a usable key (at most 256 bytes, no control \
                     characters)",
                    source.key_attribute
                ),
            ));
        }
        let text = |attribute: &Option<String>| {
            attribute
                .as_deref()
                .and_then(|name| entry.first(name))
                .unwrap_or_default()
                .to_owned()
        };
        let organisation_code = match &mapping.organisation {
            None => None,
            Some(OrganisationAttribute::Attribute(name)) => entry.first(name).map(str::to_owned),
            Some(OrganisationAttribute::DnComponent(name)) => entry.dn_component(name),
        }
        .filter(|code| !code.is_empty());
        let organisation_id = match organisation_code {
            None => None,
            Some(code) => {
                let found = match organisations.get(&code.to_lowercase()) {
                    Some(found) => *found,
                    None => {
                        let found = store
                            .organisation_by_code(&ServiceWork::RULE_CHECKS.master_data(), &code)
                            .await
                            .map_err(Failure::of)?
                            .map(|org| org.id);
                        organisations.insert(code.to_lowercase(), found);
                        found
                    }
                };
                Some(found.ok_or_else(|| {
                    Failure::Refused(
                        "ORGANISATION_UNKNOWN",
                        format!("no organisation has the code {code:?}"),
                    )
                })?)
            }
        };
        let existing = store
            .customer_by_source_key(&source.name, &key)
            .await
            .map_err(Failure::of)?;
        let mut custom_fields: BTreeMap<String, String> = existing
            .as_ref()
            .map(|customer| customer.custom_fields.clone())
            .unwrap_or_default();
        for (field, attribute) in &mapping.custom_fields {
            match entry.first(attribute).filter(|value| !value.is_empty()) {
                Some(value) => custom_fields.insert(field.clone(), value.to_owned()),
                None => custom_fields.remove(field),
            };
        }
        let input = CustomerInput {
            email: entry.first(&mapping.email).unwrap_or_default().to_owned(),
            secondary_emails: Vec::new(),
            login: text(&mapping.login),
            first_name: text(&mapping.first_name),
            last_name: text(&mapping.last_name),
            title: text(&mapping.title),
            phone: text(&mapping.phone),
            mobile: text(&mapping.mobile),
            organisation_id,
            secondary_organisation_ids: existing
                .as_ref()
                .map(|customer| customer.secondary_organisation_ids.clone())
                .unwrap_or_default(),
            customer_type: existing
                .as_ref()
                .map(|customer| customer.customer_type.clone())
                .unwrap_or_default(),
            custom_fields,
            external_id: String::new(),
            validity: None,
            directory_id: None,
            source: Some(SourceLink {
                name: source.name.clone(),
                key,
            }),
        };
        match existing {
            Some(current) if current.is_erased() => Err(Failure::Refused(
                "ERASED",
                format!(
                    "customer {} of this entry was erased; it is not brought back",
                    current.id
                ),
            )),
            Some(current) => {
                let before = current.version;
                let owned = mapping.owned_fields();
                let back = !current.validity.is_valid();
                let changed = customers
                    .change(
                        writer,
                        current.clone(),
                        &owned,
                        &input,
                        back.then_some(Validity::Valid),
                        ENTRY_FIELDS,
                    )
                    .await;
                let after = match changed {
                    // Made invalid with its organisation: it stays so while the organisation
                    // is invalid, and comes back with it.
                    Err(Error::FailedPrecondition {
                        reason: "ORGANISATION_INVALID",
                        ..
                    }) if back => {
                        customers
                            .change(writer, current, &owned, &input, None, ENTRY_FIELDS)
                            .await
                    }
                    changed => changed,
                }
                .map_err(Failure::of)?;
                Ok(after.version != before)
            }
            None => {
                if let Some(other) = store
                    .customer_by_email(
                        &ServiceWork::RULE_CHECKS.master_data(),
                        &super::email::lookup_form(&input.email),
                    )
                    .await
                    .map_err(Failure::of)?
                {
                    // The entry of an invalid customer of this source, made anew in the
                    // directory (with a new key): the customer is linked to it again.
                    if other
                        .source
                        .as_ref()
                        .is_some_and(|link| link.name == source.name)
                        && !other.validity.is_valid()
                        && !other.is_erased()
                    {
                        let mut current = other;
                        current.source.clone_from(&input.source);
                        customers
                            .change(
                                writer,
                                current,
                                &mapping.owned_fields(),
                                &input,
                                Some(Validity::Valid),
                                ENTRY_FIELDS,
                            )
                            .await
                            .map_err(Failure::of)?;
                        return Ok(true);
                    }
                    let owner = match &other.source {
                        Some(link) => format!("from the customer source {:?}", link.name),
                        None => "of the helpdesk's own".to_owned(),
                    };
                    return Err(Failure::Refused(
                        "EMAIL_TAKEN",
                        format!(
                            "customer {} ({owner}) has the address {}; it is left as it is",
                            other.id, input.email
                        ),
                    ));
                }
                customers
                    .insert(writer, &input, None, ENTRY_FIELDS)
                    .await
                    .map_err(Failure::of)?;
                Ok(true)
            }
        }
    }
}

fn status(source: &SourceConfig, sync: SourceSync) -> SourceStatus {
    SourceStatus {
        name: source.name.clone(),
        url: source.endpoint.url.clone(),
        base_dn: source.base_dn.clone(),
        sync_interval: source.sync_interval,
        sync,
    }
}

/// The generalized time `overlap` before `stamp` (`20261207101434Z` form); `stamp` itself
/// when it cannot be read.
fn earlier(stamp: &str, overlap: SignedDuration) -> String {
    let read = stamp.get(..14).and_then(|digits| {
        jiff::Timestamp::strptime("%Y%m%d%H%M%S%z", format!("{digits}+0000"))
            .ok()?
            .checked_sub(overlap)
            .ok()
    });
    match read {
        Some(time) => time.strftime("%Y%m%d%H%M%SZ").to_string(),
        None => stamp.to_owned(),
    }
}

/// Whether `stamp` looks like an LDAP generalized time (`20261207101434Z`,
/// `20261207101434.0Z`), safe to put into a filter.
fn generalized_time(stamp: &str) -> bool {
    stamp.len() >= 11
        && stamp.len() <= 32
        && stamp.starts_with(|c: char| c.is_ascii_digit())
        && stamp
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | 'Z' | '+' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_incremental_sync_reads_from_before_the_newest_change() {
        assert_eq!(
            earlier("20261207101434Z", SignedDuration::from_mins(2)),
            "20261207101234Z"
        );
        assert_eq!(
            earlier("20260101000030.0Z", SignedDuration::from_mins(1)),
            "20251231235930Z"
        );
        assert_eq!(earlier("garbage", SignedDuration::from_mins(1)), "garbage");
        assert!(generalized_time("20261207101434Z"));
        assert!(!generalized_time("2026)(cn=*"));
    }
}
