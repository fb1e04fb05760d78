//! The sessions model: named groups of participants, addressable as `$<group>` (spec §6.1).

use serde::{Deserialize, Serialize};

/// `{groups: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SessionsModel {
    /// The groups.
    #[serde(default)]
    pub groups: Vec<Group>,
}

/// A named group of participants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Addressed as `$<name>`.
    pub name: String,
    /// Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Members.
    #[serde(default)]
    pub participants: Vec<GroupMember>,
}

/// `{participantId, roles?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The member's participant id.
    #[serde(rename = "participantId")]
    pub participant_id: String,
    /// Roles granted to the member (Threds extension; e.g. `admin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl SessionsModel {
    /// Members of group `name` (without the `$`), or `None` for an unknown group.
    pub fn group(&self, name: &str) -> Option<impl Iterator<Item = &str>> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.participants.iter().map(|p| p.participant_id.as_str()))
    }

    /// Roles the model grants `participant` (from every group it is a member of).
    pub fn roles_of(&self, participant: &str) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for member in self.groups.iter().flat_map(|g| &g.participants) {
            if member.participant_id == participant {
                for r in &member.roles {
                    if !roles.contains(r) {
                        roles.push(r.clone());
                    }
                }
            }
        }
        roles
    }

    /// Every participant named in any group, de-duplicated, in order of first appearance.
    pub fn participants(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for member in self.groups.iter().flat_map(|g| &g.participants) {
            if !out.contains(&member.participant_id) {
                out.push(member.participant_id.clone());
            }
        }
        out
    }
}
