//! The ProofBox appliance service: proof jobs over REST, kept in a persistent job
//! store: embedded, or a PostgreSQL database shared by a fleet of appliances.
//!
//! - [`config`]: settings from defaults, a TOML file and `PROOFBOX_*` variables;
//! - [`store`]: the job store (jobs, queue, idempotency keys, proofs) behind one
//!   trait: embedded (`redb`) or PostgreSQL, shared by a fleet of appliances; where
//!   every state change is one durable transaction;
//! - [`worker`]: worker threads per device, retries and CPU fallback;
//! - [`server`]: the accept loop (header-read and idle timeouts, a bound on
//!   connections, graceful shutdown);
//! - [`api`]: the axum router ([`app`]), its middleware (API keys, limits, timeouts,
//!   metrics, JSON errors) and the OpenAPI document;
//! - [`transition`]: state-transition jobs with a witness: decoding, chunking, the
//!   native check and the statement, shared by submission and worker;
//! - [`types`]: request and response bodies, shared with the `proofbox` client;
//! - [`error`]: [`AppError`], the one error response shape.
//!
//! [`Service::open`] prepares everything (store, devices) without serving;
//! [`serve`] runs the whole service until SIGTERM or SIGINT.
//!
//! **Invariant:** proving never runs on the async runtime: workers are plain threads,
//! and handlers reach the store through `spawn_blocking`.

pub mod api;
pub mod config;
pub mod error;
pub mod fleet;
pub mod metrics;
pub mod server;
pub mod store;
pub mod transition;
pub mod types;
pub mod worker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proofbox_backend_api::{BackendError, BackendKind, BackendReport, DeviceType};
use proofbox_prover::registry::{self, BackendChoice};

pub use api::{ApiDoc, AppState, app};
pub use config::{Config, ConfigError};
pub use error::AppError;
pub use store::{
    Claimant, JobStore, PgOptions, PgStore, Recovery, Store, StoreError, StoreLocation,
};
pub use worker::{DeviceSlot, Hub, Policy, Workers};

/// Name of the store file in the data directory.
pub const STORE_FILE: &str = "jobs.redb";
/// Name of the generated API key file in the data directory.
pub const KEY_FILE: &str = "api-key";

/// Why the service did not start (or stopped badly).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("opening the job store: {0}")]
    Store(#[from] StoreError),
    /// The store failed at shutdown (a storage fault): the jobs still running could
    /// not be put back in the queue now; the next start does it.
    #[error(
        "stopped, but the job store could not be updated at shutdown: {0}; jobs that were running stay recorded as running and are queued again at the next start"
    )]
    StoreAtShutdown(StoreError),
    #[error("device {device}: {source}")]
    Device {
        device: String,
        source: BackendError,
    },
    #[error("no device to prove on: {0}")]
    NoDevice(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let context = context.into();
    move |source| ServeError::Io { context, source }
}

/// A service ready to serve: configuration checked, store open and recovered,
/// devices open. Workers start with [`Service::start_workers`].
pub struct Service {
    config: Config,
    state: AppState,
    hub: Arc<Hub>,
    slots: Vec<DeviceSlot>,
    recovery: Recovery,
    key_file: Option<PathBuf>,
}

impl Service {
    /// Validates `config`, opens the store in `data_dir` (re-queueing jobs the previous
    /// process left running), and opens the devices. Blocking.
    pub fn open(config: Config) -> Result<Self, ServeError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(io(format!(
            "creating the data directory {}",
            config.data_dir.display()
        )))?;
        let (api_keys, key_file) = if config.keyless() || !config.api_keys.is_empty() {
            (config.api_keys.clone(), None)
        } else {
            let path = config.data_dir.join(KEY_FILE);
            (vec![load_or_create_key(&path)?], Some(path))
        };
        let (store, recovery) = open_store(&config)?;
        let reports = registry::reports();
        let slots = open_devices(&config, &reports)?;
        let hub = Hub::new(
            store,
            Policy {
                max_attempts: config.max_attempts,
                fallback_to_cpu: config.fallback_to_cpu
                    && slots.iter().any(|s| s.kind == BackendKind::Cpu),
                verifier: config.verifier(),
                job_deadline_secs: config.job_deadline_secs,
            },
        );
        self_test_devices(&hub, &slots);
        hub.cap_log_rows(config.max_log_rows);
        let state = AppState::new(
            config.clone(),
            api_keys,
            hub.clone(),
            slots.clone(),
            reports,
        );
        hub.store.advertise(state.advert());
        Ok(Self {
            config,
            state,
            hub,
            slots,
            recovery,
            key_file,
        })
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The job store, described (the file or the database server).
    pub fn store(&self) -> String {
        self.hub.store.describe()
    }

