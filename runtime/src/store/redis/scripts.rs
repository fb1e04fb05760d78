//! The Lua scripts of the Redis store (sources in `lua/`). Each is sent by its SHA1 (`EVALSHA`)
//! and loaded on the server the first time it answers `NOSCRIPT`.

use deadpool_redis::redis::Script;

/// Every script, hashed once per store.
#[derive(Debug)]
pub(super) struct Scripts {
    /// The atomic commit.
    pub commit: Script,
    /// Listing of unacknowledged outbox entries.
    pub outbox: Script,
    /// Due timers of a partition.
    pub due: Script,
    /// Adding a session.
    pub session_add: Script,
    /// Removing a session.
    pub session_remove: Script,
    /// The sessions of a participant.
    pub sessions_of: Script,
    /// Granting a delivery slot to a node.
    pub slot_claim: Script,
    /// Freeing a node's delivery slot.
    pub slot_release: Script,
    /// The live slots of participants' sessions.
    pub slots_of: Script,
    /// Taking tokens from a rate bucket.
    pub rate_take: Script,
    /// Replacing the pattern registry if it is at the version read.
    pub registry_store: Script,
}

impl Scripts {
    /// Hashes the store's scripts.
    pub fn new() -> Scripts {
        Scripts {
            commit: Script::new(include_str!("lua/commit.lua")),
            outbox: Script::new(include_str!("lua/outbox.lua")),
            due: Script::new(include_str!("lua/due.lua")),
            session_add: Script::new(include_str!("lua/session_add.lua")),
            session_remove: Script::new(include_str!("lua/session_remove.lua")),
            sessions_of: Script::new(include_str!("lua/sessions_of.lua")),
            slot_claim: Script::new(include_str!("lua/slot_claim.lua")),
            slot_release: Script::new(include_str!("lua/slot_release.lua")),
            slots_of: Script::new(include_str!("lua/slots_of.lua")),
            rate_take: Script::new(include_str!("lua/rate_take.lua")),
            registry_store: Script::new(include_str!("lua/registry_store.lua")),
        }
    }
}

/// The scripts of Redlock and of the fence record.
#[derive(Debug)]
pub(super) struct LockScripts {
    /// Lock (or extend) on one master.
    pub lock: Script,
    /// Write a new grant's token on one master.
    pub lock_token: Script,
    /// Unlock on one master.
    pub unlock: Script,
    /// Record a grant or renewal on the state server.
    pub fence_grant: Script,
    /// Record a release on the state server.
    pub fence_release: Script,
}

impl LockScripts {
    /// Hashes the lock scripts.
    pub fn new() -> LockScripts {
        LockScripts {
            lock: Script::new(include_str!("lua/lock.lua")),
            lock_token: Script::new(include_str!("lua/lock_token.lua")),
            unlock: Script::new(include_str!("lua/unlock.lua")),
            fence_grant: Script::new(include_str!("lua/fence_grant.lua")),
            fence_release: Script::new(include_str!("lua/fence_release.lua")),
        }
    }
}
