//! The process's own endpoints: `/livez`, `/readyz` (every started role has what it needs and the
//! backends answer) and `/metrics` (Prometheus text).

use super::now_ms;
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::documents::Documents;
use threds_runtime::store::Threds;
use threds_runtime::topology::{collections, Topology};

/// Readiness: every started role has what it needs (partitions assigned) and the backends answer.
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
}

impl Health {
    /// `None` when ready, else what is missing.
    async fn missing(&self) -> Option<String> {
        for (name, flag) in &self.flags {
            if !flag.load(Ordering::Acquire) {
                return Some(format!("{name}: waiting for partition assignment"));
            }
        }
        let probe = Duration::from_secs(2);
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

/// `GET /metrics`: Prometheus text of the counters this process keeps.
pub async fn metrics(health: web::Data<Health>) -> HttpResponse {
    let mut out = String::new();
    if let Some(n) = health.threds.round_trips() {
        out.push_str(
            "# HELP threds_store_round_trips_total Requests sent to the thred store's backend.\n",
        );
        out.push_str("# TYPE threds_store_round_trips_total counter\n");
        out.push_str(&format!("threds_store_round_trips_total {n}\n"));
    }
    if !health.restarts.is_empty() {
        out.push_str("# HELP threds_service_restarts_total Restarts of a supervised service after it failed.\n");
        out.push_str("# TYPE threds_service_restarts_total counter\n");
        for (service, n) in &health.restarts {
            let n = n.load(Ordering::Relaxed);
            out.push_str(&format!(
                "threds_service_restarts_total{{service=\"{service}\"}} {n}\n"
            ));
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
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
