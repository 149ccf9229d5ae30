//! `clientele.v1.AgentService`: agents and API tokens.

use tonic::{Request, Response, Status};

use super::{admin, parse_id, principal, staff, timestamp, validity_from_proto, validity_to_proto};
use crate::{
    domain::{
        Agents, Tokens,
        agent::{AgentField, AgentInput, AgentKey},
    },
    error::{Error, Result},
    model::{Agent, DetailsAccess, Token, TokenOwner},
    proto::v1::{self as pb, agent_service_server::AgentService},
};

/// The gRPC face of [`Agents`] and [`Tokens`].
#[derive(Clone, Debug)]
pub struct AgentApi {
    agents: Agents,
    tokens: Tokens,
}

impl AgentApi {
    /// Serves `agents` and `tokens`.
    pub fn new(agents: Agents, tokens: Tokens) -> Self {
        Self { agents, tokens }
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn create_agent(
        &self,
        request: Request<pb::CreateAgentRequest>,
    ) -> Result<Response<pb::CreateAgentResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let request_id = crate::domain::fields::request_id(&request.request_id)?;
        let input = input(request.agent.unwrap_or_default()).map_err(|e| e.within("agent"))?;
        let agent = self
            .agents
            .create(&admin, &input, request_id)
            .await
            .map_err(|e| e.within("agent"))?;
        Ok(Response::new(pb::CreateAgentResponse {
            agent: Some(agent_to_proto(agent)),
        }))
    }

    async fn get_agent(
        &self,
        request: Request<pb::GetAgentRequest>,
    ) -> Result<Response<pb::GetAgentResponse>, Status> {
        let reader = staff(&request)?;
        let key = match request.into_inner().key {
            Some(pb::get_agent_request::Key::Id(id)) => AgentKey::Id(parse_id("id", &id)?),
            Some(pb::get_agent_request::Key::Login(login)) if !login.is_empty() => {
                AgentKey::Login(login)
            }
            _ => return Err(Error::invalid("key", "give an id or a login").into()),
        };
        let agent = self.agents.get(&reader, &key).await?;
        Ok(Response::new(pb::GetAgentResponse {
            agent: Some(agent_to_proto(agent)),
        }))
    }

