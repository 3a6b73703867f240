//! A small HTTP proxy in front of moto that fills the gaps the Athena monitor and the retry
//! paths need (docs/aws.md §19):
//!
//! - `AmazonAthena.BatchGetQueryExecution` (moto: HTTP 500) is answered by fanning out to
//!   `GetQueryExecution`, as many ids as asked;
//! - `Statistics.DataScannedInBytes` (moto: always 0) is rewritten from values the test sets;
//! - `AmazonAthena.UpdateWorkGroup` (moto: HTTP 500) is kept here for the cutoff and state, and
//!   `GetWorkGroup` answers show them;
//! - faults: the next N calls of an operation answer an error of the test's choosing, or (for
//!   Lake Formation's batch calls) go through and report every entry as failed, or are held
//!   for a while first.
//!
//! Everything else goes to moto unchanged. The operation is read the way each protocol names
//! it: `X-Amz-Target` (JSON services: Athena, Glue), `Action=` in the form body (IAM, STS),
//! or the last path segment (Lake Formation's REST JSON).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a faulty call does instead of (or after) going to moto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this error; moto never sees the call.
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Forward the call, then report every entry of the batch as failed with this error, as
    /// Lake Formation's `BatchGrantPermissions`/`BatchRevokePermissions` do (HTTP 200).
    BatchEntriesFailed { code: String, message: String },
    /// Hold the call this long, then handle it as usual: a call in flight, for tests that kill
    /// the caller meanwhile.
    Delay(std::time::Duration),
}

impl Fault {
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self::Error {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    /// What IAM and STS answer a principal that may not act (yet).
    pub fn access_denied() -> Self {
        Self::error(403, "AccessDenied", "not authorized to perform this action")
    }

    /// Throttling, with the code the service family uses.
    pub fn throttling(code: &str) -> Self {
        Self::error(400, code, "Rate exceeded")
    }

    pub fn concurrent_modification() -> Self {
        Self::error(
            400,
            "ConcurrentModificationException",
            "Concurrent modification, try again",
        )
    }

    /// Lake Formation's answer to revoking what is not granted.
    pub fn no_permissions_revoked() -> Self {
        Self::BatchEntriesFailed {
            code: "InvalidInputException".to_owned(),
            message: "No permissions revoked".to_owned(),
        }
    }
}

/// A workgroup's settings as `UpdateWorkGroup` left them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkgroupUpdate {
    pub bytes_scanned_cutoff: Option<i64>,
    pub state: Option<String>,
}

#[derive(Default)]
struct ProxyState {
    scanned: HashMap<String, i64>,
    faults: HashMap<String, Vec<Fault>>,
    calls: HashMap<String, u32>,
    /// Operation → the access key id that signed each call, in order.
    callers: HashMap<String, Vec<String>>,
    workgroups: HashMap<String, WorkgroupUpdate>,
    /// Every call's connection is cut with no answer: AWS is unreachable.
    unreachable: bool,
    /// Every call is held this long before it is handled: AWS is slow.
    latency: std::time::Duration,
    /// Calls cut while AWS was unreachable.
    cut: u32,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    state: Arc<Mutex<ProxyState>>,
}

/// The running proxy; it stops when dropped.
pub struct AwsProxy {
    url: String,
    state: Arc<Mutex<ProxyState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AwsProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (moto's URL).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        Self::start_on(upstream, "127.0.0.1:0").await
    }

