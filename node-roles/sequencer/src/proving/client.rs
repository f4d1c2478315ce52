//! The appliance's REST API as the sequencer uses it: submit a state-transition job
//! with an idempotency key, follow it, download its bundle.

use std::time::Duration;

use serde::Deserialize;

/// Why a call did not give an answer to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request certainly created nothing: the connection could not be made, or
    /// the appliance answered 429 or 503 (busy, shutting down, store unavailable).
    /// Safe to send elsewhere.
    #[error("appliance not reached: {0}")]
    NotReached(String),
    /// The request may have reached the appliance (a timeout, a broken connection, a
    /// 5xx): retry there, with the same key.
    #[error("no answer from the appliance: {0}")]
    NoAnswer(String),
    /// The appliance refused the request.
    #[error("the appliance refused it ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No such job (the appliance lost it, or it is another appliance).
    #[error("the appliance has no such job")]
    NotFound,
}

/// What the sequencer reads of a job (`JobView` in the appliance's API).
#[derive(Debug, Clone, Deserialize)]
pub struct JobInfo {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub device_used: Option<String>,
    #[serde(default)]
    pub statement: Option<StatementView>,
}

/// The statement a state-transition job names.
#[derive(Debug, Clone, Deserialize)]
pub struct StatementView {
    pub pre_root: String,
    pub post_root: String,
    pub diff_commitment: String,
    pub block_number: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// One appliance.
#[derive(Debug, Clone)]
pub struct Appliance {
    pub url: String,
    key: Option<String>,
    fri: String,
    http: reqwest::Client,
}

impl Appliance {
    pub fn new(url: &str, key: Option<String>, fri: &str) -> Self {
        // reqwest is built without a default TLS provider (no OpenSSL): install ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client with a TLS provider");
        Self {
            url: url.trim_end_matches('/').to_string(),
            key,
            fri: fri.to_string(),
            http,
        }
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        let resp = self.auth(r).send().await.map_err(|e| {
            if e.is_connect() {
                CallError::NotReached(e.to_string())
            } else {
                CallError::NoAnswer(e.to_string())
            }
        })?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => (String::new(), String::from_utf8_lossy(&body).into_owned()),
        };
        Err(match status {
            404 => CallError::NotFound,
            429 | 503 => CallError::NotReached(format!("{status} {code}: {message}")),
            s if s >= 500 => CallError::NoAnswer(format!("{status} {code}: {message}")),
            _ => CallError::Refused {
                status,
                code,
                message,
            },
        })
    }

    /// Submits a state-transition job of `witness` (a `TransitionWitness` encoding)
    /// under idempotency key `key`: the same key gives back the same job.
    pub async fn submit(&self, witness: &[u8], key: &str) -> Result<JobInfo, CallError> {
        let r = self
            .http
            .post(format!(
                "{}/v1/jobs/raw?circuit=state-transition&fri={}",
                self.url, self.fri
            ))
            .header("idempotency-key", key)
            .header("content-type", "application/octet-stream")
            .body(witness.to_vec());
        let resp = self.send(r).await?;
        resp.json()
            .await
            .map_err(|e| CallError::NoAnswer(format!("reading the job: {e}")))
    }

    pub async fn job(&self, id: &str) -> Result<JobInfo, CallError> {
        let resp = self
            .send(self.http.get(format!("{}/v1/jobs/{id}", self.url)))
            .await?;
        resp.json()
            .await
            .map_err(|e| CallError::NoAnswer(format!("reading the job: {e}")))
    }

    /// The job's proof bytes (a bundle).
    pub async fn proof(&self, id: &str) -> Result<Vec<u8>, CallError> {
        let resp = self
            .send(self.http.get(format!("{}/v1/jobs/{id}/proof", self.url)))
            .await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| CallError::NoAnswer(format!("reading the proof: {e}")))
    }
}
