//! HTTP routes of a session node: `/ws`, `POST /events` and the console (`/livez`, `/readyz` and
//! `/metrics` are every node's, in `crate::node`).

use super::addresses::{PerAddress, Slot};
use super::budget::ParticipantBudget;
use super::connection::{refuse, Connection, Link, Peer};
use super::gate::Gate;
use super::hub::Hub;
use super::intake::Intake;
use super::limit::Limits;
use super::protocol::{self, ServerFrame};
use crate::auth::{self, Verifier};
use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::model::{Event, SessionsModel};
use threds_runtime::config::ServerConfig;
use threds_runtime::metrics::metrics;
use tokio_util::sync::CancellationToken;

/// What the routes share.
#[derive(Clone)]
pub struct SessionState {
    /// Token verification.
    pub verifier: Verifier,
    /// Roles from the sessions model.
    pub sessions: Arc<SessionsModel>,
    /// Local connections.
    pub hub: Addr<Hub>,
    /// Where client events go.
    pub intake: Intake,
    /// Frame and body limits, timeouts, queues.
    pub server: ServerConfig,
    /// Each participant's rate limit over all its connections and requests, on every node.
    pub budget: Arc<ParticipantBudget>,
    /// Open connections per client address.
    pub addresses: Arc<PerAddress>,
    /// `POST /events` requests in flight.
    pub in_flight: Arc<Gate>,
    /// Cancelled on shutdown: connections close with 1001.
    pub shutdown: CancellationToken,
    /// Whether the console may mint tokens here (`threds dev`).
    pub minting: Minting,
}

/// Whether this node mints tokens for the console (`threds dev` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minting(pub bool);

/// Mounts the routes (the console's are [`super::console::routes`]).
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

/// The participant and roles a request authenticates as (waits only for a token whose signing
/// key is not yet known: see [`Verifier::verify`]).
pub(super) async fn authenticate(
    req: &HttpRequest,
    state: &SessionState,
) -> Result<(String, Vec<String>), auth::Error> {
    let token = bearer(req).ok_or(auth::Error::Missing)?;
    let claims = state.verifier.verify(&token).await?;
    let mut roles = claims.roles.clone();
    for role in state.sessions.roles_of(&claims.sub) {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok((claims.sub, roles))
}

/// The request's `Origin`, when it is a browser's and not in `[server] allowed_origins`.
fn foreign_origin(req: &HttpRequest, state: &SessionState) -> Option<String> {
    let allowed = &state.server.allowed_origins;
    let origin = req
        .headers()
        .get("origin")?
        .to_str()
        .unwrap_or("(not text)");
    (!allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)))
        .then(|| origin.to_owned())
}

/// A slot for one more connection from the request's address, or how many it has open.
fn address_slot(req: &HttpRequest, state: &SessionState) -> Result<Option<Slot>, usize> {
    state.addresses.take(req.peer_addr().map(|a| a.ip()))
}

/// 429 for an address with `open` connections, the most allowed.
fn too_many_connections(open: usize, state: &SessionState) -> HttpResponse {
    let message = format!(
        "{open} connections from this address are open, the most allowed ([server] max_connections_per_address = {})",
        state.addresses.max()
    );
    retry_soon(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        protocol::ERR_TOO_MANY_CONNECTIONS,
        message,
        None,
    )
}

/// An error answer with `Retry-After: 1`.
fn retry_soon(
    status: actix_web::http::StatusCode,
    code: u16,
    message: String,
    reference: Option<String>,
) -> HttpResponse {
    let mut answer = error(status, code, message, reference);
    answer.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("1"),
    );
    answer
}

/// 503 when `[server] max_requests_in_flight` requests are in flight.
fn busy(state: &SessionState) -> HttpResponse {
    metrics().busy_requests.inc();
    let message = format!(
        "the server has {} requests in flight, the most allowed ([server] max_requests_in_flight); retry shortly",
        state.in_flight.max()
    );
    retry_soon(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        protocol::ERR_BUSY,
        message,
        None,
    )
}

/// 403 for a browser origin that is not allowed.
fn forbidden_origin(origin: &str) -> HttpResponse {
    error(
        actix_web::http::StatusCode::FORBIDDEN,
        protocol::ERR_FORBIDDEN_ORIGIN,
        format!("origin {origin} is not allowed ([server] allowed_origins)"),
        None,
    )
}

