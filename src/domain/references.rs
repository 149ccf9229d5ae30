//! Checks of the resources a request points at: an id that names nothing is the client's
//! mistake (INVALID_ARGUMENT naming the field); an agent that is out of use is a state of the
//! system (FAILED_PRECONDITION).

use uuid::Uuid;

use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{Agent, SlaPolicy},
    store::Store,
};

/// The valid agent `id`, named by `field` in the request.
pub(crate) async fn valid_agent(store: &Store, field: &str, id: Uuid) -> Result<Agent> {
    match store.agent(id).await? {
        None => Err(Error::invalid(field, format!("no agent has the id {id}"))),
        Some(agent) if !agent.validity.is_valid() => Err(Error::FailedPrecondition {
            reason: "AGENT_INVALID",
            message: format!("agent {} is invalid", agent.login),
            violations: vec![PreconditionViolation {
                kind: "AGENT_INVALID".into(),
                subject: id.to_string(),
                description: format!("an invalid agent cannot be named in {field}"),
            }],
        }),
        Some(agent) => Ok(agent),
    }
}

/// The SLA policy `id`, named by `field` in the request.
pub(crate) async fn sla_policy(store: &Store, field: &str, id: Uuid) -> Result<SlaPolicy> {
    store
        .sla_policy(id)
        .await?
        .ok_or_else(|| Error::invalid(field, format!("no SLA policy has the id {id}")))
}

/// Checks the references that changed between `before` and `after` (a new agent, a new
/// policy); unchanged ones were checked when they were set.
pub(crate) async fn check_changed(
    store: &Store,
    agent: (&str, Option<Uuid>, Option<Uuid>),
    policy: (&str, Option<Uuid>, Option<Uuid>),
) -> Result<()> {
    let (field, before, after) = agent;
    if let Some(id) = after.filter(|id| Some(*id) != before) {
        valid_agent(store, field, id).await?;
    }
    let (field, before, after) = policy;
    if let Some(id) = after.filter(|id| Some(*id) != before) {
        sla_policy(store, field, id).await?;
    }
    Ok(())
}
