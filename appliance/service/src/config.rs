//! Service configuration: defaults, then a TOML file, then `PROOFBOX_*` environment
//! variables, then command-line flags (each overrides the one before).
//! `docs/api.md` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The shortest API key accepted.
pub const MIN_API_KEY_LEN: usize = 16;

/// Every setting of `proofbox serve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on (`PROOFBOX_LISTEN`).
    pub listen: SocketAddr,
    /// Where the job store (`jobs.redb`) and the generated API key live
    /// (`PROOFBOX_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Accepted API keys (`PROOFBOX_API_KEYS`, comma-separated). With none and
    /// `allow_keyless_on_loopback` off, a key is generated once into
    /// `<data_dir>/api-key`.
    pub api_keys: Vec<String>,
    /// Serve `/v1` without keys; refused unless `listen` is a loopback address
    /// (`PROOFBOX_ALLOW_KEYLESS_ON_LOOPBACK`).
    pub allow_keyless_on_loopback: bool,
    /// Largest request body in bytes; larger ones get 413 (`PROOFBOX_BODY_LIMIT_BYTES`).
    pub body_limit_bytes: usize,
    /// Time limit of one HTTP request, in seconds (`PROOFBOX_REQUEST_TIMEOUT_SECS`).
    pub request_timeout_secs: u64,
    /// Time a client has to send a request's head (request line and headers), counted
    /// from when the server waits for it: a new connection, or a keep-alive connection
    /// after its previous response, so an idle keep-alive connection is closed after
    /// this long (`PROOFBOX_HEADER_READ_TIMEOUT_SECS`).
    pub header_read_timeout_secs: u64,
    /// A connection on which nothing is read or written for this long is closed, at
    /// any point of a request (a stalled body or download); at least
    /// `request_timeout_secs` (`PROOFBOX_IDLE_TIMEOUT_SECS`).
    pub idle_timeout_secs: u64,
    /// Open connections at most; beyond, a new connection is answered 503
    /// `too_many_connections` and closed (`PROOFBOX_MAX_CONNECTIONS`). Keep it below
    /// the process's file descriptor limit (`ulimit -n`).
    pub max_connections: usize,
    /// Device ids to prove on (`PROOFBOX_DEVICES`, comma-separated). Empty: every
    /// available GPU or accelerator, and `cpu:0`.
    pub devices: Vec<String>,
    /// Proofs run at once on each device (`PROOFBOX_WORKERS_PER_DEVICE`).
    pub workers_per_device: usize,
    /// Attempts per job before it fails; an attempt interrupted by a crash counts
    /// (`PROOFBOX_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// After a device failure, run the job's next attempt on the CPU (unless the job
    /// named a device) (`PROOFBOX_FALLBACK_TO_CPU`).
    pub fallback_to_cpu: bool,
    /// Queued jobs beyond which submissions get 503 `queue_full`
    /// (`PROOFBOX_MAX_QUEUED_JOBS`).
    pub max_queued_jobs: u64,
    /// The largest `log_rows` this appliance proves, below the circuits' own limits
    /// (`PROOFBOX_MAX_LOG_ROWS`; default: the circuits' limits).
    pub max_log_rows: u8,
    /// On SIGTERM/SIGINT, how long running proofs may finish before they are put
    /// back in the queue (`PROOFBOX_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: u64,
    /// Create the job store even where `jobs.redb` exists but is no job store (empty,
    /// or another file): it is moved aside to `jobs.redb.foreign-<ms>`. Without it
    /// such a file is refused at start; a missing file is always created
    /// (`PROOFBOX_INIT`, `proofbox serve --init`).
    pub init: bool,
    /// A precompiled OpenCL program binary (Intel FPGA `.aocx`, AMD/Xilinx `.xclbin`)
    /// that OpenCL devices load instead of compiling the kernels from source
    /// (`PROOFBOX_OPENCL_BINARY`). It must exist when the service starts.
    pub opencl_binary: Option<PathBuf>,
    /// The verifier's floor: the fewest conjectured security bits a proof may have,
    /// for `/v1/verify` and for the check of every proof this appliance makes; jobs
    /// whose FRI preset gives fewer are refused at submission (0 to 124;
    /// `PROOFBOX_MIN_SECURITY_BITS`).
    pub min_security_bits: u32,
    /// `/v1/verify` requests checked at once; more get 503 `verify_busy` with
    /// `Retry-After` (`PROOFBOX_VERIFY_CONCURRENCY`).
    pub verify_concurrency: usize,
    /// State-transition witnesses checked at once at submission (decoded, cut into
    /// chunks, every update's Merkle paths checked); more get 503 `witness_busy` with
    /// `Retry-After` (`PROOFBOX_WITNESS_CONCURRENCY`).
    pub witness_concurrency: usize,
    /// How long one attempt may run, in seconds, for a proof of up to 2^16 rows;
    /// larger proofs get this times `rows / 2^16`. Past it the attempt is abandoned,
    /// the job retried (or failed after `max_attempts`) and the device marked faulty
    /// (`PROOFBOX_JOB_DEADLINE_SECS`).
    pub job_deadline_secs: u64,
    /// Where jobs are kept (`PROOFBOX_STORE`, `proofbox serve --store`): `embedded`
    /// (`jobs.redb` in `data_dir`, for one appliance) or a PostgreSQL URL
    /// (`postgres://user:password@host:5432/database`) shared by a fleet of
    /// appliances (`docs/fleet.md`).
    pub store: String,
    /// With a PostgreSQL store: how long a running job stays held by this appliance
    /// without a heartbeat (renewed every third of it); past it, another appliance
    /// takes the job again and the interrupted attempt counts (`PROOFBOX_LEASE_SECS`).
    pub lease_secs: u64,
    /// With a PostgreSQL store: the schema its tables live in, created if missing
    /// (letters, digits and `_`); empty: the user's default (`public`). Fleets that
    /// must not share jobs can share a database this way (`PROOFBOX_STORE_SCHEMA`).
    pub store_schema: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("proofbox-data"),
            api_keys: Vec::new(),
            allow_keyless_on_loopback: false,
            body_limit_bytes: 64 << 20,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 1024,
            devices: Vec::new(),
            workers_per_device: 1,
            max_attempts: 3,
            fallback_to_cpu: true,
            max_queued_jobs: 10_000,
            max_log_rows: proofbox_prover::CircuitId::ALL
                .iter()
                .map(|c| c.max_log_rows())
                .max()
                .unwrap_or(0),
            shutdown_grace_secs: 30,
            init: false,
            opencl_binary: None,
            min_security_bits: proofbox_verifier::DEFAULT_MIN_SECURITY_BITS,
            verify_concurrency: 2,
            witness_concurrency: 2,
            job_deadline_secs: 600,
            store: "embedded".into(),
            lease_secs: 30,
            store_schema: String::new(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?}: {message}")]
    Env {
        var: &'static str,
        value: String,
        message: String,
    },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