    /// Jobs the previous process left running, now queued again or failed.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The devices workers prove on.
    pub fn devices(&self) -> &[DeviceSlot] {
        &self.slots
    }

    /// Where the generated API key is, when no key was configured.
    pub fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }

    pub fn start_workers(&self) -> Workers {
        Workers::start(self.hub.clone(), &self.slots)
    }
}

/// Opens the configured job store ([`Config::store`]) and recovers from the previous
/// process: jobs it left running are queued again (embedded), or jobs whose
/// appliance stopped renewing their lease are (PostgreSQL).
pub fn open_store(config: &Config) -> Result<(Arc<dyn JobStore>, Recovery), ServeError> {
    let location = StoreLocation::parse(&config.store).map_err(|message| {
        ServeError::Config(ConfigError::Invalid {
            key: "store",
            message,
        })
    })?;
    Ok(match location {
        StoreLocation::Embedded => {
            let (store, recovery) = Store::open_with(
                &config.data_dir.join(STORE_FILE),
                config.max_attempts,
                config.init,
            )?;
            store.init()?;
            (Arc::new(store), recovery)
        }
        StoreLocation::Postgres(url) => {
            let (store, recovery) = PgStore::open(PgOptions {
                max_attempts: config.max_attempts,
                lease: Duration::from_secs(config.lease_secs),
                schema: (!config.store_schema.is_empty()).then(|| config.store_schema.clone()),
                ..PgOptions::new(url)
            })?;
            (Arc::new(store), recovery)
        }
    })
}

/// Reads the API key at `path`, or writes a new random one there (mode 0600).
/// Devices prove themselves first: each runs its self-test against the CPU backend
/// (`DynProver::self_test`); one that fails is marked faulty in `hub` (logged, counted
/// in `proofbox_device_faults_total{fault="self_test"}`) and never takes a job.
pub fn self_test_devices(hub: &Hub, slots: &[DeviceSlot]) {
    for slot in slots {
        match slot.prover.self_test() {
            Ok(report) => tracing::info!(
                device = %slot.id,
                "self-test passed ({} field(s) in {:.1} ms)",
                report.fields.len(),
                report.duration.as_secs_f64() * 1e3
            ),
            Err(e) => {
                tracing::error!(device = %slot.id, "self-test failed, the device takes no jobs: {e}");
                ::metrics::counter!("proofbox_device_faults_total", "backend" => slot.kind.name(), "fault" => "self_test").increment(1);
                hub.mark_faulty(&slot.id, format!("self-test failed: {e}"));
            }
        }
    }
}

