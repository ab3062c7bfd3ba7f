//! Build, bind, serve, shut down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::audit::AuditWriter;
use crate::config::{Config, Mode};
use crate::graphql::build_serving_schema;
use crate::graphql::gate::Gate;
use crate::graphql::pagination::Cursors;
use crate::http::serve::{ServeOptions, serve};
use crate::http::session::{Deployment, Sessions};
use crate::http::tls::TlsError;
use crate::http::{AppState, router};
use crate::identity::browser::BrowserSignIn;
use crate::identity::{OidcVerifier, TokenVerifier};
use crate::store::{Store, StoreError, seed};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot open the database (check BACKPLANE_DATABASE_URL and that the server is up)")]
    Database(#[source] StoreError),
    #[error("database migrations failed")]
    Migrations(#[source] StoreError),
    #[error("seeding the demo data failed")]
    Seed(#[source] StoreError),
    #[error("cannot set up the identity provider client: {0}")]
    Identity(crate::identity::IdentityError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot write audit checkpoints: {0}")]
    Checkpoints(String),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    /// The rustls configuration when this server terminates TLS.
    tls: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
    config: Config,
    _refresh: Option<tokio::task::JoinHandle<()>>,
    /// Ends once the server (which holds every writer handle) is gone and the
    /// queue is drained.
    audit_task: tokio::task::JoinHandle<()>,
    /// The signed checkpoints of the audit chain, when configured.
    checkpoints: Option<Checkpoints>,
}

/// What writes this instance's checkpoints.
struct Checkpoints {
    checkpointer: Arc<crate::audit::checkpoint::Checkpointer>,
    settings: crate::audit::checkpoint::Settings,
    /// Events this instance's writer committed.
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl Application {
    /// Reads the TLS files, opens and migrates the database, seeds it in `dev`,
    /// sets up the identity provider client and binds the listener.
    pub async fn build(mut config: Config) -> Result<Self, StartError> {
        config.validate()?;
        // The verifier reads the service clients from its settings.
        if let Some(oidc) = config.oidc.as_mut() {
            oidc.service_clients =
                crate::identity::oidc::ServiceClients::parse(&config.service_clients)
                    .map_err(crate::config::ConfigError::ServiceClient)?;
        }
        // First: a bad certificate path is the quickest thing to report.
        let tls = crate::http::tls::server_config(&config.tls)?;
        // The metrics recorder before anything records, so that nothing is lost.
        let _ = crate::metrics::handle();
        let store = Store::connect(&config.database)
            .await
            .map_err(StartError::Database)?;
        store.migrate().await.map_err(StartError::Migrations)?;
        if config.mode == Mode::Dev {
            seed_if_empty(&store, config.dev_seed_orgs).await?;
        }

        let (verifier, refresh, sign_in): (Option<Arc<dyn TokenVerifier>>, _, _) = match &config
            .oidc
        {
            Some(settings) => {
                let verifier = OidcVerifier::new(settings.clone()).map_err(StartError::Identity)?;
                let refresh = verifier.spawn_refresh();
                let sign_in = config
                    .browser
                    .clone()
                    .map(|browser| Arc::new(BrowserSignIn::new(verifier.clone(), browser)));
                (
                    Some(verifier as Arc<dyn TokenVerifier>),
                    Some(refresh),
                    sign_in,
                )
            }
            None => (None, None, None),
        };
        let mut sessions = Sessions::new(
            config.session_key.as_ref(),
            config.session_ttl,
            Deployment {
                mode: config.mode,
                issuer: config.oidc.as_ref().map(|o| o.issuer.as_str()),
                public_url: config.public_url.as_deref(),
            },
        );
        if tls.is_some() {
            sessions = sessions.secure_cookies();
        }

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let (audit, audit_task) = AuditWriter::spawn(store.clone(), config.audit_queue);
        let checkpoints = match &config.audit_checkpoints {
            None => None,
            Some(settings) => {
                let checkpointer =
                    crate::audit::checkpoint::Checkpointer::new(store.clone(), settings)
                        .map_err(StartError::Checkpoints)?;
                tracing::info!(
                    instance = %settings.instance,
                    dir = ?settings.dir,
                    every_events = settings.every_events,
                    every_secs = settings.every.as_secs(),
                    "the audit chain's head is signed and written outside the database"
                );
                Some(Checkpoints {
                    checkpointer: Arc::new(checkpointer),
                    settings: settings.clone(),
                    written: audit.written(),
                })
            }
        };
        // Hidden variables hash alike across restarts and instances that share
        // the session key; without one, within this process only.
        if let Some(secret) = &config.session_key {
            use secrecy::ExposeSecret;
            crate::audit::values::set_key_from(secret.expose_secret().as_bytes());
        }
        let (cursors, _) = Cursors::configured(
            config.cursor_key.as_ref(),
            config.session_key.as_ref(),
            config.mode,
        );
        let schema = build_serving_schema(
            Some(store.clone()),
            config.bulk,
            config.limits,
            cursors.clone(),
        );
        let export_cursors = cursors.clone();
        let gate = Arc::new(
            Gate::new(
                &schema,
                config.limits,
                crate::graphql::admission::Admission::new(
                    config.max_cost_in_flight.clamp(1, u64::from(u32::MAX >> 4)) as u32,
                    config.max_cost_share_percent,
                ),
                Some(audit.clone()),
                config
                    .compile_reads
                    .then(|| {
                        crate::graphql::compiled::CompiledReads::new(
                            store.clone(),
                            cursors,
                            config.prepared_documents,
                        )
                    })
                    .flatten(),
            )
            .with_fair_use(config.step_up.clone(), config.fair_use)
            .with_prepared_documents(config.prepared_documents),
        );
        let state = AppState::new(crate::http::Shared {
            schema,
            gate,
            store,
            verifier,
            mode: config.mode,
            directory: Default::default(),
            max_batch: config.max_batch,
            sessions,
            sign_in,
            audit: Some(audit),
            exports: crate::export::Slots::new(config.export),
            plain_exports: config.compile_reads,
            cursors: export_cursors,
            refusals: crate::audit::refusals::Refusals::new(config.audit_fold),
            step_up: Arc::new(config.step_up.clone()),
        });
        Ok(Self {
            listener,
            tls,
            state,
            config,
            _refresh: refresh,
            audit_task,
            checkpoints,
        })
    }

    /// The bound address (the port is chosen by the OS when configured as 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// The pool, for tests that look at the database or count statements.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish for at most the configured grace period, closes what is
    /// left, and waits (as long again at most) for the audit writer to drain.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = self.local_addr();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.config.mode {
            Mode::Dev => tracing::warn!(
                %addr,
                "DEV MODE: requests without a token act as the demo administrator; never expose this server"
            ),
            Mode::Serve => tracing::info!(%addr, tls = self.tls.is_some(), "serving"),
        }
        tracing::info!(
            backend = self.state.store.backend_name(),
            playground = %format!("{scheme}://{addr}/playground"),
            "backplane ready"
        );
        let grace = self.config.shutdown_grace;
        let audit_task = self.audit_task;
        let options = ServeOptions {
            tls: self.tls,
            header_read_timeout: self.config.header_read_timeout,
            shutdown_grace: grace,
        };
        let (stop_checkpoints, stopped) = tokio::sync::oneshot::channel::<()>();
        let checkpoint_task = self.checkpoints.map(|c| {
            tokio::spawn(c.checkpointer.run(c.settings, c.written, async move {
                let _ = stopped.await;
            }))
        });
        // Refusals before the gate go to the audit log through a writer
        // handle of their own, given up once the last of them is written.
        let (stop_refusals, refusals_stopped) = tokio::sync::oneshot::channel::<()>();
        let refusals_task = self.state.audit.clone().map(|writer| {
            tokio::spawn(self.state.refusals.clone().run(writer, async move {
                let _ = refusals_stopped.await;
            }))
        });
        let app = router(self.state, &self.config);
        serve(self.listener, app, options, shutdown).await;
        // No request is left to be refused: the last folds are written.
        let _ = stop_refusals.send(());
        if let Some(task) = refusals_task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::error!("the last refusals were not recorded within the grace period");
        }
        // Every connection, and with it every writer handle, is gone: queued
        // audit events are written before the process exits.
        if tokio::time::timeout(grace, audit_task).await.is_err() {
            tracing::error!("the audit writer did not drain within the grace period");
        }
        // Then the last checkpoint, of the chain as this instance leaves it.
        let _ = stop_checkpoints.send(());
        if let Some(task) = checkpoint_task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::error!("the last audit checkpoint was not written within the grace period");
        }
        Ok(())
    }
}

async fn seed_if_empty(store: &Store, orgs: u64) -> Result<(), StartError> {
    match seed::seed(store, orgs).await {
        Ok(report) => {
            tracing::info!(
                organizations = report.organizations,
                users = report.users,
                "demo data seeded"
            );
            Ok(())
        }
        // Already has data: keep it.
        Err(StoreError::AlreadySeeded { .. }) => Ok(()),
        Err(err) => Err(StartError::Seed(err)),
    }
}
