//! Directories (address books): which agents read which contacts. A contact filed in a
//! directory is read by admins, the directory's readers and itself; one filed in none by every
//! agent. What an agent reads is compiled with its rights (`Rights::contacts`).

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::{
    changes::{self, Audit, check_etag},
    fields::{self, Violations},
    paging::{self, Page},
    rights::{Administrator, StaffReader},
};
use crate::{
    clock::Clock,
    error::{Error, Result},
    model::{ChangeKind, Directory, ResourceType},
    store::{Cursor, Scope, Store, directory_cursor},
};

/// The most reader agents, and the most reader groups, of one directory.
pub const MAX_READERS: usize = 100;

/// The values a client sends for a directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DirectoryInput {
    /// The name.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// The reader agents.
    pub reader_agent_ids: Vec<Uuid>,
    /// The reader groups.
    pub reader_group_ids: Vec<Uuid>,
}

/// The fields an update of a directory may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryField {
    /// `name`
    Name,
    /// `comment`
    Comment,
    /// `reader_agent_ids`
    ReaderAgentIds,
    /// `reader_group_ids`
    ReaderGroupIds,
}

impl DirectoryField {
    /// Every updatable field.
    pub const ALL: [Self; 4] = [
        Self::Name,
        Self::Comment,
        Self::ReaderAgentIds,
        Self::ReaderGroupIds,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Comment => "comment",
            Self::ReaderAgentIds => "reader_agent_ids",
            Self::ReaderGroupIds => "reader_group_ids",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, fields::output_only)
    }
}

/// The directory rules, over the store.
#[derive(Clone, Debug)]
pub struct Directories {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Directories {
    /// The rules over `store`, reading time from `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Adds a directory.
    #[tracing::instrument(skip(self, admin), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        admin: &Administrator,
        input: &DirectoryInput,
        request_id: Option<String>,
    ) -> Result<Directory> {
        let now = self.clock.now();
        let mut directory = Directory {
            id: Uuid::now_v7(),
            name: String::new(),
            comment: String::new(),
            reader_agent_ids: Vec::new(),
            reader_group_ids: Vec::new(),
            create_time: now,
            update_time: now,
            version: 1,
        };
        self.apply_all(&mut directory, &DirectoryField::ALL, input, None)
            .await?;
        let event = changes::event(
            admin.actor(),
            now,
            ResourceType::Directory,
            directory.id,
            ChangeKind::Created,
            changes::diff(None, &audit(&directory)),
        );
        let key = fields::idempotency_key("CreateDirectory", admin.actor(), request_id, input);
        let inserted = self
            .store
            .insert_directory(&directory, &event, key.as_ref())
            .await?;
        fields::created(inserted, key.as_ref(), async |id| self.read(id).await).await
    }

    async fn read(&self, id: Uuid) -> Result<Directory> {
        self.store.directory(id).await?.ok_or(Error::NotFound {
            resource: "directory",
        })
    }

    /// Directory `id`.
    pub async fn get(&self, _reader: &StaffReader, id: Uuid) -> Result<Directory> {
        self.read(id).await
    }

    /// Changes `fields` of directory `id`, if `etag` is current.
    #[tracing::instrument(skip(self, admin, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        admin: &Administrator,
        id: Uuid,
        etag: &str,
        fields: &[DirectoryField],
        input: &DirectoryInput,
    ) -> Result<Directory> {
        let current = self.read(id).await?;
        check_etag("directory", &current.etag(), etag)?;
        let mut next = current.clone();
        self.apply_all(&mut next, fields, input, Some(&current))
            .await?;
        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = self.clock.now();
        let event = changes::event(
            admin.actor(),
            next.update_time,
            ResourceType::Directory,
            id,
            ChangeKind::Updated,
            changes,
        );
        self.store
            .update_directory(&next, current.version, &event)
            .await
    }

    /// One page of directories.
    pub async fn list(
        &self,
        _reader: &StaffReader,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Directory>> {
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&"directories");
        let cursor: Option<Cursor> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .list_directories(cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, directory_cursor))
    }

    /// Checks `fields` of `input` and writes them into `directory`; readers new to it must
    /// exist.
    async fn apply_all(
        &self,
        directory: &mut Directory,
        fields: &[DirectoryField],
        input: &DirectoryInput,
        current: Option<&Directory>,
    ) -> Result<()> {
        let mut violations = Violations::default();
        for field in fields {
            let name = field.name();
            match field {
                DirectoryField::Name => {
                    directory.name =
                        fields::single_line(&mut violations, name, &input.name, 100, true);
                }
                DirectoryField::Comment => {
                    directory.comment =
                        fields::multi_line(&mut violations, name, &input.comment, 10_000);
                }
                DirectoryField::ReaderAgentIds => {
                    directory.reader_agent_ids =
                        readers(&mut violations, name, &input.reader_agent_ids);
                }
                DirectoryField::ReaderGroupIds => {
                    directory.reader_group_ids =
                        readers(&mut violations, name, &input.reader_group_ids);
                }
            }
        }
        violations.finish()?;
        let mut violations = Violations::default();
        let known = |ids: fn(&Directory) -> &Vec<Uuid>, id: &Uuid| {
            current.is_some_and(|current| ids(current).contains(id))
        };
        for (index, id) in directory.reader_agent_ids.iter().enumerate() {
            if !known(|d| &d.reader_agent_ids, id) && self.store.agent(*id).await?.is_none() {
                violations.add(
                    format!("reader_agent_ids[{index}]"),
                    format!("no agent has the id {id}"),
                );
            }
        }
        for (index, id) in directory.reader_group_ids.iter().enumerate() {
            if !known(|d| &d.reader_group_ids, id) && self.store.group(*id).await?.is_none() {
                violations.add(
                    format!("reader_group_ids[{index}]"),
                    format!("no group has the id {id}"),
                );
            }
        }
        violations.finish()
    }
}

/// Reader ids: at most [`MAX_READERS`], each once (in the order given).
fn readers(violations: &mut Violations, field: &str, ids: &[Uuid]) -> Vec<Uuid> {
    if ids.len() > MAX_READERS {
        violations.add(field, format!("must list at most {MAX_READERS} ids"));
    }
    let mut unique = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    unique
}

/// The audited fields of a directory.
fn audit(directory: &Directory) -> Audit {
    vec![
        ("name", json!(directory.name)),
        ("comment", json!(directory.comment)),
        ("reader_agent_ids", json!(directory.reader_agent_ids)),
        ("reader_group_ids", json!(directory.reader_group_ids)),
    ]
}

/// A contact moved from directory `current` to `next` (either may be none) by a writer who
/// reads `contacts`: the directory must exist, and the writer may file only into one it
/// reads (one it may not read is, to it, no directory at all).
pub(crate) async fn check_filing(
    store: &Store,
    contacts: &Scope,
    current: Option<Uuid>,
    next: Option<Uuid>,
) -> Result<()> {
    let Some(id) = next.filter(|id| Some(*id) != current) else {
        return Ok(());
    };
    if contacts.admits_filed(Some(id)) && store.directory(id).await?.is_some() {
        return Ok(());
    }
    Err(Error::invalid(
        "directory_id",
        format!("no directory you may file into has the id {id}"),
    ))
}
