//! The JSON API's error type: a status, a machine code and a sentence people can act on.
//! Internal details are logged with a request id, never sent.
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use pulse_app::api::ApiErrorBody;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ApiErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiErrorBody {
                error: code.to_owned(),
                message: message.into(),
                remaining: None,
                retry_after: None,
            },
        }
    }

    pub fn with_remaining(mut self, remaining: i64) -> Self {
        self.body.remaining = Some(remaining);
        self
    }

    pub fn with_retry_after(mut self, seconds: i64) -> Self {
        self.body.retry_after = Some(seconds);
        self
    }

    /// A 500 whose cause goes to the log under a request id the client also gets.
    pub fn internal(doing: &str, err: impl std::fmt::Display) -> Self {
        let request_id = new_request_id();
        tracing::error!(%request_id, error = %err, "{doing} failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("Something went wrong on the server (request id {request_id}). Check the Pulse log."),
        )
    }
}

pub fn new_request_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> &ApiErrorBody {
        &self.body
    }
}
