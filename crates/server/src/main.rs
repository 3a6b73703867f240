//! `lakegate`: see `lakegate --help`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use lakegate_server::cli::{AuditCommand, Cli, Command, LogFormat};
use lakegate_server::client;
use lakegate_server::config::{ServeConfig, unknown_variables};
use lakegate_server::{audit, run, telemetry};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lakegate: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The client's commands have exit codes of their own (README, "The command line client").
    let cli = match cli.command {
        Command::Client(command) => return runtime.block_on(client::run(command)),
        command => Cli { command },
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "lakegate failed");
            eprintln!("lakegate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = ServeConfig::try_from(&*args)?;
            telemetry::init(config.log_format);
            for v in unknown_variables() {
                tracing::warn!(variable = %v, "unknown LAKEGATE_ variable ignored (a typo?)");
            }
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "LAKEGATE_LISTEN: could not listen on {}: {e}",
                        config.listen
                    )
                })?;
            // Signals count from the start: a SIGTERM while the database or the identity
            // provider is still being waited for ends start-up too.
            let token = CancellationToken::new();
            tokio::spawn(run::cancel_on_signal(token.clone()));
            let app = tokio::select! {
                app = run::build(config, listener) => app?,
                () = token.cancelled() => return Ok(()),
            };
            app.run(token).await
        }
        Command::Migrate(db) => {
            telemetry::init(LogFormat::Text);
            let pool = run::connect(&db.database_url, 2).await?;
            run::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Audit(AuditCommand::Verify(db)) => {
            let pool = run::connect(&db.database_url, 2).await?;
            let report = audit::verify(&pool).await?;
            println!("{}", audit::describe(&report));
            if report.first_broken.is_some() {
                anyhow::bail!("the audit trail does not verify");
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Export { db, format }) => {
            let pool = run::connect(&db.database_url, 2).await?;
            let n = audit::export(&pool, format, &mut std::io::stdout().lock()).await?;
            eprintln!("exported {n} audit events");
            Ok(())
        }
        Command::Health(args) => health(&args.listen).await,
        Command::Client(command) => {
            // Handled before the runtime runs `dispatch`; kept total for the compiler.
            let code = client::run(command).await;
            if code == ExitCode::SUCCESS {
                Ok(())
            } else {
                anyhow::bail!("the command failed")
            }
        }
        Command::Sweep(args) => {
            let config = ServeConfig::try_from(&*args.serve)?;
            telemetry::init(config.log_format);
            let services = run::services_for_command(&config).await?;
            let report = lakegate_app::sweep::sweep(&services, args.dry_run).await?;
            println!("{}", sweep_summary(&report, args.dry_run));
            if report.failed.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} orphans could not be removed", report.failed.len())
            }
        }
        Command::CheckConfig(args) => {
            let config = ServeConfig::try_from(&*args)?;
            println!("{}", config.summary());
            for v in unknown_variables() {
                println!("warning: unknown variable {v} is ignored");
            }
            println!("configuration is valid");
            Ok(())
        }
    }
}

/// `GET /healthz` on the local listener: Ok when it answers 200 within 3 s.
async fn health(listen: &str) -> anyhow::Result<()> {
    let mut addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("LAKEGATE_LISTEN `{listen}` is not an address: {e}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let url = format!("http://{addr}/healthz");
    let res = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url} did not answer: {e}"))?;
    if res.status().is_success() {
        println!("ok");
        Ok(())
    } else {
        anyhow::bail!("{url} answered {}", res.status())
    }
}

/// What `lakegate sweep` prints: one line per resource, then a count.
fn sweep_summary(r: &lakegate_app::sweep::SweepReport, dry_run: bool) -> String {
    if r.skipped {
        return "another lakegate is sweeping right now; nothing was done".to_owned();
    }
    let mut lines = Vec::new();
    for o in &r.found {
        let done = if dry_run {
            "would remove"
        } else if r.removed.contains(o) {
            "removed"
        } else {
            "NOT removed"
        };
        lines.push(format!("{done} {} {}", o.kind.as_str(), o.name));
    }
    for (o, why) in &r.failed {
        lines.push(format!("  {} {}: {why}", o.kind.as_str(), o.name));
    }
    for o in &r.foreign {
        lines.push(format!(
            "left alone {} {} (not a name lakegate gives)",
            o.kind.as_str(),
            o.name
        ));
    }
    lines.push(format!(
        "{} orphans found, {} removed",
        r.found.len(),
        r.removed.len()
    ));
    lines.join("\n")
}
