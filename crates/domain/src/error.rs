//! The domain's error types: invalid input, forbidden actions, impossible transitions.

use crate::request::RequestStatus;

/// Input from a person or a program that does not describe a valid request.
/// The message is meant for that person: it says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The person is signed in but may not do this to this request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("you cannot approve or deny your own request")]
    SelfApproval,
    #[error("only members of {groups} can {action}")]
    NotApprover {
        groups: String,
        action: &'static str,
    },
    #[error("you have already approved this")]
    AlreadyApproved,
    #[error("your approval would not count toward what is still needed: {missing}")]
    ApprovalNotNeeded { missing: String },
    #[error("only the requester can {action}")]
    NotRequester { action: &'static str },
    #[error("you may not view this request")]
    NotVisible,
    #[error("only admins can read the audit trail")]
    NotAdmin,
}

/// The request is not in a state where this step is possible (or someone else got there first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a request that is {from}")]
pub struct TransitionError {
    pub from: RequestStatus,
    pub action: &'static str,
}