fn load_or_create_key(path: &Path) -> Result<String, ServeError> {
    match std::fs::read_to_string(path) {
        Ok(k) if k.trim().len() >= config::MIN_API_KEY_LEN => return Ok(k.trim().to_string()),
        Ok(_) => {
            return Err(ServeError::Io {
                context: format!("API key file {}", path.display()),
                source: std::io::Error::other("too short; delete it to generate a new one"),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
    }
    let key = format!(
        "pbk_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    writeln!(f, "{key}")
        .and_then(|_| f.sync_all())
        .map_err(io(format!("writing {}", path.display())))?;
    Ok(key)
}

/// Opens the configured devices, or by default every available GPU or accelerator
/// (skipping those that fail to open) and `cpu:0`.
fn open_devices(config: &Config, reports: &[BackendReport]) -> Result<Vec<DeviceSlot>, ServeError> {
    let slot = |id: &str, kind: BackendKind| -> Result<DeviceSlot, BackendError> {
        let options = registry::OpenOptions {
            opencl_binary: config
                .opencl_binary
                .clone()
                .filter(|_| kind == BackendKind::Opencl),
        };
        let prover = registry::open_with(BackendChoice::Kind(kind), Some(id), &options)?;
        Ok(DeviceSlot {
            id: id.to_string(),
            kind,
            fields: prover.device().fields.clone(),
            workers: config.workers_per_device,
            prover: Arc::from(prover),
        })
    };
    let mut slots: Vec<DeviceSlot> = Vec::new();
    if config.devices.is_empty() {
        for r in reports.iter().filter(|r| r.available) {
            for d in &r.devices {
                let wanted = if r.backend == BackendKind::Cpu {
                    d.id == "cpu:0"
                } else {
                    d.device_type != DeviceType::Cpu
                };
                if !wanted {
                    continue;
                }
                match slot(&d.id, r.backend) {
                    Ok(s) => slots.push(s),
                    Err(e) => tracing::warn!(device = %d.id, "not used: {e}"),
                }
            }
        }
    } else {
        for id in &config.devices {
            if slots.iter().any(|s| &s.id == id) {
                continue;
            }
            let kind = id
                .split(':')
                .next()
                .and_then(|k| k.parse::<BackendKind>().ok())
                .ok_or_else(|| ServeError::Device {
                    device: id.clone(),
                    source: BackendError::invalid(format!("device id {id:?} names no backend")),
                })?;
            slots.push(slot(id, kind).map_err(|source| ServeError::Device {
                device: id.clone(),
                source,
            })?);
        }
    }
    if slots.is_empty() {
        return Err(ServeError::NoDevice(
            "no available device (see `proofbox devices`)".into(),
        ));
    }
    Ok(slots)
}

/// SIGTERM and SIGINT, registered when created. Register them before the devices are
/// probed: device drivers built on LLVM (PoCL, lavapipe) install handlers that
/// re-raise these signals with the default action, and only chain to handlers that
/// were there first.
pub struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Registers the handlers (within a Tokio runtime).
    pub fn register() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the first SIGTERM or SIGINT.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A service running on the current Tokio runtime, serving and proving until
/// [`Running::shutdown`]: what [`serve`] runs, and what `proofbox devnet` embeds.
pub struct Running {
    addr: std::net::SocketAddr,
    service: Service,
    workers: Option<Workers>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Opens everything ([`Service::open`], off the runtime), binds `config.listen`,
/// starts the workers and serves.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    let service = tokio::task::spawn_blocking(move || Service::open(config))
        .await
        .map_err(|e| ServeError::Io {
            context: "starting".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    let listener = tokio::net::TcpListener::bind(service.config.listen)
        .await
        .map_err(io(format!("listening on {}", service.config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the bound address"))?;
    for id in &service.recovery.requeued {
        tracing::warn!(job = %id, "was running when the service stopped: queued again");
    }
    for id in &service.recovery.failed {
        tracing::warn!(job = %id, "was running when the service stopped: out of attempts, failed");
    }
    let workers = service.start_workers();
    let router = app(service.state());
    let limits = server::Limits::from_config(&service.config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, router, limits, async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        addr,
        service,
        workers: Some(workers),
        stop: Some(stop),
        server: Some(server),
    })
}

impl Running {
    /// The address it serves on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Stops taking work, lets running proofs finish for `shutdown_grace_secs`
    /// (re-queueing the rest) and closes the store.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        tracing::info!("shutting down: no new jobs; waiting for running proofs");
        self.service.hub.begin_shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = match self.server.take() {
            Some(server) => match server.await {
                Ok(r) => r.map_err(io("serving")),
                Err(e) => Err(ServeError::Io {
                    context: "serving".into(),
                    source: std::io::Error::other(e.to_string()),
                }),
            },
            None => Ok(()),
        };
        let grace = Duration::from_secs(self.service.config.shutdown_grace_secs);
        let workers = self.workers.take().expect("workers run until shutdown");
        let requeued = tokio::task::spawn_blocking(move || workers.shutdown(grace))
            .await
            .map_err(|e| ServeError::Io {
                context: "stopping workers".into(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(ServeError::StoreAtShutdown)?;
        for id in &requeued.requeued {
            tracing::warn!(job = %id, "still running at shutdown: queued again");
        }
        result
    }
}

/// Runs the service until SIGTERM or SIGINT: opens everything, serves, then stops
/// taking work, lets running proofs finish for `shutdown_grace_secs` (re-queueing the
/// rest) and closes the store. `ready` is called with the bound address.
pub async fn serve(
    config: Config,
    ready: impl FnOnce(&Service, std::net::SocketAddr),
) -> Result<(), ServeError> {
    let signal = ShutdownSignal::register().map_err(io("registering signal handlers"))?;
    let running = start(config).await?;
    ready(&running.service, running.addr);
    signal.recv().await;
    running.shutdown().await
}
