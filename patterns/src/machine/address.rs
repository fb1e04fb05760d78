//! Publish-address resolution (spec §6.3): groups, `$thred`, `$all` and plain addresses.

use crate::model::{ResolverConfig, SessionsModel};

/// Expands `addresses` into recipient ids, de-duplicated in order of first appearance.
///
/// `$all` → every participant the host knows (other entries ignored); `$thred` → the thred's
/// participants minus service addresses; `$<group>` → the group's members (unknown group: nobody);
/// anything else (participant ids, service addresses) passes through.
pub fn resolve(
    addresses: &[String],
    thred_participants: &[String],
    all_participants: &dyn Fn() -> Vec<String>,
    sessions: &SessionsModel,
    resolver: &ResolverConfig,
) -> Vec<String> {
    if addresses.iter().any(|a| a == "$all") {
        return dedup(all_participants());
    }
    let mut out: Vec<String> = Vec::new();
    let mut push = |id: &str| {
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    };
    for address in addresses {
        match address.strip_prefix('$') {
            Some("thred") => thred_participants
                .iter()
                .filter(|p| !resolver.is_service(p))
                .for_each(|p| push(p)),
            Some(group) => {
                if let Some(members) = sessions.group(group) {
                    members.for_each(&mut push);
                }
            }
            None => push(address),
        }
    }
    out
}

fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Agent, Group, GroupMember};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn resolves_groups_thred_all_and_plain_addresses() {
        let sessions = SessionsModel {
            groups: vec![Group {
                name: "g".into(),
                description: None,
                participants: vec![
                    GroupMember {
                        participant_id: "a".into(),
                        roles: vec![],
                    },
                    GroupMember {
                        participant_id: "b".into(),
                        roles: vec![],
                    },
                ],
            }],
        };
        let resolver = ResolverConfig {
            agents: vec![Agent {
                name: "p".into(),
                node_type: "org.wt.persistence".into(),
                node_id: Some("persistence0".into()),
                config_name: None,
                remote: None,
                hidden: None,
            }],
        };
        let all = || s(&["x", "y", "x"]);
        let thred = s(&["b", "org.wt.persistence", "c"]);
        assert_eq!(
            resolve(&s(&["$g", "b", "z"]), &thred, &all, &sessions, &resolver),
            s(&["a", "b", "z"])
        );
        assert_eq!(
            resolve(&s(&["$thred"]), &thred, &all, &sessions, &resolver),
            s(&["b", "c"])
        );
        assert_eq!(
            resolve(&s(&["q", "$all"]), &thred, &all, &sessions, &resolver),
            s(&["x", "y"])
        );
        assert_eq!(
            resolve(&s(&["$nope"]), &thred, &all, &sessions, &resolver),
            Vec::<String>::new()
        );
        assert_eq!(
            resolve(
                &s(&["org.wt.persistence"]),
                &thred,
                &all,
                &sessions,
                &resolver
            ),
            s(&["org.wt.persistence"])
        );
    }
}
