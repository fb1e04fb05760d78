//! `allowedSources` rules (spec §2.2): exact ids, `$group` names and `/regex/` entries.

use crate::model::SessionsModel;

/// One compiled `allowedSources` entry.
#[derive(Debug, Clone)]
pub enum SourceRule {
    /// The source id must equal this.
    Id(String),
    /// The source must be a member of this sessions-model group (`$thred`/`$all` match nobody).
    Group(String),
    /// The source id must match (case-insensitive, anywhere in the id).
    Pattern(regex::Regex),
}

impl SourceRule {
    /// Compiles one entry; a `/regex/` that does not compile is an error (the reference silently
    /// matched nothing).
    pub fn parse(entry: &str) -> Result<SourceRule, String> {
        if let Some(group) = entry.strip_prefix('$') {
            return Ok(SourceRule::Group(group.to_string()));
        }
        if entry.starts_with('/') && entry.len() >= 2 {
            // The text between the first and the last character (assumed `/`).
            let mut chars = entry.char_indices();
            chars.next();
            let end = chars.next_back().map_or(entry.len(), |(i, _)| i);
            let body = &entry[1..end];
            return regex::RegexBuilder::new(body)
                .case_insensitive(true)
                .build()
                .map(SourceRule::Pattern)
                .map_err(|e| format!("invalid regular expression {entry}: {e}"));
        }
        Ok(SourceRule::Id(entry.to_string()))
    }

    /// Does `source_id` satisfy this rule?
    pub fn allows(&self, source_id: &str, sessions: &SessionsModel) -> bool {
        match self {
            SourceRule::Id(id) => id == source_id,
            SourceRule::Group(name) => sessions
                .group(name)
                .is_some_and(|mut members| members.any(|m| m == source_id)),
            SourceRule::Pattern(re) => re.is_match(source_id),
        }
    }
}

/// True when `rules` is empty (no restriction) or any rule allows `source_id`.
pub fn allowed(rules: &[SourceRule], source_id: &str, sessions: &SessionsModel) -> bool {
    rules.is_empty() || rules.iter().any(|r| r.allows(source_id, sessions))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{Group, GroupMember};

    #[test]
    fn rules_match_ids_groups_and_regexes() {
        let sessions = SessionsModel {
            groups: vec![Group {
                name: "ops".into(),
                description: None,
                participants: vec![GroupMember {
                    participant_id: "bob".into(),
                    roles: vec![],
                }],
            }],
        };
        assert!(SourceRule::parse("alice")
            .unwrap()
            .allows("alice", &sessions));
        assert!(!SourceRule::parse("alice")
            .unwrap()
            .allows("alicia", &sessions));
        assert!(SourceRule::parse("$ops").unwrap().allows("bob", &sessions));
        assert!(!SourceRule::parse("$thred")
            .unwrap()
            .allows("bob", &sessions));
        assert!(SourceRule::parse("/^TEST\\./")
            .unwrap()
            .allows("test.dataset", &sessions));
        assert!(SourceRule::parse("/(/").is_err());
        assert!(allowed(&[], "anyone", &sessions));
    }
}
