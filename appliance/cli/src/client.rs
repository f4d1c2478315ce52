//! A blocking client of the appliance service, on the service's own request and
//! response types.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use proofbox_service::types::{ErrorBody, JobView, SubmitJob};
use reqwest::StatusCode;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};

pub struct Client {
    http: Http,
    base: String,
    key: Option<String>,
}

impl Client {
    pub fn new(server: &str, key: Option<String>) -> Result<Self> {
        // reqwest is built without a bundled crypto provider: use ring's (no OpenSSL).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Http::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(
                "--server {server:?}: expected an http:// or https:// URL"
            ));
        }
        Ok(Self { http, base, key })
    }

    fn auth(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    fn send(&self, req: RequestBuilder) -> Result<Response> {
        let resp = self
            .auth(req)
            .send()
            .with_context(|| format!("contacting {}", self.base))?;
        check(resp)
    }

    /// Submits a job. Retries connection failures and 5xx answers a few times with
    /// the same idempotency key, so a retry never creates a second job.
    pub fn submit(&self, job: &SubmitJob, idempotency_key: &str) -> Result<JobView> {
        let url = format!("{}/v1/jobs", self.base);
        let mut last = None;
        for attempt in 0..4 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500 << attempt));
            }
            let req = self
                .auth(self.http.post(&url))
                .header("Idempotency-Key", idempotency_key)
                .json(job);
            match req.send() {
                Ok(resp) if resp.status().is_server_error() => last = Some(check(resp).err()),
                Ok(resp) => return Ok(check(resp)?.json()?),
                Err(e) if e.is_connect() || e.is_timeout() => {
                    last = Some(Some(
                        anyhow!(e).context(format!("contacting {}", self.base)),
                    ))
                }
                Err(e) => return Err(anyhow!(e).context(format!("contacting {}", self.base))),
            }
        }
        Err(last
            .flatten()
            .unwrap_or_else(|| anyhow!("submitting failed")))
    }

    pub fn job(&self, id: &str) -> Result<JobView> {
        Ok(self
            .send(self.http.get(format!("{}/v1/jobs/{id}", self.base)))?
            .json()?)
    }

    pub fn cancel(&self, id: &str) -> Result<JobView> {
        Ok(self
            .send(self.http.post(format!("{}/v1/jobs/{id}/cancel", self.base)))?
            .json()?)
    }

    pub fn proof(&self, id: &str) -> Result<Vec<u8>> {
        Ok(self
            .send(self.http.get(format!("{}/v1/jobs/{id}/proof", self.base)))?
            .bytes()?
            .to_vec())
    }
}

/// A non-2xx answer as one error line: status, code, message.
fn check(resp: Response) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().unwrap_or_default();
    let detail = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(e) => format!("{} ({})", e.error.message, e.error.code),
        Err(_) => text.chars().take(200).collect(),
    };
    let hint = if status == StatusCode::UNAUTHORIZED {
        " [pass --api-key or set PROOFBOX_API_KEY]"
    } else {
        ""
    };
    Err(anyhow!("server answered {status}: {detail}{hint}"))
}
