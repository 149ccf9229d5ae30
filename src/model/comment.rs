use jiff::Timestamp;
use uuid::Uuid;

use super::organisation::etag_of;

/// What a comment is written on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum CommentParent {
    /// A ticket: the conversation with the customer.
    Ticket(Uuid),
    /// An organisation: agents' supplementary notes.
    Organisation(Uuid),
    /// A customer: agents' supplementary notes.
    Customer(Uuid),
}

impl CommentParent {
    /// The stored kind name.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Ticket(_) => "ticket",
            Self::Organisation(_) => "organisation",
            Self::Customer(_) => "customer",
        }
    }

    /// The parent's id.
    pub fn id(self) -> Uuid {
        match self {
            Self::Ticket(id) | Self::Organisation(id) | Self::Customer(id) => id,
        }
    }

    /// The parent of stored `kind` with `id`.
    pub fn of(kind: &str, id: Uuid) -> Option<Self> {
        match kind {
            "ticket" => Some(Self::Ticket(id)),
            "organisation" => Some(Self::Organisation(id)),
            "customer" => Some(Self::Customer(id)),
            _ => None,
        }
    }
}

/// Someone who writes or receives comments.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Party {
    /// An agent.
    Agent(Uuid),
    /// A customer.
    Customer(Uuid),
    /// An administrator, known by the token it used.
    Admin(Uuid),
}

impl Party {
    /// The stored kind name.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Agent(_) => "agent",
            Self::Customer(_) => "customer",
            Self::Admin(_) => "admin",
        }
    }

    /// The party's id.
    pub fn id(self) -> Uuid {
        match self {
            Self::Agent(id) | Self::Customer(id) | Self::Admin(id) => id,
        }
    }

    /// The party of stored `kind` with `id`.
    pub fn of(kind: &str, id: Uuid) -> Option<Self> {
        match kind {
            "agent" => Some(Self::Agent(id)),
            "customer" => Some(Self::Customer(id)),
            "admin" => Some(Self::Admin(id)),
            _ => None,
        }
    }

    /// Whether this is staff (an agent or an administrator).
    pub fn is_staff(self) -> bool {
        !matches!(self, Self::Customer(_))
    }
}

/// Who may read a comment's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone who may read the parent.
    Public,
    /// Agents only.
    Internal,
    /// The author and the named recipients; others who may read the parent see that it
    /// exists.
    Private,
}

impl Visibility {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Private => "private",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "public" => Some(Self::Public),
            "internal" => Some(Self::Internal),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// A file attached to a comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// The comment it belongs to.
    pub comment_id: Uuid,
    /// The file's name.
    pub file_name: String,
    /// Its media type, e.g. `application/pdf`.
    pub content_type: String,
    /// Free text.
    pub description: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// When the upload completed.
    pub create_time: Timestamp,
    /// When it was deleted (DeleteAttachment); a deleted file is listed only on request and
    /// not downloaded until it is restored.
    pub delete_time: Option<Timestamp>,
}

/// A comment on a ticket, or an agents' note on an organisation or customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// What it is written on.
    pub parent: CommentParent,
    /// Who wrote it.
    pub author: Party,
    /// The text; empty in a private comment's stub.
    pub body: String,
    /// Who may read the body.
    pub visibility: Visibility,
    /// Further readers of a private comment, sorted.
    pub recipients: Vec<Party>,
    /// Its files, in upload order; none in a stub.
    pub attachments: Vec<Attachment>,
    /// True when this is a private comment's stub: it exists, its content is not shown.
    pub redacted: bool,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// When it was deleted (it stays listed as deleted and can be restored).
    pub delete_time: Option<Timestamp>,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl Comment {
    /// The opaque version tag clients send back.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }

    /// Whether `party` may read the body: its author or a recipient (for private comments).
    pub fn addressed_to(&self, party: Party) -> bool {
        self.author == party || self.recipients.contains(&party)
    }
}
