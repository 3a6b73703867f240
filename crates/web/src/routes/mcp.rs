//! The MCP server at `/mcp` (Model Context Protocol, streamable HTTP transport, JSON answers):
//! an AI agent, holding a person's personal token, lists what may be asked for, asks for
//! access on the person's behalf, follows the request, and runs guarded queries through the
//! console once a person has approved. Each call is authorised like the JSON API (the token,
//! its scopes, the owner's rights) and marked as an agent's: its requests say "requested by
//! agent <token> on behalf of <person>", and auto-approval applies only where a rule says
//! `agents = true` (docs/decisions/0018-mcp-server.md).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lakegate_app::console::{self, Outcome};
use lakegate_app::requests::{self as verbs, SubmitInput, Submitted as SubmitOutcome};
use lakegate_app::tokens::ApiCaller;
use lakegate_app::{AppError, catalog};
use lakegate_domain::api_token::Scope;
use lakegate_domain::target::resources_from;
use lakegate_domain::usage::QueryState;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{WebError, api_error};
use crate::extract::ApiUser;
use crate::routes::api::model::{Resource, Submitted};
use crate::routes::api::{console::query_view, requests::detail};
use crate::state::AppState;

/// Protocol revisions this server speaks, newest first.
const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// How long `run_query` waits for a statement to finish before answering with its state.
const QUERY_WAIT: Duration = Duration::from_secs(20);

pub fn router() -> Router<AppState> {
    Router::new().route("/mcp", post(handle).get(no_stream).delete(no_session))
}

/// This server opens no server-to-client stream.
async fn no_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        "lakegate's MCP server answers each POST with JSON and opens no event stream",
    )
        .into_response()
}

/// Sessions are not kept: every call carries its token.
async fn no_session() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response()
}

/// A JSON-RPC error object.
struct RpcError {
    code: i64,
    message: String,
}

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

fn rpc_error(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

fn reply(status: StatusCode, id: &Value, outcome: Result<Value, RpcError>) -> Response {
    let body = match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(e) => json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": e.code, "message": e.message },
        }),
    };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// One JSON-RPC message per POST: a request is answered with its response as JSON, a
/// notification or a response with `202 Accepted`.
async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiUser, WebError>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // Browsers send Origin; a page elsewhere must not drive a local agent's session
    // (DNS rebinding).
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.as_bytes() != state.config.origin().as_bytes()
    {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({
                "code": "Forbidden",
                "message": "requests to /mcp from another origin are refused",
            })),
        )
            .into_response();
    }
    let ApiUser(caller) = match caller {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Some(v) = headers.get("mcp-protocol-version")
        && !PROTOCOL_VERSIONS
            .iter()
            .any(|p| p.as_bytes() == v.as_bytes())
    {
        return reply(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            Err(rpc_error(
                INVALID_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version; this server speaks {}",
                    PROTOCOL_VERSIONS.join(", ")
                ),
            )),
        );
    }
    let Ok(body) = body else {
        return WebError::JsonTooLarge.into_response();
    };
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                Err(rpc_error(PARSE_ERROR, format!("not JSON: {e}"))),
            );
        }
    };
    let Some(object) = message.as_object() else {
        return reply(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            Err(rpc_error(
                INVALID_REQUEST,
                "send one JSON-RPC message (an object) per request; batches are not supported",
            )),
        );
    };
    let id = object.get("id").cloned();
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        // A response to something this server never asks: nothing to do.
        return StatusCode::ACCEPTED.into_response();
    };
    let Some(id) = id else {
        // A notification (`notifications/initialized`, `notifications/cancelled`, …).
        return StatusCode::ACCEPTED.into_response();
    };
    if !(id.is_string() || id.is_i64() || id.is_u64()) {
        return reply(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            Err(rpc_error(
                INVALID_REQUEST,
                "`id` must be a string or an integer",
            )),
        );
    }
    let params = object.get("params").cloned().unwrap_or(json!({}));
    let caller = ApiCaller {
        principal: caller.principal.clone().as_agent(),
        ..caller
    };
    let outcome = match method {
        "initialize" => Ok(initialize(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({ "tools": tools() })),
        "tools/call" => call_tool(&state, &caller, params).await,
        other => Err(rpc_error(
            METHOD_NOT_FOUND,
            format!("`{other}` is not a method of this server (it offers tools only)"),
        )),
    };
    reply(StatusCode::OK, &id, outcome)
}

fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": {
            "name": "lakegate",
            "title": "lakegate: just-in-time access to Athena data",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": "lakegate grants time-boxed SELECT access to Athena tables and columns. \
            You act for the person who owns this token, and everything you do is audited under your \
            token's name. Find tables with list_tables, ask for the narrowest access that answers \
            the question with request_access (a person must approve it: tell them the URL it \
            returns), follow it with request_status until it is active, then run SELECT statements \
            with run_query and read more rows with query_result. Queries run under the grant's \
            budget; the SQL guard refuses anything but a SELECT on what was granted.",
    })
}

