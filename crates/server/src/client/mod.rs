//! The `lakegate` command line as a client of a lakegate server: log in with a personal token,
//! ask for access (and wait for it), see and decide requests, revoke, get credentials, run
//! guarded queries. Text for people by default, the API's JSON with `--json`; exit codes in
//! [`api::Failure::exit_code`].

mod api;
mod text;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lakegate_web::api::{
    IssuedCredentials, Me, QueryStarted, QueryView, RequestDetail, RequestList, StatusChange,
    Submitted,
};
use serde_json::{Value, json};

pub use self::api::Failure;
use self::api::{Api, Failure as F};
use crate::cli::{
    ClientArgs, ClientCommand, CredentialsArgs, DecideArgs, IdArgs, QueryArgs, RequestArgs,
    RevokeArgs, StatusArgs,
};

/// Runs a client command: what it prints goes to standard output, progress and errors to
/// standard error.
pub async fn run(command: ClientCommand) -> ExitCode {
    let result = match command {
        ClientCommand::Login(a) => login(&a.client).await,
        ClientCommand::Request(a) => request(&a).await,
        ClientCommand::Status(a) => status(&a).await,
        ClientCommand::Approve(a) => decide(&a, "approve").await,
        ClientCommand::Deny(a) => decide(&a, "deny").await,
        ClientCommand::Cancel(a) => cancel(&a).await,
        ClientCommand::Revoke(a) => revoke(&a).await,
        ClientCommand::Env(a) => env(&a).await,
        ClientCommand::Query(a) => query(&a).await,
        ClientCommand::Credentials(a) => credentials(&a).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lakegate: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A request id from the command line: a UUID, or the request's page URL.
fn request_id(raw: &str) -> Result<String, F> {
    let last = raw
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    uuid::Uuid::parse_str(last)
        .map(|u| u.to_string())
        .map_err(|_| F::Usage(format!("`{raw}` is not a request id")))
}

async fn login(client: &ClientArgs) -> Result<(), F> {
    let server = api::server_url(client.server.as_deref())?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "Make a personal token at {server}/settings/tokens (pick the scopes this machine needs),\nthen paste it here and press Enter:"
        );
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| F::Broken(format!("cannot read the token: {e}")))?;
    let token = line.trim().to_owned();
    if !token.starts_with("lgp_") || token.chars().any(char::is_whitespace) {
        return Err(F::Usage(
            "that is not a personal token (they start with lgp_); copy it from the settings page"
                .to_owned(),
        ));
    }
    let api = Api::with_token(server.clone(), token.clone())?;
    let (me, raw): (Me, Value) = api.get("/api/v1/me").await?;
    let path = api::token_file()?;
    crate::credentials_process::write_secret_file(&path, &token)?;
    api::save_server_url(&server)?;
    if client.json {
        print_json(&raw);
    } else {
        println!(
            "Signed in to {server} as {} with the token \"{}\" ({}).\nSaved to {} (mode 0600).",
            me.email,
            me.token.name,
            me.token.scopes.join(", "),
            path.display()
        );
    }
    Ok(())
}

/// `database.table` or `database.table:col1,col2` as the API's resource.
fn resource(raw: &str) -> Result<Value, F> {
    let (table, columns) = match raw.split_once(':') {
        Some((t, c)) => (t, Some(c)),
        None => (raw, None),
    };
    let (database, table) = table
        .trim()
        .split_once('.')
        .filter(|(d, t)| !d.is_empty() && !t.is_empty())
        .ok_or_else(|| {
            F::Usage(format!(
                "`{raw}`: name a table as database.table, with :col1,col2 for some columns only"
            ))
        })?;
    let mut r = json!({ "database": database, "table": table });
    if let Some(c) = columns {
        let cols: Vec<&str> = c
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if cols.is_empty() {
            return Err(F::Usage(format!(
                "`{raw}`: list columns after the colon, or leave it out for every column"
            )));
        }
        r["columns"] = json!(cols);
    }
    Ok(r)
}

async fn request(a: &RequestArgs) -> Result<(), F> {
    let resources = a
        .resources
        .iter()
        .map(|r| resource(r))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = lakegate_domain::duration::parse_duration(&a.timeout)
        .map_err(|e| F::Usage(format!("--timeout: {e}")))?;
    let api = Api::new(a.client.server.as_deref())?;
    let body = json!({
        "resources": resources,
        "duration": a.duration,
        "reason": a.reason,
        "break_glass": a.break_glass,
    });
    let (made, raw): (Submitted, Value) = api.post("/api/v1/requests", &body).await?;
    if !a.wait {
        if a.client.json {
            print_json(&raw);
        } else {
            println!("Request {} is {}.\n{}", made.id, made.status, made.url);
        }
        return Ok(());
    }
    if !a.client.json {
        eprintln!("Request {} is {}: {}", made.id, made.status, made.url);
    }
    let limit = Duration::try_from(timeout).unwrap_or(Duration::from_secs(3600));
    let detail = wait_active(&api, &made.id.to_string(), limit).await?;
    if a.client.json {
        let (_, raw): (RequestDetail, Value) =
            api.get(&format!("/api/v1/requests/{}", made.id)).await?;
        print_json(&raw);
    } else {
        println!(
            "Request {} is active{}.\nCredentials: eval \"$(lakegate env {})\"",
            made.id,
            detail
                .summary
                .expires_at
                .map(|t| format!(" until {}", text::time(t)))
                .unwrap_or_default(),
            made.id
        );
    }
    Ok(())
}

