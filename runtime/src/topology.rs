//! Every name a deployment uses, in one place: its topics and their partition counts, the consumer
//! groups that read them, the keys and headers of its records, the resources its engines lease,
//! and the thred store's key layout. Roles, tools and tests ask this module; no topic, group or key
//! literal lives anywhere else.
//!
//! | topic | partitions | key | read by |
//! |---|---|---|---|
//! | [`Topology::events`] | [`Topology::partitions`] | thred id, else source id ([`event_key`]) | [`Topology::engine_group`] |
//! | [`Topology::sessions`] | [`Topology::session_slots`] | first recipient of the record | each session node its own partition, its delivery slot, outside any group ([`crate::bus::Bus::tail`]) |
//! | [`Topology::agent`] per agent | 1 | thred id | [`Topology::agent_group`] |
//! | [`Topology::control`] | 1 | none | every engine, [`Topology::control_group`] of its own |
//! | [`Topology::history`] | [`Topology::partitions`] | thred id (a batch's first) | [`Topology::history_group`] (the history sink) |
//! | [`Topology::dead_letter`] of each | 1 | the original key | people |

/// The persistence agent's service address: its `nodeType` in the resolver config.
pub const PERSISTENCE_AGENT: &str = "org.wt.persistence";

/// Partitions of the sessions topic (delivery slots) unless `[server] session_slots` says otherwise.
pub const DEFAULT_SESSION_SLOTS: u32 = 32;

/// The default prefix of every thred store key.
pub const STORE_PREFIX: &str = "threds:";

/// Inbound events.
const EVENTS: &str = "threds.events";
/// Messages for participants.
const SESSIONS: &str = "threds.sessions";
/// Operations every engine applies.
const CONTROL: &str = "threds.control";
/// History records on their way to the documents store.
const HISTORY: &str = "threds.history";
/// Agent topics are this followed by the agent's `nodeType`.
const AGENT_PREFIX: &str = "threds.agent.";
/// A topic's dead letters go to the topic's name followed by this.
const DEAD_LETTER_SUFFIX: &str = "-dlt";
/// The consumer-group names start with this.
const GROUP_PREFIX: &str = "threds-";
/// The applied-offset entry the readiness check reads (never written).
const PROBE: &str = "threds.readyz";

/// Headers the runtime puts on records.
pub mod headers {
    /// On a dead letter: why the record was given up.
    pub const ERROR: &str = "threds-error";
    /// On a dead letter: where the record was, `topic/partition/offset`.
    pub const ORIGIN: &str = "threds-origin";
    /// On a dead letter: how many times it was tried.
    pub const ATTEMPTS: &str = "threds-attempts";
}

/// Collections of the documents store the runtime writes (history) or reads (readiness).
pub mod collections {
    /// Every event seen or sent (`EventRecord`).
    pub const EVENTS: &str = "EventRecord";
    /// Each thred's log of events and transitions (`ThredLogRecord`).
    pub const THRED_LOG: &str = "ThredLogRecord";
    /// Threds archived when they end (`ThredRecord`).
    pub const ARCHIVE: &str = "ThredRecord";
    /// Read by the readiness check (never written).
    pub const HEALTH: &str = "ThredsHealth";
}

/// A topic with its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic.
    pub name: String,
    /// How many partitions it has.
    pub partitions: u32,
}

/// The names of one deployment; only the partition counts of the events and sessions topics vary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    partitions: u32,
    session_slots: u32,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new(1)
    }
}

impl Topology {
    /// A deployment whose events topic has `partitions` partitions (at least 1).
    pub const fn new(partitions: u32) -> Topology {
        Topology {
            partitions: if partitions == 0 { 1 } else { partitions },
            session_slots: DEFAULT_SESSION_SLOTS,
        }
    }

    /// The same with `slots` partitions of the sessions topic (at least 1).
    pub const fn with_session_slots(mut self, slots: u32) -> Topology {
        self.session_slots = if slots == 0 { 1 } else { slots };
        self
    }

    /// Partitions of the sessions topic: the delivery slots of session nodes.
    pub fn session_slots(&self) -> u32 {
        self.session_slots
    }

