//! SDK errors → [`CloudError`], by error code and HTTP status.

use std::error::Error;
use std::fmt::Debug;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lakegate_domain::ports::CloudError;

const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ConcurrentModificationException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServiceException",
    "InternalServerException",
    "InternalServiceError",
    "RequestTimeout",
    "OperationTimeoutException",
];

const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
];

const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchEntity",
    "EntityNotFoundException",
    "ResourceNotFoundException",
];

/// Classifies a failed SDK call. `op` names the operation for the message.
pub(crate) fn classify<E>(op: &str, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let text = format!("{op}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CloudError::Transient(text)
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status().as_u16();
            classify_code(
                code,
                service.err().message().unwrap_or_default(),
                status,
                text,
            )
        }
        _ => CloudError::Other(text),
    }
}

pub(crate) fn classify_code(code: &str, message: &str, status: u16, text: String) -> CloudError {
    if TRANSIENT_CODES.contains(&code) || status >= 500 || status == 429 {
        CloudError::Transient(text)
    } else if DENIED_CODES.contains(&code) {
        CloudError::Denied(text)
    } else if NOT_FOUND_CODES.contains(&code) {
        CloudError::NotFound(text)
    } else if message.contains("Invalid principal") {
        // Lake Formation does not see a new role yet (docs/aws.md §4): try again shortly.
        CloudError::Transient(text)
    } else {
        CloudError::Rejected(text)
    }
}

/// The service error code of a failed call, if the service answered.
pub(crate) fn code_of<E: ProvideErrorMetadata, R: Debug>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_what_to_do_next() {
        let c =
            |code: &str, msg: &str, status: u16| classify_code(code, msg, status, String::new());
        assert!(matches!(
            c("ThrottlingException", "", 400),
            CloudError::Transient(_)
        ));
        assert!(matches!(
            c("ConcurrentModificationException", "", 400),
            CloudError::Transient(_)
        ));
        assert!(matches!(c("", "", 500), CloudError::Transient(_)));
        assert!(matches!(c("AccessDenied", "", 403), CloudError::Denied(_)));
        assert!(matches!(
            c("NoSuchEntity", "", 404),
            CloudError::NotFound(_)
        ));
        assert!(matches!(
            c("InvalidInputException", "Invalid principal", 400),
            CloudError::Transient(_)
        ));
        assert!(matches!(
            c("MalformedPolicyDocument", "", 400),
            CloudError::Rejected(_)
        ));
    }
}