/// Polls the request until it is active; a progress line on standard error says what it is
/// waiting for.
async fn wait_active(api: &Api, id: &str, limit: Duration) -> Result<RequestDetail, F> {
    let started = Instant::now();
    let mut progress = text::Progress::new();
    loop {
        let (d, _): (RequestDetail, Value) = api.get(&format!("/api/v1/requests/{id}")).await?;
        let waited = text::elapsed(started.elapsed());
        match d.summary.status.as_str() {
            "active" => {
                progress.done();
                return Ok(d);
            }
            "pending" => progress.show(&format!(
                "waiting for approval: {} · {waited}",
                if d.missing_approvals.is_empty() {
                    "deciding".to_owned()
                } else {
                    d.missing_approvals.join("; ")
                }
            )),
            "approved" => progress.show(&format!(
                "approved; setting up the role, workgroup and Lake Formation grants · {waited}"
            )),
            other => {
                progress.done();
                let by = d
                    .decisions
                    .iter()
                    .rev()
                    .find(|x| x.decision == "deny")
                    .map(|x| {
                        format!(
                            " by {}{}",
                            x.by,
                            x.comment
                                .as_deref()
                                .map(|c| format!(": {c}"))
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                return Err(F::Ended(format!("request {id} is {other}{by}")));
            }
        }
        if started.elapsed() >= limit {
            progress.done();
            return Err(F::TimedOut(format!(
                "request {id} is still {} after {waited}; `lakegate status {id}` shows it",
                d.summary.status
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn status(a: &StatusArgs) -> Result<(), F> {
    let api = Api::new(a.client.server.as_deref())?;
    if let Some(id) = &a.id {
        let id = request_id(id)?;
        let (d, raw): (RequestDetail, Value) = api.get(&format!("/api/v1/requests/{id}")).await?;
        if a.client.json {
            print_json(&raw);
        } else {
            print!("{}", text::detail(&d, &api.base));
        }
        return Ok(());
    }
    let (mine, mine_raw): (RequestList, Value) = api.get("/api/v1/requests?filter=mine").await?;
    let (queue, queue_raw): (RequestList, Value) =
        api.get("/api/v1/requests?filter=to_approve").await?;
    if a.client.json {
        print_json(&json!({ "mine": mine_raw["requests"], "to_approve": queue_raw["requests"] }));
        return Ok(());
    }
    println!("Your requests:");
    print!("{}", text::list(&mine.requests, false));
    if !queue.requests.is_empty() {
        println!("\nWaiting for your approval:");
        print!("{}", text::list(&queue.requests, true));
    }
    Ok(())
}

fn comment_body(comment: Option<&str>) -> Value {
    match comment {
        Some(c) => json!({ "comment": c }),
        None => json!({}),
    }
}

async fn decide(a: &DecideArgs, verb: &str) -> Result<(), F> {
    let api = Api::new(a.client.server.as_deref())?;
    let id = request_id(&a.id)?;
    let path = match a.extension {
        Some(x) => format!("/api/v1/requests/{id}/extensions/{x}/{verb}"),
        None => format!("/api/v1/requests/{id}/{verb}"),
    };
    let (changed, raw): (StatusChange, Value) =
        api.post(&path, &comment_body(a.comment.as_deref())).await?;
    if a.client.json {
        print_json(&raw);
        return Ok(());
    }
    let what = match changed.extension {
        Some(x) => format!("Extension {x} of request {id}"),
        None => format!("Request {id}"),
    };
    if changed.missing_approvals.is_empty() {
        println!("{what} is {}.", changed.status);
    } else {
        println!(
            "{what} is {}: still needs {}.",
            changed.status,
            changed.missing_approvals.join("; ")
        );
    }
    Ok(())
}

async fn cancel(a: &IdArgs) -> Result<(), F> {
    let api = Api::new(a.client.server.as_deref())?;
    let id = request_id(&a.id)?;
    let (changed, raw): (StatusChange, Value) = api
        .post(&format!("/api/v1/requests/{id}/cancel"), &json!({}))
        .await?;
    if a.client.json {
        print_json(&raw);
    } else {
        println!("Request {id} is {}.", changed.status);
    }
    Ok(())
}

async fn revoke(a: &RevokeArgs) -> Result<(), F> {
    let api = Api::new(a.client.server.as_deref())?;
    let id = request_id(&a.id)?;
    let (_, raw): (StatusChange, Value) = api
        .post(
            &format!("/api/v1/requests/{id}/revoke"),
            &comment_body(a.comment.as_deref()),
        )
        .await?;
    if a.client.json {
        print_json(&raw);
    } else {
        println!(
            "Request {id} is being revoked: its sessions are refused from now on, and what was made for it is being removed."
        );
    }
    Ok(())
}

/// `'…'` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

async fn env(a: &IdArgs) -> Result<(), F> {
    let api = Api::new(a.client.server.as_deref())?;
    let id = request_id(&a.id)?;
    let (issued, raw): (IssuedCredentials, Value) = api
        .post(&format!("/api/v1/requests/{id}/credentials"), &json!({}))
        .await?;
    let path = crate::credentials_process::default_token_file(&id)?;
    crate::credentials_process::write_secret_file(&path, &issued.token)?;
    if a.client.json {
        print_json(&raw);
        return Ok(());
    }
    println!(
        "export AWS_CONTAINER_CREDENTIALS_FULL_URI={}",
        shell_quote(&issued.url)
    );
    println!(
        "export AWS_CONTAINER_AUTHORIZATION_TOKEN={}",
        shell_quote(&issued.token)
    );
    eprintln!(
        "# valid until {}; the token is also saved for `lakegate credentials {id}` in {}",
        text::time(issued.expires_at),
        path.display()
    );
    Ok(())
}

async fn credentials(a: &CredentialsArgs) -> Result<(), F> {
    let url = match (&a.url, &a.id) {
        (Some(url), _) => url.clone(),
        (None, Some(id)) => {
            let id = request_id(id)?;
            format!("{}/credentials/{id}", api::server_url(a.server.as_deref())?)
        }
        (None, None) => return Err(F::Usage("give a request id or --url".to_owned())),
    };
    let json = crate::credentials_process::fetch(&url, a.token_file.as_deref()).await?;
    println!("{json}");
    Ok(())
}

async fn query(a: &QueryArgs) -> Result<(), F> {
    let api = Api::new(a.client.server.as_deref())?;
    let id = request_id(&a.id)?;
    let body = json!({
        "sql": a.sql,
        "database": a.database,
        // The same statement sent again after a dropped connection starts no second query.
        "client_token": uuid::Uuid::new_v4().to_string(),
    });
    let (started, _): (QueryStarted, Value) = api
        .post(&format!("/api/v1/requests/{id}/queries"), &body)
        .await?;
    let path = format!("/api/v1/requests/{id}/queries/{}", started.id);
    let begun = Instant::now();
    let mut progress = text::Progress::new();
    let mut view = loop {
        let (v, _): (QueryView, Value) = api.get(&path).await?;
        match v.state.as_str() {
            "SUCCEEDED" | "FAILED" | "CANCELLED" => break v,
            s => progress.show(&format!("{s} · {}", text::elapsed(begun.elapsed()))),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    progress.done();
    if view.state != "SUCCEEDED" {
        return Err(F::Ended(format!(
            "the query {}: {}",
            view.state.to_lowercase(),
            view.state_reason
                .as_deref()
                .unwrap_or("Athena gave no reason")
        )));
    }
    // Every page, in order.
    let mut rows = view.rows.take().unwrap_or_default();
    let mut cursor = view.next_cursor.take();
    while let Some(c) = cursor {
        let (page, _): (QueryView, Value) = api
            .get(&format!("{path}?cursor={}", url_encode(&c)))
            .await?;
        rows.extend(page.rows.unwrap_or_default());
        cursor = page.next_cursor;
    }
    let columns = view.columns.clone().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let written = if a.client.json {
        view.rows = Some(rows.clone());
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&view).unwrap_or_default()
        )
    } else if a.csv {
        write!(out, "{}", text::csv(&columns, &rows))
    } else {
        write!(out, "{}", text::table(&columns, &rows))
    };
    written.map_err(|e| F::Broken(format!("cannot write the rows: {e}")))?;
    if !a.client.json {
        eprintln!(
            "{} row{} · {} scanned · about ${:.4}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            text::bytes(view.bytes_scanned),
            view.cost_usd_micros as f64 / 1e6
        );
    }
    Ok(())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_tables_with_optional_columns() {
        assert_eq!(
            resource("sales.orders").unwrap(),
            json!({ "database": "sales", "table": "orders" })
        );
        assert_eq!(
            resource("sales.orders:order_id, amount").unwrap(),
            json!({ "database": "sales", "table": "orders", "columns": ["order_id", "amount"] })
        );
        for bad in [
            "orders",
            ".orders",
            "sales.",
            "sales.orders:",
            "sales.orders: , ",
        ] {
            assert!(matches!(resource(bad), Err(F::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn ids_are_uuids_or_request_page_urls() {
        let id = "0b6f7f1e-8a5c-4c3e-9a51-2f1d4b8c9e10";
        assert_eq!(request_id(id).unwrap(), id);
        assert_eq!(
            request_id(&format!("https://lakegate.example/requests/{id}/")).unwrap(),
            id
        );
        assert!(matches!(request_id("42"), Err(F::Usage(_))));
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
