//! The connection to one Redis server: a deadpool pool of multiplexed connections, of which one per
//! thread is kept checked out and shared by every request made on that thread.
//!
//! A multiplexed connection pipelines concurrent requests over one socket; keeping it checked out
//! spares each request the pool's recycle check (an `UNWATCH`+`PING` round trip), so a commit is
//! exactly one round trip (`EVALSHA`). A connection's socket is driven by a task on the runtime
//! that opened it, so each thread (an engine arbiter, the main runtime) opens its own while the
//! pool has room: its replies then wake the thread waiting for them directly instead of passing
//! through another thread first (two wake-ups per request less). Threads beyond the pool's size
//! share the connections held. When a request fails with a connection-level error its connection
//! is given back to the pool, whose recycle check then drops it, and the next request checks out a
//! working one.

use crate::store::Error;
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisError, ScriptInvocation,
};
use deadpool_redis::{Connection, Manager, Pool, Runtime};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Duration;

/// Connection settings shared by every server of a store.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkSettings {
    /// Connections per server pool.
    pub pool_size: usize,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one reply.
    pub response_timeout: Duration,
}

/// One Redis server.
pub(super) struct Link {
    /// The server as shown in errors (`host:port`, no credentials).
    name: String,
    /// The pool.
    pool: Pool,
    /// The connections requests use while they work, by the thread that opened them.
    held: Mutex<Vec<(ThreadId, Connection)>>,
    /// Taken while a thread looks for a connection of its own, one at a time.
    opening: tokio::sync::Mutex<()>,
    /// Requests sent (each one round trip).
    requests: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("name", &self.name).finish()
    }
}

impl Link {
    /// A link to the server at `url` (no I/O yet).
    pub fn new(url: &str, settings: LinkSettings) -> Result<Link, Error> {
        let name = server_name(url);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout));
        let manager = Manager::new_with_config(url, config)
            .map_err(|e| Error::Backend(format!("redis {name}: bad URL: {e}")))?;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(settings.connect_timeout))
            .wait_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.response_timeout))
            .build()
            .map_err(|e| Error::unavailable(format!("redis {name}: pool"), e))?;
        Ok(Link {
            name,
            pool,
            held: Mutex::new(Vec::new()),
            opening: tokio::sync::Mutex::new(()),
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The server as shown in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let (owner, mut conn) = self.connection().await?;
        let result = cmd.query_async(&mut conn).await;
        self.settle(owner, result)
    }

    /// Runs a pipeline (one round trip).
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, Error> {
        let (owner, mut conn) = self.connection().await?;
        let result = pipe.query_async(&mut conn).await;
        self.settle(owner, result)
    }

    /// Runs a script: `EVALSHA`, loading it first if the server does not know it (`NOSCRIPT`).
    pub async fn script<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        let (owner, mut conn) = self.connection().await?;
        let result = invocation.invoke_async(&mut conn).await;
        self.settle(owner, result)
    }

    /// Requests sent to this server so far (each a round trip: a command, a pipeline or a script).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The connection this thread uses, with the thread that opened it: its own, else one checked
    /// out of the pool for it while the pool has room, else another thread's (counts one request).
    async fn connection(&self) -> Result<(ThreadId, MultiplexedConnection), Error> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let me = std::thread::current().id();
        if let Some(own) = self.held_by(me) {
            return Ok((me, own));
        }
        // One thread at a time: the pool's room is then known.
        let _opening = self.opening.lock().await;
        if self.lock().len() >= self.pool.status().max_size {
            if let Some((thread, conn)) = self.lock().first() {
                return Ok((*thread, MultiplexedConnection::clone(conn)));
            }
        }
        let fresh =
            self.pool.get().await.map_err(|e| {
                Error::unavailable(format!("redis {}: no connection", self.name), e)
            })?;
        let conn = MultiplexedConnection::clone(&fresh);
        self.lock().push((me, fresh));
        Ok((me, conn))
    }

    /// The connection `thread` opened, if it holds one.
    fn held_by(&self, thread: ThreadId) -> Option<MultiplexedConnection> {
        self.lock()
            .iter()
            .find(|(t, _)| *t == thread)
            .map(|(_, conn)| MultiplexedConnection::clone(conn))
    }

    /// Maps a result; a connection-level failure gives the connection opened by `owner` back to
    /// the pool.
    fn settle<T>(&self, owner: ThreadId, result: Result<T, RedisError>) -> Result<T, Error> {
        result.map_err(|e| {
            if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_timeout()
                || e.is_unrecoverable_error()
            {
                self.lock().retain(|(thread, _)| *thread != owner);
            }
            Error::unavailable(format!("redis {}", self.name), e)
        })
    }

    /// The connections held (a poisoned lock only ever held a clone or a push).
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(ThreadId, Connection)>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `host:port[/db]` of a Redis URL, without scheme or credentials.
fn server_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::server_name;

    #[test]
    fn server_names_hide_credentials() {
        assert_eq!(server_name("redis://127.0.0.1:6379/"), "127.0.0.1:6379");
        assert_eq!(server_name("redis://u:secret@h:1/2"), "h:1/2");
        assert_eq!(server_name("h:1"), "h:1");
    }
}
