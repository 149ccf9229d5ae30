use jiff::Timestamp;
use uuid::Uuid;

/// Who a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    /// An agent.
    Agent(Uuid),
    /// A customer.
    Customer(Uuid),
    /// An organisation.
    Organisation(Uuid),
}

impl Subject {
    /// The stored kind name.
    pub fn kind(self) -> SubjectKind {
        match self {
            Self::Agent(_) => SubjectKind::Agent,
            Self::Customer(_) => SubjectKind::Customer,
            Self::Organisation(_) => SubjectKind::Organisation,
        }
    }

    /// The subject's id.
    pub fn id(self) -> Uuid {
        match self {
            Self::Agent(id) | Self::Customer(id) | Self::Organisation(id) => id,
        }
    }

    /// The subject of `kind` with `id`.
    pub fn of(kind: SubjectKind, id: Uuid) -> Self {
        match kind {
            SubjectKind::Agent => Self::Agent(id),
            SubjectKind::Customer => Self::Customer(id),
            SubjectKind::Organisation => Self::Organisation(id),
        }
    }
}

/// The kinds of subjects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// Agents.
    Agent,
    /// Customers.
    Customer,
    /// Organisations.
    Organisation,
}

impl SubjectKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Customer => "customer",
            Self::Organisation => "organisation",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "agent" => Some(Self::Agent),
            "customer" => Some(Self::Customer),
            "organisation" => Some(Self::Organisation),
            _ => None,
        }
    }
}

/// A level of access; RW implies RO.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Read.
    Ro,
    /// Read and write.
    Rw,
}

impl Level {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ro => "ro",
            Self::Rw => "rw",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ro" => Some(Self::Ro),
            "rw" => Some(Self::Rw),
            _ => None,
        }
    }

    /// Whether having `self` gives `wanted` (RW gives RO).
    pub fn covers(self, wanted: Level) -> bool {
        self >= wanted
    }
}

/// Whose tickets an organisation's grant covers; agents' and customers' grants have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantContext {
    /// Agent and customer grants.
    None,
    /// The organisation's own tickets ("same customer").
    SameOrganisation,
    /// Every ticket of the group.
    OtherOrganisations,
}

impl GrantContext {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::SameOrganisation => "same_organisation",
            Self::OtherOrganisations => "other_organisations",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "same_organisation" => Some(Self::SameOrganisation),
            "other_organisations" => Some(Self::OtherOrganisations),
            _ => None,
        }
    }
}

/// A subject's level on a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Who.
    pub subject: Subject,
    /// Which group.
    pub group_id: Uuid,
    /// Whose tickets (organisations only).
    pub context: GrantContext,
    /// RO or RW.
    pub level: Level,
    /// When it was made.
    pub create_time: Timestamp,
    /// When its level last changed.
    pub update_time: Timestamp,
}
