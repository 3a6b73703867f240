//! The composition root ([`run::build`]): configuration, telemetry, metrics, wiring of the real
//! AWS adapter and the identity provider, background tasks and graceful shutdown. The `lakegate` binary is a thin `main` over this library, so
//! tests can start the whole server in-process on a port of their own.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials_process;
pub mod metrics;
pub mod notify;
pub mod run;
pub mod telemetry;
