use sea_orm::entity::prelude::*;

/// A row of `tickets`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub number: i64,
    pub title: String,
    /// `title` lower-cased, for substring search.
    pub search: String,
    pub group_id: Uuid,
    pub customer_id: Uuid,
    pub organisation_id: Option<Uuid>,
    pub state: String,
    pub priority: i32,
    pub assignee_id: Option<Uuid>,
    pub sla_policy_id: Option<Uuid>,
    pub applied_sla_policy_id: Option<Uuid>,
    pub pending_until: Option<i64>,
    pub first_response_time: Option<i64>,
    pub close_time: Option<i64>,
    pub last_customer_contact: i64,
    pub last_agent_response: Option<i64>,
    pub pending_since: Option<i64>,
    /// JSON of the paused time and warning instants of the SLA clocks.
    pub clocks: String,
    pub first_response_due: Option<i64>,
    pub update_due: Option<i64>,
    pub solution_due: Option<i64>,
    /// JSON of the alert of each deadline and the reminder.
    pub alerts: String,
    /// The worst alert: `none`, `warning` or `escalated`.
    pub escalation: String,
    pub reminder_due: bool,
    /// Whether the ticket is in warning, escalated or has its reminder due.
    pub attention: bool,
    /// The next instant the ticket changes by itself; what the escalation scheduler sleeps on.
    pub next_event_time: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
    /// The ticket it was merged into (then it is closed for good).
    pub merged_into: Option<Uuid>,
    /// The assessed severity; empty until assessed.
    pub severity: String,
    /// The contact group whose SLA contract the ticket got.
    pub sla_contact_group_id: Option<Uuid>,
    /// The group whose readers alone (besides its customers) read the ticket.
    pub reader_group_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