fn resource_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "database": { "type": "string", "description": "Glue database" },
            "table": { "type": "string", "description": "Glue table" },
            "columns": {
                "type": "array",
                "items": { "type": "string" },
                "description": "Only these columns; leave out for every column (asking for fewer is approved sooner)",
            },
        },
        "required": ["database", "table"],
        "additionalProperties": false,
    })
}

/// The tools, with their arguments as JSON Schema (the JSON API's shapes).
fn tools() -> Value {
    json!([
        {
            "name": "list_tables",
            "title": "List requestable tables",
            "description": "Tables the token's owner may ask for, with their columns and types; columns marked sensitive need more approval.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "database": { "type": "string", "description": "Only this Glue database" },
                    "search": { "type": "string", "description": "Only tables whose database.table contains this" },
                },
                "additionalProperties": false,
            },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": "request_access",
            "title": "Ask for access",
            "description": "Asks for SELECT on tables (and columns) for a while, with a reason, on the token owner's behalf. A person approves it (unless the policy auto-approves agents' requests); the answer has the request's id and the URL to give the approver.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "resources": { "type": "array", "items": resource_schema(), "minItems": 1 },
                    "duration": { "type": "string", "description": "How long, like 30m, 1h or 2h30m" },
                    "reason": { "type": "string", "description": "Why, for the approvers and the audit (at least 10 characters)" },
                },
                "required": ["resources", "duration", "reason"],
                "additionalProperties": false,
            },
            "annotations": { "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
        },
        {
            "name": "request_status",
            "title": "Follow a request",
            "description": "A request's status (pending, approved, active, revoking, expired, revoked, denied, cancelled, failed, lapsed), the approvals it still needs, its expiry and usage.",
            "inputSchema": {
                "type": "object",
                "properties": { "request_id": { "type": "string", "format": "uuid" } },
                "required": ["request_id"],
                "additionalProperties": false,
            },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": "run_query",
            "title": "Run a guarded query",
            "description": "Runs one SELECT on what an active grant covers, in its Athena workgroup and under its budget. Waits up to 20 seconds: the answer has the state, and once it succeeded the first rows with a cursor for more (query_result).",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "request_id": { "type": "string", "format": "uuid" },
                    "sql": { "type": "string", "description": "One SELECT statement" },
                    "database": { "type": "string", "description": "The database unqualified table names are in" },
                },
                "required": ["request_id", "sql"],
                "additionalProperties": false,
            },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": "query_result",
            "title": "Read a query's rows",
            "description": "A query's state, and once it has succeeded a page of its rows (up to 1,000); pass next_cursor as cursor for the next page.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "request_id": { "type": "string", "format": "uuid" },
                    "query_id": { "type": "string" },
                    "cursor": { "type": "string" },
                },
                "required": ["request_id", "query_id"],
                "additionalProperties": false,
            },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
    ])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
    /// Request metadata (progress tokens and the like): not used.
    #[serde(default, rename = "_meta")]
    _meta: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListTablesArgs {
    database: Option<String>,
    search: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestAccessArgs {
    resources: Vec<Resource>,
    duration: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestStatusArgs {
    request_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQueryArgs {
    request_id: String,
    sql: String,
    database: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryResultArgs {
    request_id: String,
    query_id: String,
    cursor: Option<String>,
}

fn args<T: DeserializeOwned>(tool: &str, arguments: Option<Value>) -> Result<T, RpcError> {
    serde_json::from_value(arguments.unwrap_or(json!({})))
        .map_err(|e| rpc_error(INVALID_PARAMS, format!("{tool}: {e}")))
}

/// A tool's answer: its JSON as structured content, and as text for clients that read only
/// text.
fn tool_ok(structured: Value) -> Value {
    json!({
        "content": [{ "type": "text", "text": structured.to_string() }],
        "structuredContent": structured,
        "isError": false,
    })
}

/// A tool that ran and failed, with what to tell the person: the model reads it.
fn tool_failed(message: String) -> Value {
    json!({
        "content": [{ "type": "text", "text": message }],
        "isError": true,
    })
}

fn app_failure(e: &AppError) -> Value {
    let (_, code, message) = api_error(e);
    tool_failed(format!("{code}: {message}"))
}

async fn call_tool(state: &AppState, caller: &ApiCaller, params: Value) -> Result<Value, RpcError> {
    let CallParams {
        name, arguments, ..
    } = serde_json::from_value(params)
        .map_err(|e| rpc_error(INVALID_PARAMS, format!("tools/call: {e}")))?;
    let outcome = match name.as_str() {
        "list_tables" => list_tables(state, caller, args(&name, arguments)?).await,
        "request_access" => request_access(state, caller, args(&name, arguments)?).await,
        "request_status" => request_status(state, caller, args(&name, arguments)?).await,
        "run_query" => run_query(state, caller, args(&name, arguments)?).await,
        "query_result" => query_result(state, caller, args(&name, arguments)?).await,
        other => {
            return Err(rpc_error(
                INVALID_PARAMS,
                format!("unknown tool `{other}`; tools/list names them"),
            ));
        }
    };
    Ok(match outcome {
        Ok(Done::Value(v)) => tool_ok(v),
        Ok(Done::Refused(message)) => tool_failed(message),
        Err(e) => app_failure(&e),
    })
}

enum Done {
    Value(Value),
    /// The tool ran and the answer is no (the SQL guard's reason).
    Refused(String),
}

fn request_id(raw: &str) -> Result<lakegate_domain::RequestId, AppError> {
    raw.trim().parse().map_err(|_| AppError::NotFound)
}

async fn list_tables(
    state: &AppState,
    caller: &ApiCaller,
    a: ListTablesArgs,
) -> Result<Done, AppError> {
    caller.require(Scope::RequestsRead)?;
    let listing = catalog::requestable(
        &state.services,
        &caller.principal,
        a.database.as_deref(),
        a.search.as_deref(),
    )
    .await?;
    Ok(Done::Value(json!({
        "tables": listing.tables.iter().map(|t| json!({
            "database": t.database,
            "table": t.table,
            "rules": t.rules,
            "columns": t.columns.iter().map(|c| json!({
                "name": c.name,
                "type": c.data_type,
                "sensitive": c.sensitive,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "truncated": listing.truncated,
    })))
}

async fn request_access(
    state: &AppState,
    caller: &ApiCaller,
    a: RequestAccessArgs,
) -> Result<Done, AppError> {
    caller.require(Scope::RequestsWrite)?;
    let resources = resources_from(
        a.resources
            .iter()
            .map(|r| (r.database.as_str(), r.table.as_str(), r.columns.as_deref())),
    )?;
    let (id, outcome) = verbs::submit_resources(
        &state.services,
        &caller.principal,
        resources,
        SubmitInput {
            resources: "",
            duration: &a.duration,
            reason: &a.reason,
            break_glass: false,
        },
    )
    .await?;
    let status = match outcome {
        SubmitOutcome::Pending => "pending",
        SubmitOutcome::AutoApproved | SubmitOutcome::BreakGlass => "approved",
    };
    let made = Submitted {
        id: id.0,
        status: status.to_owned(),
        break_glass: false,
        url: format!("{}/requests/{id}", state.config.public_url),
    };
    let mut v = serde_json::to_value(&made).unwrap_or_default();
    v["next"] = json!(if status == "pending" {
        format!(
            "A person the policy names must approve it: ask them to open {}. Follow it with request_status.",
            made.url
        )
    } else {
        "The policy approved it; it is being set up. Follow it with request_status until it is active."
            .to_owned()
    });
    Ok(Done::Value(v))
}

async fn request_status(
    state: &AppState,
    caller: &ApiCaller,
    a: RequestStatusArgs,
) -> Result<Done, AppError> {
    caller.require(Scope::RequestsRead)?;
    let id = request_id(&a.request_id)?;
    let d = verbs::view(&state.services, &caller.principal, id).await?;
    Ok(Done::Value(
        serde_json::to_value(detail(&d)).unwrap_or_default(),
    ))
}

async fn run_query(
    state: &AppState,
    caller: &ApiCaller,
    a: RunQueryArgs,
) -> Result<Done, AppError> {
    caller.require(Scope::Console)?;
    let id = request_id(&a.request_id)?;
    let svc = &state.services;
    let query = match console::run(
        svc,
        &caller.principal,
        id,
        &a.sql,
        a.database.as_deref(),
        None,
    )
    .await?
    {
        Outcome::Refused(reason) => {
            return Ok(Done::Refused(format!(
                "QueryRefused: the SQL guard refused this statement: {reason}"
            )));
        }
        Outcome::Started(query) => query,
    };
    let deadline = tokio::time::Instant::now() + QUERY_WAIT;
    loop {
        let q = console::status_with_rows(svc, &caller.principal, id, &query, None).await?;
        let finished = !matches!(q.execution.state, QueryState::Queued | QueryState::Running);
        if finished || tokio::time::Instant::now() >= deadline {
            return Ok(Done::Value(
                serde_json::to_value(query_view(q)).unwrap_or_default(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn query_result(
    state: &AppState,
    caller: &ApiCaller,
    a: QueryResultArgs,
) -> Result<Done, AppError> {
    caller.require(Scope::Console)?;
    let id = request_id(&a.request_id)?;
    let svc = &state.services;
    let q = console::status_with_rows(svc, &caller.principal, id, &a.query_id, a.cursor.as_deref())
        .await?;
    Ok(Done::Value(
        serde_json::to_value(query_view(q)).unwrap_or_default(),
    ))
}