    /// Starts a proxy on `addr` in front of `upstream`.
    pub async fn start_on(upstream: &str, addr: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(std::io::Error::other)?,
            state: Arc::clone(&state),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, state, task })
    }

    /// Where SDK clients should send their calls.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// From now on, query `id` reports this many bytes scanned.
    pub fn set_scanned(&self, id: &str, bytes: i64) {
        self.lock().scanned.insert(id.to_owned(), bytes);
    }

    /// The next `times` calls of `operation` (like `AssumeRole`, `CreateWorkGroup`,
    /// `BatchRevokePermissions`) meet `fault`.
    pub fn fail(&self, operation: &str, times: usize, fault: Fault) {
        self.lock()
            .faults
            .entry(operation.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(fault, times));
    }

    /// While `true`, every call's connection is cut before any answer, as when the endpoint
    /// cannot be reached (the SDK sees an I/O error, never an AWS error code).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    /// Holds every call this long before handling it (zero: none).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.lock().latency = latency;
    }

    /// How many calls were cut while AWS was unreachable.
    pub fn cut_calls(&self) -> u32 {
        self.lock().cut
    }

    /// How many calls arrived in all.
    pub fn total_calls(&self) -> u32 {
        self.lock().calls.values().sum()
    }

    /// How many calls of `operation` arrived (faulty ones included).
    pub fn calls(&self, operation: &str) -> u32 {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// The access key id that signed each call of `operation`, in order: whose credentials
    /// made it (the broker's, or a grant's session).
    pub fn callers(&self, operation: &str) -> Vec<String> {
        self.lock()
            .callers
            .get(operation)
            .cloned()
            .unwrap_or_default()
    }

    /// What `UpdateWorkGroup` set for `workgroup`, if anything.
    pub fn workgroup(&self, workgroup: &str) -> Option<WorkgroupUpdate> {
        self.lock().workgroups.get(workgroup).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends a request to moto as it came, and returns its answer.
    async fn forward(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.upstream))
            .body(body);
        for (name, value) in headers {
            if name != "host" && name != "content-length" {
                req = req.header(name, value);
            }
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, headers, body))
    }

    /// One Athena JSON call to moto, for the fan-out.
    async fn athena(&self, headers: &HeaderMap, target: &str, body: &Value) -> (StatusCode, Value) {
        let mut headers = headers.clone();
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&format!("AmazonAthena.{target}"))
                .unwrap_or_else(|_| HeaderValue::from_static("AmazonAthena.Unknown")),
        );
        let uri = Uri::from_static("/");
        match self
            .forward(Method::POST, &uri, &headers, Bytes::from(body.to_string()))
            .await
        {
            Ok((status, _, bytes)) => (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ),
            Err(e) => (StatusCode::BAD_GATEWAY, json!({ "message": e })),
        }
    }

    /// Sets `Statistics.DataScannedInBytes` of one `QueryExecution` from the test's values.
    fn rewrite_scanned(&self, execution: &mut Value) {
        let Some(id) = execution
            .get("QueryExecutionId")
            .and_then(Value::as_str)
            .map(ToOwned::to_owned)
        else {
            return;
        };
        if let Some(bytes) = self.lock().scanned.get(&id).copied()
            && let Some(obj) = execution.as_object_mut()
        {
            let stats = obj.entry("Statistics").or_insert_with(|| json!({}));
            if let Some(stats) = stats.as_object_mut() {
                stats.insert("DataScannedInBytes".to_owned(), json!(bytes));
            }
        }
    }
}

/// How the caller's protocol names the operation, and how it expects errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `X-Amz-Target`: Athena, Glue.
    Json,
    /// Form body with `Action=`: IAM, STS.
    Query,
    /// The path names the operation: Lake Formation.
    RestJson,
}

fn operation_of(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> (Protocol, String) {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op = target.rsplit('.').next().unwrap_or(target);
        return (Protocol::Json, op.to_owned());
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        let action = String::from_utf8_lossy(body)
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action=").map(ToOwned::to_owned))
            .unwrap_or_default();
        return (Protocol::Query, action);
    }
    let op = uri.path().rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    (Protocol::RestJson, op.to_owned())
}

/// The access key id in a SigV4 `Authorization` header (`… Credential=AKID/date/…`).
fn access_key_of(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_owned())
}

fn error_response(protocol: Protocol, status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    match protocol {
        Protocol::Query => {
            let body = format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>lakegate-test-proxy</RequestId></ErrorResponse>"
            );
            (status, [("content-type", "text/xml")], body).into_response()
        }
        Protocol::Json => (
            status,
            [
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amzn-errortype", code),
            ],
            json!({ "__type": code, "message": message }).to_string(),
        )
            .into_response(),
        Protocol::RestJson => (
            status,
            [
                ("content-type", "application/json"),
                ("x-amzn-errortype", code),
            ],
            json!({ "Message": message }).to_string(),
        )
            .into_response(),
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        value.to_string(),
    )
        .into_response()
}

fn passthrough(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    for (name, value) in headers {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            res.headers_mut().insert(name, value.clone());
        }
    }
    res
}

