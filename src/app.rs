//! Build, bind, serve, shut down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::audit::AuditWriter;
use crate::config::{Config, Mode};
use crate::graphql::build_schema;
use crate::http::session::Sessions;
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
    state: AppState,
    config: Config,
    _refresh: Option<tokio::task::JoinHandle<()>>,
    /// Ends once the server (which holds every writer handle) is gone and the
    /// queue is drained.
    audit_task: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Opens and migrates the database, seeds it in `dev`, sets up the identity
    /// provider client and binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        // The metrics recorder first, so that nothing recorded is lost.
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
        let sessions = Sessions::new(
            config.session_key.as_ref(),
            config.session_ttl,
            config.public_url.as_deref(),
        );

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let (audit, audit_task) = AuditWriter::spawn(store.clone(), config.audit_queue);
        let state = AppState {
            schema: build_schema(
                Some(store.clone()),
                Some(audit.clone()),
                config.bulk,
                config.limits,
            ),
            store,
            verifier,
            mode: config.mode,
            directory: Default::default(),
            max_batch: config.max_batch,
            sessions,
            sign_in,
            audit: Some(audit),
        };
        Ok(Self {
            listener,
            state,
            config,
            _refresh: refresh,
            audit_task,
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

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight
    /// requests finish for at most the configured grace period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = self.local_addr();
        match self.config.mode {
            Mode::Dev => tracing::warn!(
                %addr,
                "DEV MODE: requests without a token act as the demo administrator; never expose this server"
            ),
            Mode::Serve => tracing::info!(%addr, "serving"),
        }
        tracing::info!(
            backend = self.state.store.backend_name(),
            playground = %format!("http://{addr}/playground"),
            "backplane ready"
        );
        let grace = self.config.shutdown_grace;
        let audit_task = self.audit_task;
        let app =
            router(self.state, &self.config).into_make_service_with_connect_info::<SocketAddr>();
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopped_tx.send(());
        });
        // axum waits for in-flight requests forever; bound it.
        let deadline = async move {
            if stopped_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "shutdown grace period over; closing remaining connections"
                );
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            result = server => result,
            () = deadline => Ok(()),
        };
        // Queued audit events are written before the process exits.
        if tokio::time::timeout(grace, audit_task).await.is_err() {
            tracing::error!("the audit writer did not drain within the grace period");
        }
        result
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
        Err(StoreError::Invalid(_)) => Ok(()),
        Err(err) => Err(StartError::Seed(err)),
    }
}