    async fn update_agent(
        &self,
        request: Request<pb::UpdateAgentRequest>,
    ) -> Result<Response<pb::UpdateAgentResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let fields =
            AgentField::from_mask(&request.update_mask.map(|m| m.paths).unwrap_or_default())?;
        let agent = request.agent.unwrap_or_default();
        let id = parse_id("agent.id", &agent.id)?;
        let etag = agent.etag.clone();
        let input = input(agent).map_err(|e| e.within("agent"))?;
        let agent = self
            .agents
            .update(&admin, id, &etag, &fields, &input)
            .await
            .map_err(|e| e.within("agent"))?;
        Ok(Response::new(pb::UpdateAgentResponse {
            agent: Some(agent_to_proto(agent)),
        }))
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let reader = staff(&request)?;
        let request = request.into_inner();
        let page = self
            .agents
            .list(
                &reader,
                request.include_invalid,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListAgentsResponse {
            agents: page.items.into_iter().map(agent_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let admin = admin(&request)?;
        let request = request.into_inner();
        let owner = owner_from_proto(request.owner.as_ref(), "owner")?
            .ok_or_else(|| Error::invalid("owner", "give admin, an agent_id or a customer_id"))?;
        let expire_time = super::parse_time("expire_time", request.expire_time)?;
        let (token, secret) = self
            .tokens
            .create(&admin, owner, &request.description, expire_time)
            .await?;
        Ok(Response::new(pb::CreateTokenResponse {
            token: Some(token_to_proto(token)),
            secret,
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let request = request.into_inner();
        let owner = owner_from_proto(request.owner.as_ref(), "owner")?;
        let page = self
            .tokens
            .list(
                owner,
                request.include_inactive,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: page.items.into_iter().map(token_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let principal = principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let token = self.tokens.revoke(&principal, id).await?;
        Ok(Response::new(pb::RevokeTokenResponse {
            token: Some(token_to_proto(token)),
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let principal = principal(&request)?;
        let identity = self.tokens.who_am_i(&principal).await?;
        let (customer_id, organisation_ids) = identity
            .customer
            .map(|(id, orgs)| {
                (
                    id.to_string(),
                    orgs.iter().map(ToString::to_string).collect(),
                )
            })
            .unwrap_or_default();
        Ok(Response::new(pb::WhoAmIResponse {
            token: Some(token_to_proto(identity.token)),
            agent: identity.agent.map(agent_to_proto),
            customer_id,
            organisation_ids,
        }))
    }
}

fn input(agent: pb::Agent) -> Result<AgentInput> {
    let access = pb::DetailsAccess::try_from(agent.details_access).map_err(|_| {
        Error::invalid(
            "details_access",
            format!("{} is not a DetailsAccess value", agent.details_access),
        )
    })?;
    let details_access = match access {
        pb::DetailsAccess::Unspecified => None,
        pb::DetailsAccess::None => Some(DetailsAccess::None),
        pb::DetailsAccess::Read => Some(DetailsAccess::Read),
        pb::DetailsAccess::Write => Some(DetailsAccess::Write),
    };
    Ok(AgentInput {
        details_access,
        validity: validity_from_proto("validity", agent.validity)?,
        login: agent.login,
        first_name: agent.first_name,
        last_name: agent.last_name,
        email: agent.email,
        manage_customers: agent.manage_customers,
    })
}

/// A token owner from the API; an empty message is `None`.
fn owner_from_proto(owner: Option<&pb::TokenOwner>, field: &str) -> Result<Option<TokenOwner>> {
    use pb::token_owner::Owner;
    Ok(match owner.and_then(|o| o.owner.as_ref()) {
        None | Some(Owner::Admin(false)) => None,
        Some(Owner::Admin(true)) => Some(TokenOwner::Admin),
        Some(Owner::AgentId(id)) => Some(TokenOwner::Agent(parse_id(
            &format!("{field}.agent_id"),
            id,
        )?)),
        Some(Owner::CustomerId(id)) => Some(TokenOwner::Customer(parse_id(
            &format!("{field}.customer_id"),
            id,
        )?)),
    })
}

fn owner_to_proto(owner: TokenOwner) -> pb::TokenOwner {
    use pb::token_owner::Owner;
    pb::TokenOwner {
        owner: Some(match owner {
            TokenOwner::Admin => Owner::Admin(true),
            TokenOwner::Agent(id) => Owner::AgentId(id.to_string()),
            TokenOwner::Customer(id) => Owner::CustomerId(id.to_string()),
        }),
    }
}

pub(crate) fn token_to_proto(token: Token) -> pb::Token {
    pb::Token {
        id: token.id.to_string(),
        owner: Some(owner_to_proto(token.owner)),
        description: token.description,
        create_time: Some(timestamp(token.create_time)),
        expire_time: token.expire_time.map(timestamp),
        revoke_time: token.revoke_time.map(timestamp),
    }
}

fn agent_to_proto(agent: Agent) -> pb::Agent {
    pb::Agent {
        etag: agent.etag(),
        id: agent.id.to_string(),
        login: agent.login,
        first_name: agent.first_name,
        last_name: agent.last_name,
        email: agent.email,
        manage_customers: agent.manage_customers,
        details_access: match agent.details_access {
            DetailsAccess::None => pb::DetailsAccess::None,
            DetailsAccess::Read => pb::DetailsAccess::Read,
            DetailsAccess::Write => pb::DetailsAccess::Write,
        }
        .into(),
        validity: validity_to_proto(agent.validity),
        create_time: Some(timestamp(agent.create_time)),
        update_time: Some(timestamp(agent.update_time)),
    }
}
