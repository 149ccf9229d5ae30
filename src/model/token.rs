use jiff::Timestamp;
use uuid::Uuid;

/// Whom a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenOwner {
    /// An administrator.
    Admin,
    /// An agent.
    Agent(Uuid),
    /// A customer.
    Customer(Uuid),
}

impl TokenOwner {
    /// The stored kind name.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agent(_) => "agent",
            Self::Customer(_) => "customer",
        }
    }

    /// The owner's id (none for admins).
    pub fn subject_id(self) -> Option<Uuid> {
        match self {
            Self::Admin => None,
            Self::Agent(id) | Self::Customer(id) => Some(id),
        }
    }

    /// Reads a stored kind and subject.
    pub fn parse(kind: &str, subject: Option<Uuid>) -> Option<Self> {
        match (kind, subject) {
            ("admin", None) => Some(Self::Admin),
            ("agent", Some(id)) => Some(Self::Agent(id)),
            ("customer", Some(id)) => Some(Self::Customer(id)),
            _ => None,
        }
    }
}

/// An API token; the secret itself is never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Identifier.
    pub id: Uuid,
    /// Whom it belongs to.
    pub owner: TokenOwner,
    /// What it is for.
    pub description: String,
    /// When it was made.
    pub create_time: Timestamp,
    /// When it stops working.
    pub expire_time: Option<Timestamp>,
    /// When it was revoked.
    pub revoke_time: Option<Timestamp>,
}

impl Token {
    /// Whether the token works at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoke_time.is_none() && self.expire_time.is_none_or(|expiry| now < expiry)
    }
}
