//! The session directory on Redis: `P session:{id}`, `P sessions:{participant}` and
//! `P participants`, each change by one script.

use super::RedisStore;
use crate::store::{Error, Session, SessionDirectory};
use async_trait::async_trait;
use deadpool_redis::redis::cmd;

#[async_trait]
impl SessionDirectory for RedisStore {
    async fn add_session(&self, session: Session) -> Result<(), Error> {
        let mut invocation = self.scripts.session_add.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(&session.id)
            .arg(&session.participant)
            .arg(&session.node);
        let _: i64 = self.state.script(&invocation).await?;
        Ok(())
    }

    async fn remove_session(&self, session_id: &str) -> Result<(), Error> {
        let mut invocation = self.scripts.session_remove.prepare_invoke();
        invocation.arg(&self.prefix).arg(session_id);
        let _: i64 = self.state.script(&invocation).await?;
        Ok(())
    }

    async fn sessions_of(&self, participant: &str) -> Result<Vec<Session>, Error> {
        let mut invocation = self.scripts.sessions_of.prepare_invoke();
        invocation.arg(&self.prefix).arg(participant);
        let flat: Vec<String> = self.state.script(&invocation).await?;
        Ok(flat
            .chunks_exact(2)
            .map(|pair| Session {
                id: pair[0].clone(),
                participant: participant.to_string(),
                node: pair[1].clone(),
            })
            .collect())
    }

    async fn participants(&self) -> Result<Vec<String>, Error> {
        self.state
            .query(cmd("ZRANGE").arg(self.keys().participants()).arg(0).arg(-1))
            .await
    }
}
