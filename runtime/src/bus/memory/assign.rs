//! The range assignor: each topic's partitions are cut into contiguous ranges, one per subscribed
//! member in name order (Kafka's default). Equal partition indexes of topics with the same
//! partition count land on the same member, so co-partitioned topics stay together.

/// A topic and one of its partitions.
pub(super) type Tp = (String, u32);
use std::collections::{BTreeMap, BTreeSet};

/// Assigns the partitions of every subscribed topic among `members` (name → subscribed topics),
/// given each topic's partition count. Deterministic: depends only on names and counts.
pub(super) fn range<'a>(
    members: impl IntoIterator<Item = (&'a str, &'a [String])>,
    partitions: impl Fn(&str) -> u32,
) -> BTreeMap<String, BTreeSet<Tp>> {
    let mut subscribers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut result: BTreeMap<String, BTreeSet<Tp>> = BTreeMap::new();
    for (member, topics) in members {
        result.entry(member.to_owned()).or_default();
        for topic in topics {
            subscribers.entry(topic.as_str()).or_default().push(member);
        }
    }
    for (topic, mut names) in subscribers {
        names.sort_unstable();
        names.dedup();
        let count = partitions(topic);
        // `names` is never empty: a topic is only listed because someone subscribed to it.
        let members = u32::try_from(names.len()).unwrap_or(u32::MAX).max(1);
        let (each, extra) = (count / members, count % members);
        let mut next = 0;
        for (index, name) in (0u32..).zip(names) {
            let take = each + u32::from(index < extra);
            let owned = result.entry(name.to_owned()).or_default();
            owned.extend((next..next + take).map(|p| (topic.to_owned(), p)));
            next += take;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn counts(topic: &str) -> u32 {
        match topic {
            "a" => 5,
            "b" => 2,
            _ => 0,
        }
    }

    #[test]
    fn splits_each_topic_into_contiguous_ranges() {
        let both = ["a".to_owned(), "b".to_owned()];
        let only_a = ["a".to_owned()];
        let got = range(
            [("m2", &both[..]), ("m1", &both[..]), ("m3", &only_a[..])],
            counts,
        );
        let tps = |v: &[(&str, u32)]| -> BTreeSet<Tp> {
            v.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
        };
        assert_eq!(got["m1"], tps(&[("a", 0), ("a", 1), ("b", 0)]));
        assert_eq!(got["m2"], tps(&[("a", 2), ("a", 3), ("b", 1)]));
        assert_eq!(got["m3"], tps(&[("a", 4)]));
    }

    #[test]
    fn more_members_than_partitions_leaves_some_idle() {
        let b = ["b".to_owned()];
        let got = range([("x", &b[..]), ("y", &b[..]), ("z", &b[..])], counts);
        assert_eq!(got["x"].len(), 1);
        assert_eq!(got["y"].len(), 1);
        assert!(got["z"].is_empty());
    }
}