async fn ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<SessionState>,
) -> actix_web::Result<HttpResponse> {
    if let Some(origin) = foreign_origin(&req, &state) {
        return Ok(forbidden_origin(&origin));
    }
    let slot = match address_slot(&req, &state) {
        Ok(slot) => slot,
        Err(open) => return Ok(too_many_connections(open, &state)),
    };
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    match authenticate(&req, &state).await {
        Err(e) => {
            // Accept, then close with a reason a browser can read.
            actix_web::rt::spawn(refuse(session, protocol::CLOSE_UNAUTHORIZED, e.to_string()));
        }
        Ok((participant, roles)) => {
            let limit = state.server.max_frame_bytes;
            let stream = stream
                .max_frame_size(limit)
                .aggregate_continuations()
                .max_continuation_size(limit);
            Connection::start(
                Peer { participant, roles },
                Link {
                    hub: state.hub.clone(),
                    intake: state.intake.clone(),
                    queue: state.server.connection_queue,
                    queue_bytes: state.server.connection_queue_bytes,
                    ping_interval: Duration::from_millis(state.server.ping_interval_ms.max(1)),
                    ping_timeout: Duration::from_millis(state.server.ping_timeout_ms.max(1)),
                    budget: state.budget.clone(),
                    limits: Limits::new(
                        f64::from(state.server.rate_events_per_sec),
                        f64::from(state.server.rate_events_burst),
                        state.server.rate_bytes_per_sec as f64,
                        std::time::Instant::now(),
                    ),
                    shutdown: state.shutdown.clone(),
                    address: slot,
                },
                session,
                stream,
            );
        }
    }
    Ok(response)
}

/// An error answer `{"error": {code, message, ref}}` with `status`.
pub(super) fn error(
    status: actix_web::http::StatusCode,
    code: u16,
    message: String,
    reference: Option<String>,
) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({"error": {"code": code, "message": message, "ref": reference}}))
}

/// Why a request body was not read.
enum BodyError {
    /// Over the limit (bytes read so far).
    TooLarge(usize),
    /// Not all there within the body timeout.
    TimedOut,
    /// The connection failed.
    Broken(String),
}

/// Reads a body of at most `limit` bytes within `timeout`; stops reading at the limit.
async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<web::BytesMut, BodyError> {
    use futures_util::StreamExt;
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge(body.len() + chunk.len()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

/// `POST /events`: body is an event (or `{"event": {...}}`); answers `202 {"ack": {"id"}}`. The
/// token is checked before a byte of the body is read; the body must arrive within
/// `[server] body_timeout_ms` and stay within `[server] max_frame_bytes`.
async fn post_event(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<SessionState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    if let Some(origin) = foreign_origin(&req, &state) {
        return forbidden_origin(&origin);
    }
    // Held until the answer is built: a request in flight counts as an open connection.
    let _slot = match address_slot(&req, &state) {
        Ok(slot) => slot,
        Err(open) => return too_many_connections(open, &state),
    };
    let Some(_pass) = state.in_flight.enter() else {
        return busy(&state);
    };
    let (participant, roles) = match authenticate(&req, &state).await {
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
    let limit = state.server.max_frame_bytes;
    let timeout = Duration::from_millis(state.server.body_timeout_ms.max(1));
    let body = match read_body(payload, limit, timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(n)) => {
            let message = format!("body of more than {n} bytes exceeds the limit of {limit}");
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                protocol::ERR_BAD_FRAME,
                message,
                None,
            );
        }
        Err(BodyError::TimedOut) => {
            let message = format!("the body did not arrive within {} ms", timeout.as_millis());
            return error(
                StatusCode::REQUEST_TIMEOUT,
                protocol::ERR_BAD_FRAME,
                message,
                None,
            );
        }
        Err(BodyError::Broken(e)) => {
            return error(StatusCode::BAD_REQUEST, protocol::ERR_BAD_FRAME, e, None);
        }
    };
    if let Err(wait) = state
        .budget
        .admit(&participant, body.len(), std::time::Instant::now())
        .await
    {
        metrics().rate_limited_frames.inc();
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", secs.max(1).to_string()))
            .json(json!({"error": {
                "code": protocol::ERR_RATE_LIMITED,
                "message": format!("rate limited: {participant} sends faster than its limit ([server] participant_*); not accepted, retry in {} ms", wait.as_millis().max(1)),
                "ref": Value::Null,
            }}));
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
        Err(e) => retry_soon(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            e.to_string(),
            Some(id),
        ),
    }
}
