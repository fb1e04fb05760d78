//! The process's own endpoints: `/livez`, `/readyz` (every started role has what it needs and the
//! backends answer) and `/metrics` (Prometheus text).

use super::now_ms;
use actix_web::{web, HttpResponse};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::{Bus, Error as BusError};
use threds_runtime::documents::Documents;
use threds_runtime::store::Threds;
use threds_runtime::topology::{collections, Topology};

/// Readiness: every started role has what it needs (partitions assigned, its topics there) and the
/// backends answer.
#[derive(Clone)]
pub struct Health {
    /// Readiness flags of the started roles.
    pub flags: Vec<(&'static str, Arc<AtomicBool>)>,
    /// The thred store, probed.
    pub threds: Arc<dyn Threds>,
    /// The documents store, probed.
    pub documents: Arc<dyn Documents>,
    /// Restarts of each supervised service.
    pub restarts: Vec<(String, Arc<AtomicU64>)>,
    /// The bus, asked whether `topics` exist.
    pub bus: Arc<dyn Bus>,
    /// The topics the started roles read or write.
    pub topics: Vec<String>,
}

impl Health {
    /// This node's own counters (store round trips, restarts), read now.
    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("threds");
        if let Some(n) = self.threds.round_trips() {
            let counter = Counter::<u64>::default();
            counter.inc_by(n);
            registry.register(
                "store_round_trips",
                "Requests sent to the thred store's backend",
                counter,
            );
        }
        if !self.restarts.is_empty() {
            let family = Family::<Vec<(String, String)>, Counter>::default();
            for (service, n) in &self.restarts {
                family
                    .get_or_create(&vec![("service".to_owned(), service.clone())])
                    .inc_by(n.load(Ordering::Relaxed));
            }
            registry.register(
                "service_restarts",
                "Restarts of a supervised service after it failed",
                family,
            );
        }
        registry
    }

    /// `None` when ready, else what is missing.
    async fn missing(&self) -> Option<String> {
        for (name, flag) in &self.flags {
            if !flag.load(Ordering::Acquire) {
                return Some(format!("{name}: waiting for partition assignment"));
            }
        }
        let probe = Duration::from_secs(2);
        for topic in &self.topics {
            match tokio::time::timeout(probe, self.bus.topic_ready(topic)).await {
                Ok(Ok(())) => {}
                Ok(Err(BusError::UnknownTopic(_))) => {
                    return Some(format!("bus: topic {topic} does not exist"))
                }
                Ok(Err(e)) => return Some(format!("bus: {e}")),
                Err(_) => return Some(format!("bus: no answer about topic {topic} within 2 s")),
            }
        }
        let (topic, partition) = Topology::default().probe();
        match tokio::time::timeout(probe, self.threds.applied(topic, partition)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Some(format!("thred store: {e}")),
            Err(_) => return Some("thred store: no answer within 2 s".into()),
        }
        let ping = json!({"op": "get", "params": {"type": collections::HEALTH, "matcher": {"id": "ping"}}});
        match tokio::time::timeout(probe, self.documents.run(&ping, now_ms())).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("documents: {e}")),
            Err(_) => Some("documents: no answer within 2 s".into()),
        }
    }
}

/// `GET /livez`: the process runs.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz` while the process waits for its backends: 503.
pub async fn waiting() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .json(json!({"status": "not ready", "reason": "waiting for the backends (Redis, MongoDB) to answer"}))
}

/// `GET /metrics`: the process's metrics as OpenMetrics text (Prometheus scrapes it).
pub async fn metrics(health: web::Data<Health>) -> HttpResponse {
    match threds_runtime::metrics::encode(Some(&health.registry())) {
        Ok(text) => HttpResponse::Ok()
            .content_type(threds_runtime::metrics::CONTENT_TYPE)
            .body(text),
        Err(e) => HttpResponse::InternalServerError().body(format!("encoding metrics: {e}")),
    }
}

/// `GET /readyz`: ready, or why not.
pub async fn readyz(health: web::Data<Health>) -> HttpResponse {
    match health.missing().await {
        None => HttpResponse::Ok().json(json!({"status": "ready"})),
        Some(why) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "not ready", "reason": why}))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use threds_runtime::bus::memory::MemoryBus;
    use threds_runtime::documents::MemoryDocuments;
    use threds_runtime::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_process_whose_topic_is_gone_is_not_ready_until_it_is_back() {
        let bus = Arc::new(MemoryBus::new());
        let topology = Topology::new(2);
        let health = Health {
            flags: Vec::new(),
            threds: Arc::new(MemoryStore::new()),
            documents: Arc::new(MemoryDocuments::new()),
            restarts: Vec::new(),
            bus: bus.clone(),
            topics: vec![topology.events().to_owned(), topology.history().to_owned()],
        };
        bus.create_topic(topology.events(), 2).await.unwrap();
        assert_eq!(
            health.missing().await.as_deref(),
            Some("bus: topic threds.history does not exist")
        );
        bus.create_topic(topology.history(), 2).await.unwrap();
        assert_eq!(health.missing().await, None);
    }
}
