//! The data model shared by every crate: events, patterns as authored, sessions and resolver config.

pub mod event;
pub mod pattern;
pub mod resolver;
pub mod sessions;

pub use event::{Event, EventContent, EventData, EventError, EventTask, Source, TaskEntry};
pub use pattern::{
    ConditionModel, ConditionType, ConsequentModel, ExpiryModel, InputKind, PatternModel,
    PublishModel, ReactionModel, SpawnModel, SpawnType, StringOrList, TransformModel,
    TransitionModel,
};
pub use resolver::{Agent, ResolverConfig};
pub use sessions::{Group, GroupMember, SessionsModel};
