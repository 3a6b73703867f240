//! lakegate's domain: what an access request is, the rules it obeys, and the exact shape of
//! what lakegate creates in AWS for it. Pure: no database, no network, no clock of its own.
#![forbid(unsafe_code)]

pub mod access;
pub mod api_token;
pub mod audit;
pub mod duration;
pub mod error;
pub mod extension;
pub mod iam_policy;
pub mod lake_formation;
pub mod naming;
pub mod notification;
pub mod policy;
pub mod policy_file;
pub mod ports;
pub mod principal;
pub mod request;
pub mod signature;
pub mod sql_guard;
pub mod steps;
pub mod target;
pub mod usage;

pub use error::{PolicyError, TransitionError, ValidationError};
pub use principal::Principal;
pub use request::{AccessRequest, EndState, RequestId, RequestStatus, Review};
pub use target::{ResourceSpec, ResultsLocation};