/// An answer whose body fails at once: the server closes the connection without a complete
/// response, which the caller sees as a broken connection.
fn cut_connection() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the test proxy cut the connection (AWS unreachable)",
        ))
    });
    Response::new(axum::body::Body::from_stream(broken))
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (protocol, op) = operation_of(&headers, &uri, &body);
    let latency = {
        let mut st = shared.lock();
        if st.unreachable {
            st.cut += 1;
            return cut_connection();
        }
        st.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = {
        let mut st = shared.lock();
        *st.calls.entry(op.clone()).or_default() += 1;
        if let Some(key) = access_key_of(&headers) {
            st.callers.entry(op.clone()).or_default().push(key);
        }
        st.faults
            .get_mut(&op)
            .and_then(|q| (!q.is_empty()).then(|| q.remove(0)))
    };
    if let Some(Fault::Error {
        status,
        code,
        message,
    }) = &fault
    {
        return error_response(protocol, *status, code, message);
    }
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (protocol, op.as_str()) {
        (Protocol::Json, "BatchGetQueryExecution") => {
            let ids: Vec<String> = request["QueryExecutionIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(ToOwned::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if ids.len() > 50 {
                return error_response(
                    protocol,
                    400,
                    "InvalidRequestException",
                    "at most 50 query execution ids per call",
                );
            }
            let mut found = Vec::new();
            let mut unprocessed = Vec::new();
            for id in ids {
                let (status, mut answer) = shared
                    .athena(
                        &headers,
                        "GetQueryExecution",
                        &json!({ "QueryExecutionId": id }),
                    )
                    .await;
                if status.is_success() {
                    let mut execution = answer["QueryExecution"].take();
                    shared.rewrite_scanned(&mut execution);
                    found.push(execution);
                } else {
                    unprocessed.push(json!({
                        "QueryExecutionId": id,
                        "ErrorCode": "InvalidRequestException",
                        "ErrorMessage": "QueryExecution not found",
                    }));
                }
            }
            json_response(
                StatusCode::OK,
                &json!({ "QueryExecutions": found, "UnprocessedQueryExecutionIds": unprocessed }),
            )
        }
        (Protocol::Json, "UpdateWorkGroup") => {
            let Some(name) = request["WorkGroup"].as_str() else {
                return error_response(
                    protocol,
                    400,
                    "InvalidRequestException",
                    "WorkGroup is required",
                );
            };
            let mut st = shared.lock();
            let wg = st.workgroups.entry(name.to_owned()).or_default();
            if let Some(cutoff) =
                request["ConfigurationUpdates"]["BytesScannedCutoffPerQuery"].as_i64()
            {
                if cutoff < 10_000_000 {
                    drop(st);
                    return error_response(
                        protocol,
                        400,
                        "InvalidRequestException",
                        "BytesScannedCutoffPerQuery must be at least 10000000",
                    );
                }
                wg.bytes_scanned_cutoff = Some(cutoff);
            }
            if let Some(state) = request["State"].as_str() {
                wg.state = Some(state.to_owned());
            }
            json_response(StatusCode::OK, &json!({}))
        }
        _ => {
            let Ok((status, res_headers, res_body)) =
                shared.forward(method, &uri, &headers, body).await
            else {
                return error_response(protocol, 502, "ServiceUnavailable", "moto did not answer");
            };
            let rewritten = match (protocol, op.as_str()) {
                (Protocol::Json, "GetQueryExecution") if status.is_success() => {
                    let mut answer: Value =
                        serde_json::from_slice(&res_body).unwrap_or(Value::Null);
                    shared.rewrite_scanned(&mut answer["QueryExecution"]);
                    Some(answer)
                }
                (Protocol::Json, "GetWorkGroup") if status.is_success() => {
                    let mut answer: Value =
                        serde_json::from_slice(&res_body).unwrap_or(Value::Null);
                    let name = request["WorkGroup"].as_str().unwrap_or_default();
                    if let Some(update) = shared.lock().workgroups.get(name).cloned()
                        && answer["WorkGroup"].is_object()
                    {
                        if let Some(cutoff) = update.bytes_scanned_cutoff {
                            answer["WorkGroup"]["Configuration"]["BytesScannedCutoffPerQuery"] =
                                json!(cutoff);
                        }
                        if let Some(state) = update.state {
                            answer["WorkGroup"]["State"] = json!(state);
                        }
                    }
                    Some(answer)
                }
                (Protocol::RestJson, _) if status.is_success() => match &fault {
                    Some(Fault::BatchEntriesFailed { code, message }) => {
                        let failures: Vec<Value> = request["Entries"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|entry| {
                                json!({
                                    "RequestEntry": entry,
                                    "Error": { "ErrorCode": code, "ErrorMessage": message },
                                })
                            })
                            .collect();
                        Some(json!({ "Failures": failures }))
                    }
                    _ => None,
                },
                _ => None,
            };
            match rewritten {
                Some(answer) => {
                    let mut res =
                        passthrough(status, &res_headers, Bytes::from(answer.to_string()));
                    res.headers_mut().remove("content-length");
                    res
                }
                None => passthrough(status, &res_headers, res_body),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_read_from_a_sigv4_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(access_key_of(&headers), None);
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261126/us-east-1/athena/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc",
            ),
        );
        assert_eq!(access_key_of(&headers).as_deref(), Some("ASIAEXAMPLE"));
    }
}
