//! Cross-cutting layers: request ids, tracing spans, metrics, security headers.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnRequest, OnResponse, TraceLayer};
use tracing::Span;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an `x-request-id` (kept if the client sent one) and echoes it back.
pub(crate) fn request_id_layer() -> ServiceBuilder<
    Stack<PropagateRequestIdLayer, Stack<SetRequestIdLayer<MakeRequestUuid>, Identity>>,
> {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
}

type MakeSpan = fn(&Request<Body>) -> Span;

/// Marks an answer whose access-log line is written at DEBUG rather than INFO: a successful
/// answer of the credentials URL, which every SDK process of every grant polls
/// (docs/decisions/0025-a-quiet-fast-credentials-url.md). Its failures are still logged at INFO.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuietAccessLog;

/// The access log: each answer once, with its status and latency, inside the request's span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccessLog;

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, res: &axum::http::Response<B>, latency: Duration, _: &Span) {
        let status = res.status().as_u16();
        let ms = latency.as_secs_f64() * 1000.0;
        if res.extensions().get::<QuietAccessLog>().is_some() {
            tracing::debug!(status, latency_ms = ms, "finished processing request");
        } else {
            tracing::info!(status, latency_ms = ms, "finished processing request");
        }
    }
}

/// One span per request with method, matched route (low cardinality) and request id. Query
/// strings and headers are never recorded: they may carry tokens.
/// Each answer is logged once at INFO (status and latency), inside that span: an access log whose
/// every line, like every other line of the request, carries the request id.
pub(crate) fn trace_layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, DefaultOnRequest, AccessLog> {
    TraceLayer::new_for_http()
        .make_span_with(make_span as MakeSpan)
        .on_response(AccessLog)
}

fn make_span(req: &Request<Body>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str);
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("http", method = %req.method(), route, request_id = id)
}

/// Counts and times every request by its matched route (a fixed set: never the raw path, which
/// carries ids).
pub(crate) async fn http_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!(lakegate_app::metrics::HTTP_DURATION, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(lakegate_app::metrics::HTTP_REQUESTS, "route" => route, "status" => status)
        .increment(1);
    res
}

/// Headers every response carries: no framing, no sniffing, no referrer to other sites, a content
/// security policy that allows only our own scripts and styles, and no caching unless the
/// route says otherwise (pages show grants, tokens and credentials; only the static assets
/// may be cached). With `https` (an https public URL), HSTS too. Each is set only where the
/// route did not set its own; plain header layers, no per-request middleware future.
pub(crate) fn security_headers(https: bool) -> SecurityHeaders {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    ServiceBuilder::new()
        .option_layer(https.then(|| set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000")))
        .layer(set(header::CACHE_CONTROL, "no-store"))
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        // Not `no-referrer`: with it browsers send `Origin: null` on our own form posts, which
        // the CSRF Origin check must refuse. `same-origin` sends nothing to other sites.
        .layer(set(header::REFERRER_POLICY, "same-origin"))
        .into_inner()
}

type SetHeader = SetResponseHeaderLayer<HeaderValue>;

/// The layer stack of [`security_headers`].
pub(crate) type SecurityHeaders = Stack<
    SetHeader,
    Stack<
        SetHeader,
        Stack<
            SetHeader,
            Stack<
                SetHeader,
                Stack<SetHeader, Stack<tower::util::Either<SetHeader, Identity>, Identity>>,
            >,
        >,
    >,
>;
