//! The one error type of the HTTP layer: every failure becomes
//! `{"error": {"code", "message"}}` with a fitting status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;
use crate::types::{ErrorBody, ErrorDetail};

/// An API error. `code` strings are part of the API (`docs/api.md` lists them).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON or not well-formed.
    #[error("{message}")]
    MalformedJson { message: String },
    /// Well-formed, but a field has the wrong type, is missing or unknown.
    #[error("{message}")]
    InvalidBody { message: String },
    /// A value the appliance cannot prove: unknown circuit, field, FRI preset or
    /// backend, a size outside the circuit's limits, an input too large.
    #[error("{message}")]
    InvalidRequest { message: String },
    /// A state-transition witness that does not decode (`invalid_witness`) or does not
    /// check against its pre-state root (`witness_rejected`, naming the update).
    #[error("{message}")]
    InvalidWitness { code: &'static str, message: String },
    /// A device id that this appliance does not serve.
    #[error("{message}")]
    UnknownDevice { message: String },
    /// Anything else wrong with the request (headers, query string).
    #[error("{message}")]
    BadRequest { message: String },
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson { .. } | Self::UnknownDevice { .. } | Self::BadRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidBody { .. }
            | Self::InvalidRequest { .. }
            | Self::InvalidWitness { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "malformed_json",
            Self::InvalidBody { .. } => "invalid_body",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnknownDevice { .. } => "unknown_device",
            Self::BadRequest { .. } => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { code, .. }
            | Self::Unavailable { code, .. }
            | Self::InvalidWitness { code, .. } => code,
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::Internal { .. } => "internal",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
        }
    }

    pub fn internal(message: impl ToString) -> Self {
        Self::Internal {
            message: message.to_string(),
        }
    }
}

/// The JSON error response for `status`, `code` and `message`.
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message,
        },
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal { message } = &self {
            tracing::error!("internal error: {message}");
        }
        let mut resp = error_response(self.status(), self.code(), self.to_string());
        if matches!(self, Self::Unauthorized) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Self::Unavailable { .. }) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<crate::transition::WitnessError> for AppError {
    fn from(e: crate::transition::WitnessError) -> Self {
        use crate::transition::WitnessError;
        match e {
            WitnessError::Decode(_) => Self::InvalidWitness {
                code: "invalid_witness",
                message: e.to_string(),
            },
            WitnessError::Rejected(_) => Self::InvalidWitness {
                code: "witness_rejected",
                message: e.to_string(),
            },
            WitnessError::TooLarge(message) => Self::InvalidRequest { message },
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound { what: "job".into() },
            StoreError::IdempotencyConflict { .. } => Self::Conflict {
                code: "idempotency_key_reused",
                message: e.to_string(),
            },
            StoreError::NotCancellable { .. } => Self::Conflict {
                code: "not_cancellable",
                message: e.to_string(),
            },
            StoreError::QueueFull { .. } => Self::Unavailable {
                code: "queue_full",
                message: e.to_string(),
            },
            StoreError::ProofCorrupt { .. } => Self::Unavailable {
                code: "proof_corrupt",
                message: e.to_string(),
            },
            StoreError::Unavailable { .. } | StoreError::Unreachable { .. } => Self::Unavailable {
                code: "store_unavailable",
                message: e.to_string(),
            },
            StoreError::Db(_)
            | StoreError::Corrupt(_)
            | StoreError::Refused { .. }
            | StoreError::Database { .. } => Self::internal(e),
        }
    }
}
