//! `POST /integrations/slack/interactions`: the Approve and Deny buttons of lakegate's Slack
//! messages (docs/slack.md). Slack's signature is checked before anything else is read; the
//! Slack user is mapped to a lakegate person by their verified email, their groups confirmed
//! by the identity provider as for any decision, and the decision goes through exactly the
//! checks of the browser (never one's own request, the approver groups, N of M). The outcome
//! reaches the channel through the outbox, which updates the message in place; a refusal is
//! told to the one who clicked, and to no one else.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lakegate_app::requests::{self, Decided};
use lakegate_domain::RequestId;
use lakegate_domain::signature::verify_slack;
use lakegate_store::requests::Decision;
use serde::Deserialize;

use crate::error::WebError;
use crate::extract::confirm_groups;
use crate::slack::Slack;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/integrations/slack/interactions", post(interactions))
}

#[derive(Debug, Deserialize)]
struct Form {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: Id,
    channel: Option<Id>,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    #[serde(default)]
    value: String,
}

async fn interactions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(slack) = state.config.slack.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "Slack is not configured on this lakegate",
        )
            .into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = state.services.clock.now().unix_timestamp();
    if let Err(e) = verify_slack(
        slack.signing_secret.as_bytes(),
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    ) {
        tracing::warn!(error = %e, "Slack interaction refused");
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Form>(&body) else {
        return (StatusCode::BAD_REQUEST, "no payload").into_response();
    };
    let Ok(payload) = serde_json::from_str::<Payload>(&form.payload) else {
        return (StatusCode::BAD_REQUEST, "the payload is not an interaction").into_response();
    };
    if payload.kind != "block_actions" {
        return StatusCode::OK.into_response();
    }
    for action in &payload.actions {
        let decision = match action.action_id.as_str() {
            "approve" => Decision::Approve,
            "deny" => Decision::Deny,
            // "Open in lakegate" is a link: Slack tells us of the click, nothing to do.
            _ => continue,
        };
        let said = match decide(&state, &slack, &payload.user.id, &action.value, decision).await {
            Ok(said) => said,
            Err(said) => said,
        };
        if let (Some(text), Some(channel)) = (said, &payload.channel)
            && let Err(e) = slack.tell(&channel.id, &payload.user.id, &text).await
        {
            tracing::warn!(error = %e, "could not answer a Slack user");
        }
    }
    // Slack wants an answer within 3 seconds, and nothing in it: the message is updated
    // through the outbox.
    StatusCode::OK.into_response()
}

/// Decides for Slack user `user`; what to tell them, if anything (`Err`: a refusal).
async fn decide(
    state: &AppState,
    slack: &Slack,
    user: &str,
    value: &str,
    decision: Decision,
) -> Result<Option<String>, Option<String>> {
    let svc = &state.services;
    let public_url = &state.config.public_url;
    let id: RequestId = value
        .parse()
        .map_err(|_| Some("That is not a lakegate request.".to_owned()))?;
    let email = slack.verified_email(user).await.map_err(|e| {
        tracing::warn!(error = %e, "Slack users.info failed");
        Some(
            "lakegate could not look you up in Slack just now; try again, or decide in lakegate."
                .to_owned(),
        )
    })?;
    let Some(email) = email else {
        return Err(Some(format!(
            "lakegate knows people by a verified email, and Slack has none for you: decide at {public_url}/requests/{id}"
        )));
    };
    let person = lakegate_app::people::by_email(svc, &email)
        .await
        .map_err(|e| Some(format!("lakegate could not decide: {e}")))?;
    let Some(person) = person else {
        return Err(Some(format!(
            "Sign in to lakegate once at {public_url} so it knows your groups, then try again."
        )));
    };
    let who = confirm_groups(state, &person, true).await.map_err(|e| {
        Some(match e {
            WebError::Json(e) | WebError::App(e) => e.to_string(),
            other => format!("lakegate could not confirm your groups: {other:?}"),
        })
    })?;
    let who = who.through_app("slack");
    match requests::decide(svc, &who, id, decision, None).await {
        Ok(Decided::NeedsMore(missing)) => Ok(Some(format!(
            "Your approval is recorded; still needed: {}.",
            missing.join("; ")
        ))),
        Ok(Decided::Approved | Decided::Denied) => {
            tracing::info!(request_id = %id, slack_user = user, email = %who.email, ?decision, "decided in Slack");
            Ok(None)
        }
        Err(e) => {
            tracing::info!(request_id = %id, slack_user = user, email = %who.email, error = %e, "Slack decision refused");
            Err(Some(format!("Not done: {e}")))
        }
    }
}
