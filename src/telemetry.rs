//! Logs: constant messages with structured fields, as text or JSON; and, when
//! configured, traces exported over OTLP/HTTP (OpenTelemetry).

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// The log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers and SIEMs.
    Json,
}

static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber. `RUST_LOG` overrides the default filter.
/// With `otlp_endpoint`, spans also go to that OpenTelemetry collector. Call
/// outside the async runtime (the exporter runs on its own thread).
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => Box::new(fmt),
        LogFormat::Json => Box::new(fmt.json().flatten_event(true)),
    };
    let mut otel_error = None;
    let otel = otlp_endpoint
        .filter(|e| !e.trim().is_empty())
        .and_then(|endpoint| match tracer(endpoint) {
            Ok(provider) => {
                let tracer = provider.tracer("backplane");
                let _ = TRACES.set(provider);
                Some(tracing_opentelemetry::layer().with_tracer(tracer))
            }
            Err(err) => {
                otel_error = Some(err);
                None
            }
        });
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .with(filter)
        .try_init();
    match (otel_error, otlp_endpoint) {
        (Some(err), _) => {
            tracing::error!(error = %err, "trace export is off: the OTLP exporter could not be set up")
        }
        (None, Some(endpoint)) if !endpoint.trim().is_empty() => {
            tracing::info!(endpoint, "exporting traces over OTLP/HTTP")
        }
        _ => {}
    }
}

fn tracer(endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("backplane")
                .build(),
        )
        .build())
}

/// Sends the spans still buffered; call before the process exits.
pub fn shutdown() {
    if let Some(provider) = TRACES.get()
        && let Err(err) = provider.shutdown()
    {
        eprintln!("warning: flushing traces failed: {err}");
    }
}
