//! The resolver config: agents whose `nodeType` and `nodeId` are service addresses (spec §8).

use serde::{Deserialize, Serialize};

/// `{agents: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResolverConfig {
    /// The agents.
    #[serde(default)]
    pub agents: Vec<Agent>,
}

/// An agent: a service reachable at its `nodeType` and `nodeId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The agent's type address, e.g. `org.wt.persistence`.
    #[serde(rename = "nodeType")]
    pub node_type: String,
    /// The agent's instance address.
    #[serde(default, rename = "nodeId", skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Name of the agent's config.
    #[serde(
        default,
        rename = "configName",
        skip_serializing_if = "Option::is_none"
    )]
    pub config_name: Option<String>,
    /// Routed through the session service like a participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
    /// Excluded from the system spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
}

impl ResolverConfig {
    /// The agent `address` names, by `nodeType` or `nodeId`.
    pub fn agent(&self, address: &str) -> Option<&Agent> {
        self.agents
            .iter()
            .find(|a| a.node_type == address || a.node_id.as_deref() == Some(address))
    }

    /// True when `address` is a service (local or remote) rather than a participant.
    pub fn is_service(&self, address: &str) -> bool {
        self.agent(address).is_some()
    }
}
