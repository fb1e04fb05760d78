//! The console (docs/console.md): a browser UI served by every session node at `/console`.
//!
//! The page, its script and its style sheet are compiled into the binary (no build step, nothing
//! fetched from elsewhere at run time). The console talks to the node like any client: over `/ws`
//! with the signed-in participant's token, using the `sysControl`/`userControl` operations, and
//! reads `/metrics` for its health screen. Two small JSON routes help it:
//!
//! - `GET /console/api/whoami` — the participant and roles a token authenticates as, so the
//!   console shows only what that participant may use.
//! - `GET /console/api/dev/participants` and `POST /console/api/dev/token` — `threds dev` only:
//!   the sessions model's participants, and a token minted for one of them (one-click sign-in).
//!   Elsewhere they answer 404: production tokens come from the identity provider.

use super::http::{authenticate, SessionState};
use super::protocol;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use threds_runtime::engine::admin::ADMIN_ROLE;

/// The page.
const INDEX: &str = include_str!("../../console/index.html");
/// The application.
const SCRIPT: &str = include_str!("../../console/console.js");
/// The pattern graph layout.
const GRAPH: &str = include_str!("../../console/graph.js");
/// The style sheet.
const STYLE: &str = include_str!("../../console/console.css");

/// What the page may load and connect to: this node only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How long a token minted by `threds dev` for the console lives, seconds.
const DEV_TOKEN_TTL_SECS: u64 = 12 * 3600;

/// Mounts the console's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(index))
        .route("/console/", web::get().to(index))
        .route("/console/console.js", web::get().to(script))
        .route("/console/graph.js", web::get().to(graph))
        .route("/console/console.css", web::get().to(style))
        .route("/console/api/whoami", web::get().to(whoami))
        .route("/console/api/dev/participants", web::get().to(participants))
        .route("/console/api/dev/token", web::post().to(dev_token));
}

/// An asset with the console's security headers.
fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut answer = HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body);
    answer.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    answer
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn graph() -> HttpResponse {
    asset("text/javascript; charset=utf-8", GRAPH)
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// An error answer (the session routes' shape, with no event to refer to).
fn refusal(status: StatusCode, code: u16, message: String) -> HttpResponse {
    super::http::error(status, code, message, None)
}

/// `GET /console/api/whoami`: `{participant, roles, admin, minting}` for the request's token.
async fn whoami(req: HttpRequest, state: web::Data<SessionState>) -> HttpResponse {
    match authenticate(&req, &state).await {
        Ok((participant, roles)) => {
            let admin = roles.iter().any(|r| r == ADMIN_ROLE);
            HttpResponse::Ok().json(json!({
                "participant": participant,
                "roles": roles,
                "admin": admin,
                "minting": state.minting.0,
            }))
        }
        Err(e) => refusal(
            StatusCode::UNAUTHORIZED,
            protocol::CLOSE_UNAUTHORIZED,
            e.to_string(),
        ),
    }
}

fn not_minting() -> HttpResponse {
    refusal(
        StatusCode::NOT_FOUND,
        protocol::ERR_BAD_FRAME,
        "this node does not mint tokens (only `threds dev` does): paste a token from your identity provider or `threds token`".into(),
    )
}

/// `GET /console/api/dev/participants` (`threds dev`): the sessions model's participants with
/// their roles, for one-click sign-in.
async fn participants(state: web::Data<SessionState>) -> HttpResponse {
    if !state.minting.0 {
        return not_minting();
    }
    let list: Vec<_> = state
        .sessions
        .participants()
        .into_iter()
        .map(|p| {
            let roles = state.sessions.roles_of(&p);
            json!({"participant": p, "roles": roles})
        })
        .collect();
    HttpResponse::Ok().json(json!({ "participants": list }))
}

/// The body of `POST /console/api/dev/token`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    participant: String,
}

/// `POST /console/api/dev/token` (`threds dev`): `{"token"}` for `{"participant"}`; its roles come
/// from the sessions model when the token is used, as for any token.
async fn dev_token(state: web::Data<SessionState>, body: web::Bytes) -> HttpResponse {
    if !state.minting.0 {
        return not_minting();
    }
    let asked: TokenRequest = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(e) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                protocol::ERR_BAD_FRAME,
                format!("expected {{\"participant\": \"...\"}}: {e}"),
            )
        }
    };
    if !crate::auth::valid_participant(&asked.participant) {
        return refusal(
            StatusCode::BAD_REQUEST,
            protocol::ERR_INVALID_EVENT,
            format!(
                "participant: '{}' is not a valid participant id",
                asked.participant
            ),
        );
    }
    let Some(secret) = state.verifier.secret() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            protocol::ERR_UNAVAILABLE,
            "no JWT secret to sign with".into(),
        );
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match secret.mint(&asked.participant, &[], now, DEV_TOKEN_TTL_SECS) {
        Ok(token) => {
            HttpResponse::Ok().json(json!({"token": token, "expiresIn": DEV_TOKEN_TTL_SECS}))
        }
        Err(e) => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            protocol::ERR_UNAVAILABLE,
            e.to_string(),
        ),
    }
}
