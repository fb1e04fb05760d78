//! The process's `tracing` subscriber: log lines on stderr (text or JSON, filtered by
//! `THREDS_LOG`), and, when an OTLP endpoint is configured, spans exported over OTLP/HTTP
//! (protobuf) through `tracing-opentelemetry`.
//!
//! Exporting is configured by the standard OpenTelemetry variables, read by the SDK itself:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default:
//! parent-based, always on), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`. Without an endpoint, or
//! with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`, nothing is exported and the
//! span constructors in [`spans`](super::spans) answer [`tracing::Span::none`]: the hot paths pay
//! one relaxed atomic load.

use crate::config::LogFormat;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The target of every span Threds exports.
pub const TARGET: &str = "threds::trace";

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans (the span constructors create spans only then).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `THREDS_LOG` is not a valid filter.
    #[error("THREDS_LOG: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built from the `OTEL_*` variables.
    #[error("OTLP trace exporter (OTEL_EXPORTER_OTLP_*): {0}")]
    Exporter(String),
}

/// Who this process is, for the exported resource.
#[derive(Debug, Clone)]
pub struct Service {
    /// `service.name` unless `OTEL_SERVICE_NAME` (or `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`) names one.
    pub name: String,
    /// `service.instance.id`: the node name.
    pub instance: String,
    /// `threds.roles`: the roles this process runs.
    pub roles: String,
}

/// The installed telemetry; dropping it flushes and stops the span exporter.
#[must_use = "dropping it stops exporting spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            EXPORTING.store(false, Ordering::Relaxed);
            if let Err(e) = provider.shutdown() {
                eprintln!("telemetry: flushing spans at exit failed: {e}");
            }
        }
    }
}

/// Where spans go, from the `OTEL_*` variables read through `var`: `None` when exporting is off.
pub fn otlp_endpoint(var: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        return None;
    }
    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// Installs the global subscriber: logs in `format` on stderr filtered by `THREDS_LOG` (default
/// `info`), plus span export when the environment configures an OTLP endpoint. Call it once,
/// outside any async runtime (the exporter runs on its own thread). A second call only answers
/// a [`Telemetry`] that exports nothing.
pub fn init(service: &Service, format: LogFormat) -> Result<Telemetry, Error> {
    let var = |name: &str| std::env::var(name).ok();
    let provider = match otlp_endpoint(&var) {
        Some(_) => Some(provider(service, &var)?),
        None => None,
    };
    // One global filter (no per-layer filters): the log level, plus Threds' own spans whenever
    // they are exported, whatever the level.
    let mut spec = var("THREDS_LOG").unwrap_or_else(|| "info".to_owned());
    if provider.is_some() {
        spec = format!("{spec},{TARGET}=info");
    }
    let filter =
        EnvFilter::try_new(&spec).map_err(|e| Error::Filter(format!("{spec:?}: {e}")))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let spans = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("threds")));
    if tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .try_init()
        .is_err()
    {
        // Already installed (a test harness, a second command in one process).
        return Ok(Telemetry { provider: None });
    }
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(Telemetry { provider })
}

/// The tracer provider: OTLP/HTTP batch export, sampler and resource from the environment.
fn provider(
    service: &Service,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<SdkTracerProvider, Error> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| Error::Exporter(e.to_string()))?;
    let named = var("OTEL_SERVICE_NAME").is_some_and(|v| !v.trim().is_empty())
        || var("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.contains("service.name="));
    let mut resource = Resource::builder().with_attributes([
        KeyValue::new("service.instance.id", service.instance.clone()),
        KeyValue::new("threds.roles", service.roles.clone()),
    ]);
    if !named {
        resource = resource.with_service_name(service.name.clone());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn exporting_needs_an_endpoint_and_can_be_switched_off() {
        assert_eq!(otlp_endpoint(&vars(&[])), None);
        assert_eq!(
            otlp_endpoint(&vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])),
            None
        );
        let generic = vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]);
        assert_eq!(otlp_endpoint(&generic).as_deref(), Some("http://c:4318"));
        let specific = vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://t:4318/v1/traces",
            ),
        ]);
        assert_eq!(
            otlp_endpoint(&specific).as_deref(),
            Some("http://t:4318/v1/traces")
        );
        for off in [
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let v = vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]);
            assert_eq!(otlp_endpoint(&v), None, "{off:?}");
        }
    }
}
