//! The JSON API under `/api/v1`, for scripts, the CLI and agents, authorised by personal API
//! tokens (`Authorization: Bearer lgp_…`) with the same checks as the pages, and each route
//! within a scope. Bodies are JSON with no unknown fields; errors are `{"code","message"}`.
//! Every route is declared with its OpenAPI description, and the router and the document
//! served at `/api/v1/openapi.json` are built from the same declarations, so neither can
//! list a route the other lacks.

mod audit;
pub(crate) mod console;
pub mod model;
pub(crate) mod requests;

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lakegate_app::AppError;
use lakegate_domain::{RequestId, ValidationError};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::WebError;
use crate::extract::ApiUser;
use crate::state::AppState;

use self::model::Me;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lakegate",
        description = "Just-in-time, time-boxed SELECT access to Athena tables and columns \
                       governed by Lake Formation: ask, approve, fetch credentials, run guarded \
                       queries, revoke. Authorise with a personal API token from \
                       `/settings/tokens` (`Authorization: Bearer lgp_…`); each operation names \
                       the scope it needs.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "requests", description = "Asking for access, deciding, ending it"),
        (name = "credentials", description = "Temporary AWS credentials for an active grant"),
        (name = "console", description = "Guarded SQL through the grant's workgroup"),
        (name = "audit", description = "The hash-chained audit trail (admins)"),
        (name = "tokens", description = "Who a token acts as"),
    )
)]
struct ApiDoc;

/// The bearer scheme, and the error answers every operation can give.
struct Common;

/// Answers any route can give, whatever it does.
const COMMON_ERRORS: [(&str, &str); 5] = [
    (
        "401",
        "`Unauthorized`: no token, or one that is unknown, expired or revoked",
    ),
    (
        "403",
        "`InsufficientScope`: the token lacks the scope; `Forbidden`: the policy does not let \
         its owner do this",
    ),
    (
        "422",
        "`InvalidInput`: the body, the path or the query string is wrong, and the message says how",
    ),
    (
        "500",
        "`InternalError`: lakegate could not complete this (a reference is in its log)",
    ),
    (
        "503",
        "`Unavailable`: AWS did not answer in time; try again",
    ),
];

impl Modify for Common {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lgp_…")
                    .description(Some(
                        "A personal API token made at /settings/tokens; its scopes bound what it may do",
                    ))
                    .build(),
            ),
        );
        for item in api.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                for (code, text) in COMMON_ERRORS {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| RefOr::T(error_response(text)));
                }
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ApiError"))),
        )
        .build()
}

/// The API's routes and their OpenAPI document, from the same declarations.
fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .merge(requests::router())
        .merge(console::router())
        .merge(audit::router())
        .split_for_parts();
    // After the merge: the paths exist only now.
    Common.modify(&mut api);
    (routes, api)
}

/// The OpenAPI 3.1 document, serialised once.
static DOCUMENT: LazyLock<Arc<str>> = LazyLock::new(|| {
    let (_, api) = parts();
    api.to_pretty_json()
        .expect("an OpenAPI document of plain structs serialises")
        .into()
});

/// The OpenAPI document as lakegate serves it (for the CLI and tests to compare with).
pub fn openapi_json() -> &'static str {
    &DOCUMENT
}

pub fn router() -> Router<AppState> {
    let (routes, _) = parts();
    routes.route("/api/v1/openapi.json", get(openapi))
}

/// The OpenAPI 3.1 document of this API; anyone may read it.
async fn openapi() -> Response {
    let mut res = (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_json().to_owned(),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// A JSON body whose every refusal (not JSON, wrong types, unknown or missing fields) is a
/// `422 InvalidInput` saying what is wrong; one over 1 MiB is a `413 TooLarge`.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(WebError::JsonTooLarge),
            Err(e) => Err(invalid(match e {
                JsonRejection::MissingJsonContentType(_) => {
                    "send the body as JSON, with `Content-Type: application/json`".to_owned()
                }
                other => other.body_text(),
            })),
        }
    }
}

/// An optional JSON body: none at all (no `Content-Type`, or an empty one) or `null` is
/// `T::default()`.
pub struct OptionalBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalBody<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|l| l == "0")
            || !req.headers().contains_key(header::CONTENT_TYPE);
        if empty {
            return Ok(Self(T::default()));
        }
        // `null` is no body too, as the document says.
        Body::<Option<T>>::from_request(req, state)
            .await
            .map(|Body(v)| Self(v.unwrap_or_default()))
    }
}

/// A query string whose refusals are `422 InvalidInput` in JSON, like bodies'.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e: QueryRejection| invalid(e.body_text()))
    }
}

fn invalid(message: impl Into<String>) -> WebError {
    WebError::Json(AppError::Invalid(ValidationError::new(message)))
}

/// A request's id from the path; anything but a UUID names no request.
fn parse_id(id: &str) -> Result<RequestId, WebError> {
    id.parse().map_err(|_| WebError::Json(AppError::NotFound))
}

/// Answers `Cache-Control: no-store`: the body holds a secret, or data that must not linger.
fn no_store<T: IntoResponse>(body: T) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Who the token acts as, and what it may do: any working token may ask.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "tokens",
    responses((status = 200, body = Me)),
    security(("token" = []))
)]
async fn me(ApiUser(caller): ApiUser) -> Json<Me> {
    let p = &caller.principal;
    Json(Me {
        subject: p.subject.clone(),
        email: p.email.clone(),
        name: p.name.clone(),
        groups: p.groups.clone(),
        token: model::TokenInfo {
            id: caller.token_id,
            name: caller.token_name.clone(),
            scopes: caller
                .scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        },
    })
}