    /// Partitions of the events topic.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Inbound events, keyed by [`event_key`]; the engines' input.
    pub fn events(&self) -> &'static str {
        EVENTS
    }

    /// Messages for participants, each partition read by the session node holding it as its
    /// delivery slot.
    pub fn sessions(&self) -> &'static str {
        SESSIONS
    }

    /// Operations every engine applies (pattern reloads), announced by the engine that handled them.
    pub fn control(&self) -> &'static str {
        CONTROL
    }

    /// History records (event records, thred log records, archived threds) of committed steps,
    /// one record per committed batch, for the history sink to write to the documents store.
    pub fn history(&self) -> &'static str {
        HISTORY
    }

    /// The topic of the agent whose `nodeType` is `node_type`.
    pub fn agent(&self, node_type: &str) -> String {
        format!("{AGENT_PREFIX}{node_type}")
    }

    /// Where records of `topic` that cannot be handled go.
    pub fn dead_letter(&self, topic: &str) -> String {
        format!("{topic}{DEAD_LETTER_SUFFIX}")
    }

    /// Every topic the deployment uses, with its partition count.
    pub fn topics(&self) -> Vec<TopicSpec> {
        let spec = |name: String, partitions| TopicSpec { name, partitions };
        let persistence = self.agent(PERSISTENCE_AGENT);
        let mut all = vec![
            spec(self.events().to_owned(), self.partitions),
            spec(self.sessions().to_owned(), self.session_slots),
            spec(persistence.clone(), 1),
            spec(self.control().to_owned(), 1),
            spec(self.history().to_owned(), self.partitions),
        ];
        for topic in [
            self.events(),
            self.sessions(),
            persistence.as_str(),
            self.history(),
        ] {
            all.push(spec(self.dead_letter(topic), 1));
        }
        all
    }

    /// The consumer group of the engines (they share the events partitions).
    pub fn engine_group(&self) -> String {
        format!("{GROUP_PREFIX}engine")
    }

    /// The consumer group of the history sinks (they share the history partitions).
    pub fn history_group(&self) -> String {
        format!("{GROUP_PREFIX}history")
    }

    /// The consumer group of engine `node` on the control topic (each engine reads all of it).
    pub fn control_group(&self, node: &str) -> String {
        format!("{GROUP_PREFIX}control-{node}")
    }

    /// The consumer group of the agent whose `nodeType` is `node_type` (its processes share it).
    pub fn agent_group(&self, node_type: &str) -> String {
        match node_type {
            PERSISTENCE_AGENT => format!("{GROUP_PREFIX}agent-persistence"),
            other => format!("{GROUP_PREFIX}agent-{other}"),
        }
    }

    /// The lease resource of events partition `partition`: who holds it applies the partition.
    pub fn partition_lease(&self, partition: u32) -> String {
        format!("{EVENTS}/{partition}")
    }

    /// The (topic, partition) whose applied offset the readiness check reads from the thred store.
    pub fn probe(&self) -> (&'static str, u32) {
        (PROBE, 0)
    }
}

/// The key of an event on the events topic: its thred (bound), else its source (unbound), so all
/// events of a thred land in one partition.
pub fn event_key<'a>(thred_id: Option<&'a str>, source: &'a str) -> &'a str {
    thred_id.unwrap_or(source)
}

/// The rate bucket (of the store's `RateBudgets` port) of the events `participant` sends.
pub fn participant_events_bucket(participant: &str) -> String {
    format!("events:{participant}")
}

/// The rate bucket of the bytes `participant` sends.
pub fn participant_bytes_bucket(participant: &str) -> String {
    format!("bytes:{participant}")
}

/// The thred store's keys under a prefix (the Redis adapter's layout; its scripts build the same
/// names from the prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreKeys {
    prefix: String,
}

impl Default for StoreKeys {
    fn default() -> Self {
        StoreKeys::new(STORE_PREFIX)
    }
}