impl Config {
    /// Defaults, overridden by `file` if given.
    pub fn from_file(file: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))
    }

    /// Applies `PROOFBOX_*` variables read through `get` (`std::env::var` in the
    /// binary; a map in tests).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parsed<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                var,
                value: v.to_string(),
                message: e.to_string(),
            })
        }
        let b = |var: &'static str, v: &str| {
            parse_bool(v).map_err(|message| ConfigError::Env {
                var,
                value: v.to_string(),
                message,
            })
        };
        if let Some(v) = get("PROOFBOX_LISTEN") {
            self.listen = parsed("PROOFBOX_LISTEN", &v)?;
        }
        if let Some(v) = get("PROOFBOX_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("PROOFBOX_API_KEYS") {
            self.api_keys = split_list(&v);
        }
        if let Some(v) = get("PROOFBOX_ALLOW_KEYLESS_ON_LOOPBACK") {
            self.allow_keyless_on_loopback = b("PROOFBOX_ALLOW_KEYLESS_ON_LOOPBACK", &v)?;
        }
        if let Some(v) = get("PROOFBOX_BODY_LIMIT_BYTES") {
            self.body_limit_bytes = parsed("PROOFBOX_BODY_LIMIT_BYTES", &v)?;
        }
        if let Some(v) = get("PROOFBOX_REQUEST_TIMEOUT_SECS") {
            self.request_timeout_secs = parsed("PROOFBOX_REQUEST_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_HEADER_READ_TIMEOUT_SECS") {
            self.header_read_timeout_secs = parsed("PROOFBOX_HEADER_READ_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_IDLE_TIMEOUT_SECS") {
            self.idle_timeout_secs = parsed("PROOFBOX_IDLE_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_MAX_CONNECTIONS") {
            self.max_connections = parsed("PROOFBOX_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_DEVICES") {
            self.devices = split_list(&v);
        }
        if let Some(v) = get("PROOFBOX_WORKERS_PER_DEVICE") {
            self.workers_per_device = parsed("PROOFBOX_WORKERS_PER_DEVICE", &v)?;
        }
        if let Some(v) = get("PROOFBOX_MAX_ATTEMPTS") {
            self.max_attempts = parsed("PROOFBOX_MAX_ATTEMPTS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_FALLBACK_TO_CPU") {
            self.fallback_to_cpu = b("PROOFBOX_FALLBACK_TO_CPU", &v)?;
        }
        if let Some(v) = get("PROOFBOX_MAX_QUEUED_JOBS") {
            self.max_queued_jobs = parsed("PROOFBOX_MAX_QUEUED_JOBS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_MAX_LOG_ROWS") {
            self.max_log_rows = parsed("PROOFBOX_MAX_LOG_ROWS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_SHUTDOWN_GRACE_SECS") {
            self.shutdown_grace_secs = parsed("PROOFBOX_SHUTDOWN_GRACE_SECS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_INIT") {
            self.init = b("PROOFBOX_INIT", &v)?;
        }
        if let Some(v) = get("PROOFBOX_MIN_SECURITY_BITS") {
            self.min_security_bits = parsed("PROOFBOX_MIN_SECURITY_BITS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_VERIFY_CONCURRENCY") {
            self.verify_concurrency = parsed("PROOFBOX_VERIFY_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("PROOFBOX_WITNESS_CONCURRENCY") {
            self.witness_concurrency = parsed("PROOFBOX_WITNESS_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("PROOFBOX_JOB_DEADLINE_SECS") {
            self.job_deadline_secs = parsed("PROOFBOX_JOB_DEADLINE_SECS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_STORE") {
            self.store = v.trim().to_string();
        }
        if let Some(v) = get("PROOFBOX_STORE_SCHEMA") {
            self.store_schema = v.trim().to_string();
        }
        if let Some(v) = get("PROOFBOX_LEASE_SECS") {
            self.lease_secs = parsed("PROOFBOX_LEASE_SECS", &v)?;
        }
        if let Some(v) = get("PROOFBOX_OPENCL_BINARY") {
            self.opencl_binary = (!v.trim().is_empty()).then(|| PathBuf::from(v));
        }
        Ok(())
    }

    /// The verifier every proof passes ([`Config::min_security_bits`]).
    pub fn verifier(&self) -> proofbox_verifier::Verifier {
        proofbox_verifier::Verifier::with_min_security_bits(self.min_security_bits)
            .unwrap_or_default()
    }

    /// Whether `/v1` is served without keys.
    pub fn keyless(&self) -> bool {
        self.allow_keyless_on_loopback && self.listen.ip().is_loopback()
    }

    /// Checks every value; the service refuses to start on an error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if self.allow_keyless_on_loopback && !self.listen.ip().is_loopback() {
            return invalid(
                "allow_keyless_on_loopback",
                format!(
                    "keyless access is only allowed on a loopback address, and listen is {}; \
                     configure api_keys instead",
                    self.listen
                ),
            );
        }
        if let Some(k) = self
            .api_keys
            .iter()
            .find(|k| k.len() < MIN_API_KEY_LEN || !k.bytes().all(|c| c.is_ascii_graphic()))
        {
            return invalid(
                "api_keys",
                format!(
                    "a key of {} characters: keys need at least {MIN_API_KEY_LEN} printable ASCII characters and no spaces",
                    k.len()
                ),
            );
        }
        if let Err(e) = proofbox_verifier::Verifier::with_min_security_bits(self.min_security_bits)
        {
            return invalid("min_security_bits", e.to_string());
        }
        if self.verify_concurrency == 0 {
            return invalid("verify_concurrency", "must be at least 1".into());
        }
        if self.witness_concurrency == 0 {
            return invalid("witness_concurrency", "must be at least 1".into());
        }
        if self.job_deadline_secs == 0 {
            return invalid("job_deadline_secs", "must be at least 1".into());
        }
        if let Err(message) = crate::store::StoreLocation::parse(&self.store) {
            return invalid("store", message);
        }
        if !self
            .store_schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return invalid("store_schema", "letters, digits and _ only".into());
        }
        if !(3..=3600).contains(&self.lease_secs) {
            return invalid("lease_secs", "must be 3..=3600".into());
        }
        if self.body_limit_bytes < 1024 {
            return invalid("body_limit_bytes", "must be at least 1024".into());
        }
        if self.request_timeout_secs == 0 {
            return invalid("request_timeout_secs", "must be at least 1".into());
        }
        if self.header_read_timeout_secs == 0 {
            return invalid("header_read_timeout_secs", "must be at least 1".into());
        }
        if self.idle_timeout_secs < self.request_timeout_secs {
            return invalid(
                "idle_timeout_secs",
                format!(
                    "must be at least request_timeout_secs ({}): a request still being \
                     handled would otherwise lose its connection",
                    self.request_timeout_secs
                ),
            );
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1".into());
        }
        if !(1..=64).contains(&self.workers_per_device) {
            return invalid("workers_per_device", "must be 1..=64".into());
        }
        if !(1..=100).contains(&self.max_attempts) {
            return invalid("max_attempts", "must be 1..=100".into());
        }
        if self.max_queued_jobs == 0 {
            return invalid("max_queued_jobs", "must be at least 1".into());
        }
        let smallest = proofbox_prover::CircuitId::ALL
            .iter()
            .map(|c| c.min_log_rows())
            .min()
            .unwrap_or(0);
        if self.max_log_rows < smallest {
            return invalid(
                "max_log_rows",
                format!("must be at least {smallest} (the smallest circuit)"),
            );
        }
        if let Some(path) = &self.opencl_binary
            && let Err(e) = std::fs::metadata(path)
        {
            return invalid("opencl_binary", format!("{}: {e}", path.display()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn file_then_environment() {
        let mut c = Config::from_toml(
            r#"
            listen = "127.0.0.1:9000"
            api_keys = ["0123456789abcdef"]
            devices = ["cpu:0"]
            max_attempts = 5
            idle_timeout_secs = 40
            max_connections = 9
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_attempts, 5);
        assert_eq!(c.workers_per_device, 1);
        assert_eq!((c.idle_timeout_secs, c.max_connections), (40, 9));
        let env: HashMap<&str, &str> = [
            ("PROOFBOX_LISTEN", "127.0.0.1:9001"),
            ("PROOFBOX_API_KEYS", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb"),
            ("PROOFBOX_FALLBACK_TO_CPU", "off"),
            ("PROOFBOX_HEADER_READ_TIMEOUT_SECS", "3"),
            ("PROOFBOX_IDLE_TIMEOUT_SECS", "45"),
            ("PROOFBOX_MAX_CONNECTIONS", "7"),
            ("PROOFBOX_INIT", "yes"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.api_keys.len(), 2);
        assert!(!c.fallback_to_cpu);
        assert_eq!(
            (
                c.header_read_timeout_secs,
                c.idle_timeout_secs,
                c.max_connections
            ),
            (3, 45, 7)
        );
        assert!(c.init);
        c.validate().unwrap();
        let short_idle = Config {
            idle_timeout_secs: 5,
            ..c.clone()
        };
        let err = short_idle.validate().unwrap_err().to_string();
        assert!(err.starts_with("idle_timeout_secs"), "{err}");

        let err = c
            .apply_env(|k| (k == "PROOFBOX_MAX_ATTEMPTS").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("PROOFBOX_MAX_ATTEMPTS"), "{err}");
        let err = Config::from_toml("max_atempts = 2").unwrap_err();
        assert!(err.contains("max_atempts"), "{err}");

        let err = c
            .apply_env(|k| (k == "PROOFBOX_STORE").then(|| "mysql://db".to_string()))
            .and_then(|_| c.validate())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("store: expected"), "{err}");
        c.apply_env(|k| (k == "PROOFBOX_STORE").then(|| "postgres://pb@db:5432/jobs".into()))
            .unwrap();
        c.validate().unwrap();

        c.apply_env(|k| (k == "PROOFBOX_OPENCL_BINARY").then(|| "/nonexistent/k.aocx".into()))
            .unwrap();
        assert_eq!(c.opencl_binary, Some(PathBuf::from("/nonexistent/k.aocx")));
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("opencl_binary: /nonexistent/k.aocx"),
            "{err}"
        );
    }

    #[test]
    fn keyless_only_on_loopback() {
        let mut c = Config {
            allow_keyless_on_loopback: true,
            ..Config::default()
        };
        c.validate().unwrap();
        assert!(c.keyless());
        c.listen = "0.0.0.0:8080".parse().unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        c.allow_keyless_on_loopback = false;
        c.api_keys = vec!["short".into()];
        assert!(c.validate().is_err());
    }
}
