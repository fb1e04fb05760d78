//! HTTP routes of a session node: `/ws` and `POST /events` (`/livez` and `/readyz` are every
//! node's, in `crate::node`).

use super::connection::{refuse, Connection, Link, Peer};
use super::hub::Hub;
use super::intake::Intake;
use super::protocol::{self, ServerFrame};
use crate::auth::{self, Secret};
use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::sync::Arc;
use threds_patterns::model::{Event, SessionsModel};
use tokio_util::sync::CancellationToken;

/// What the routes share.
#[derive(Clone)]
pub struct SessionState {
    /// Token verification.
    pub secret: Secret,
    /// Roles from the sessions model.
    pub sessions: Arc<SessionsModel>,
    /// Local connections.
    pub hub: Addr<Hub>,
    /// Where client events go.
    pub intake: Intake,
    /// Largest frame or body accepted.
    pub max_frame_bytes: usize,
    /// Per-connection outbound queue.
    pub connection_queue: usize,
    /// Cancelled on shutdown: connections close with 1001.
    pub shutdown: CancellationToken,
}

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(ws))
        .route("/events", web::post().to(post_event));
}

/// The bearer token of a request: `Authorization: Bearer ...`, else `?token=...`.
fn bearer(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("token").cloned())
}

/// The participant and roles a request authenticates as.
fn authenticate(
    req: &HttpRequest,
    state: &SessionState,
) -> Result<(String, Vec<String>), auth::Error> {
    let token = bearer(req).ok_or(auth::Error::Missing)?;
    let claims = state.secret.verify(&token)?;
    let mut roles = claims.roles.clone();
    for role in state.sessions.roles_of(&claims.sub) {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok((claims.sub, roles))
}

async fn ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<SessionState>,
) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    match authenticate(&req, &state) {
        Err(e) => {
            // Accept, then close with a reason a browser can read.
            actix_web::rt::spawn(refuse(session, protocol::CLOSE_UNAUTHORIZED, e.to_string()));
        }
        Ok((participant, roles)) => {
            let limit = state.max_frame_bytes;
            let stream = stream
                .max_frame_size(limit)
                .aggregate_continuations()
                .max_continuation_size(limit);
            Connection::start(
                Peer { participant, roles },
                Link {
                    hub: state.hub.clone(),
                    intake: state.intake.clone(),
                    queue: state.connection_queue,
                    shutdown: state.shutdown.clone(),
                },
                session,
                stream,
            );
        }
    }
    Ok(response)
}

fn error(
    status: actix_web::http::StatusCode,
    code: u16,
    message: String,
    reference: Option<String>,
) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({"error": {"code": code, "message": message, "ref": reference}}))
}

/// `POST /events`: body is an event (or `{"event": {...}}`); answers `202 {"ack": {"id"}}`.
async fn post_event(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<SessionState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let (participant, roles) = match authenticate(&req, &state) {
        Ok(who) => who,
        Err(e) => {
            return error(
                StatusCode::UNAUTHORIZED,
                protocol::CLOSE_UNAUTHORIZED,
                e.to_string(),
                None,
            )
        }
    };
    if body.len() > state.max_frame_bytes {
        let message = format!(
            "body of {} bytes exceeds the limit of {}",
            body.len(),
            state.max_frame_bytes
        );
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            protocol::ERR_BAD_FRAME,
            message,
            None,
        );
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                protocol::ERR_BAD_FRAME,
                format!("not JSON: {e}"),
                None,
            )
        }
    };
    let value = match value {
        Value::Object(mut obj) if obj.len() == 1 && obj.contains_key("event") => {
            obj.remove("event").unwrap_or_default()
        }
        other => other,
    };
    let reference = value.get("id").and_then(Value::as_str).map(str::to_string);
    // The source is stamped from the token, so the client need not send one.
    let mut value = value;
    if let Value::Object(obj) = &mut value {
        obj.insert("source".into(), json!({"id": participant}));
    }
    let event = match Event::from_value(value) {
        Ok(e) => e,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                protocol::ERR_INVALID_EVENT,
                e.to_string(),
                reference,
            )
        }
    };
    let id = event.id().to_string();
    // A caller that traces its request gets the event in its trace.
    let parent = req
        .headers()
        .get(threds_runtime::trace::HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(threds_runtime::trace::TraceParent::parse);
    match state
        .intake
        .submit(event, &participant, &roles, parent, "http")
        .await
    {
        Ok(_) => HttpResponse::Accepted().body(ServerFrame::Ack { id }.to_text()),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            protocol::ERR_UNAVAILABLE,
            e.to_string(),
            Some(id),
        ),
    }
}