impl StoreKeys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> StoreKeys {
        StoreKeys {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key `name` under the prefix.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A thred's hash.
    pub fn thred(&self, id: &str) -> String {
        self.key(&format!("thred:{id}"))
    }

    /// The live thred ids: a sorted set, every score 0, so its order is the ids' byte order.
    pub fn live(&self) -> String {
        self.key("live")
    }

    /// The set of live threds `participant` takes part in.
    pub fn participant_threds(&self, participant: &str) -> String {
        self.key(&format!("participant:{participant}"))
    }

    /// A pattern counter's hash.
    pub fn counter(&self, pattern: &str) -> String {
        self.key(&format!("counter:{pattern}"))
    }

    /// The unbound listeners, by when they started listening.
    pub fn unbound(&self) -> String {
        self.key("unbound")
    }

    /// The set of unacknowledged outbox sequence numbers.
    pub fn outbox(&self) -> String {
        self.key("outbox")
    }

    /// The hash of applied offsets.
    pub fn applied(&self) -> String {
        self.key("applied")
    }

    /// An outbox entry's hash.
    pub fn outbox_entry(&self, seq: u64) -> String {
        self.key(&format!("outbox:{seq}"))
    }

    /// The timers of events partition `partition`.
    pub fn timers(&self, partition: u32) -> String {
        self.key(&format!("timers:{partition}"))
    }

    /// A lease resource's fence: the newest token granted, and the holder while held.
    pub fn fence(&self, resource: &str) -> String {
        self.key(&format!("fence:{resource}"))
    }

    /// Every participant that ever had a session, by first-seen order.
    pub fn participants(&self) -> String {
        self.key("participants")
    }

    /// The pattern registry document (every version of every pattern).
    pub fn patterns(&self) -> String {
        self.key("patterns:registry")
    }

    /// The pattern registry's version.
    pub fn patterns_version(&self) -> String {
        self.key("patterns:version")
    }

    /// A rate bucket's hash (tokens held and when), expiring once the bucket would be full.
    pub fn rate(&self, bucket: &str) -> String {
        self.key(&format!("rate:{bucket}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_names_every_topic_once_with_its_partitions() {
        let topology = Topology::new(8).with_session_slots(5);
        let topics = topology.topics();
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "threds.events",
                "threds.sessions",
                "threds.agent.org.wt.persistence",
                "threds.control",
                "threds.history",
                "threds.events-dlt",
                "threds.sessions-dlt",
                "threds.agent.org.wt.persistence-dlt",
                "threds.history-dlt",
            ]
        );
        let partitioned =
            |t: &TopicSpec| ["threds.events", "threds.history"].contains(&t.name.as_str());
        let expected = |t: &TopicSpec| match t.name.as_str() {
            "threds.sessions" => 5,
            _ if partitioned(t) => 8,
            _ => 1,
        };
        assert!(topics.iter().all(|t| t.partitions == expected(t)));
        assert_eq!(Topology::new(0).partitions(), 1, "at least one partition");
        assert_eq!(Topology::new(1).with_session_slots(0).session_slots(), 1);
        assert_eq!(Topology::new(1).session_slots(), DEFAULT_SESSION_SLOTS);
    }

    #[test]
    fn groups_leases_and_keys_have_their_documented_names() {
        let t = Topology::new(4);
        assert_eq!(t.engine_group(), "threds-engine");
        assert_eq!(t.control_group("e1"), "threds-control-e1");
        assert_eq!(t.history_group(), "threds-history");
        assert_eq!(t.agent_group(PERSISTENCE_AGENT), "threds-agent-persistence");
        assert_eq!(t.agent_group("org.x.mail"), "threds-agent-org.x.mail");
        assert_eq!(t.partition_lease(3), "threds.events/3");
        assert_eq!(event_key(Some("t1"), "alice"), "t1");
        assert_eq!(event_key(None, "alice"), "alice");
        let keys = StoreKeys::default();
        assert_eq!(
            keys.fence(&t.partition_lease(3)),
            "threds:fence:threds.events/3"
        );
        assert_eq!(keys.thred("t1"), "threds:thred:t1");
        assert_eq!(StoreKeys::new("x:").timers(2), "x:timers:2");
        assert_eq!(
            keys.rate(&participant_events_bucket("alice")),
            "threds:rate:events:alice"
        );
        assert_eq!(
            keys.rate(&participant_bytes_bucket("alice")),
            "threds:rate:bytes:alice"
        );
    }
}
