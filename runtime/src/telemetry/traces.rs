//! The process's `tracing` subscriber: log lines on stderr (text or JSON, filtered by
//! `THREDS_LOG`), and, when an OTLP endpoint is configured, spans exported over OTLP/HTTP
//! (protobuf) through `tracing-opentelemetry`.
//!
//! Exporting is configured by the standard OpenTelemetry variables: `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_BSP_*` are read by the SDK; `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` (default: parent-based, always on) here, because Threds samples
//! before it creates a span ([`Sampling`]): an unsampled event costs no span at all. Without an
//! endpoint, or with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`, nothing is
//! exported and the span constructors in [`spans`](super::spans) answer
//! [`tracing::Span::none`]: the hot paths pay one relaxed atomic load.

use crate::config::LogFormat;
use crate::trace::TraceParent;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The target of every span Threds exports.
pub const TARGET: &str = "threds::trace";

static EXPORTING: AtomicBool = AtomicBool::new(false);
static SAMPLING: OnceLock<Sampling> = OnceLock::new();

/// Whether this process exports spans (the span constructors create spans only then).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Whether a span in the trace of `parent` (a new trace without one) is sampled, by the
/// process's [`Sampling`]; false when not exporting.
pub fn sampled(parent: Option<TraceParent>) -> bool {
    exporting() && SAMPLING.get().copied().unwrap_or_default().sampled(parent)
}

/// Which spans are recorded: the standard samplers of `OTEL_TRACES_SAMPLER`, decided before a
/// span is created.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Follow the parent's sampled flag when there is a parent (`parentbased_*`).
    pub parent_based: bool,
    /// The share of traces sampled otherwise (by trace id when there is one).
    pub ratio: f64,
}

impl Default for Sampling {
    /// `parentbased_always_on`.
    fn default() -> Self {
        Sampling {
            parent_based: true,
            ratio: 1.0,
        }
    }
}

impl Sampling {
    /// The sampler named by `OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG`, read through
    /// `var`; an unknown name or a bad ratio is an error naming the variable.
    pub fn from_env(var: &impl Fn(&str) -> Option<String>) -> Result<Sampling, Error> {
        let name = var("OTEL_TRACES_SAMPLER").map(|v| v.trim().to_ascii_lowercase());
        let ratio = || -> Result<f64, Error> {
            match var("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(1.0),
                Some(arg) => arg
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        Error::Sampler(format!(
                            "OTEL_TRACES_SAMPLER_ARG={arg:?}: expected a ratio from 0 to 1"
                        ))
                    }),
            }
        };
        let (parent_based, ratio) = match name.as_deref() {
            None | Some("") | Some("parentbased_always_on") => (true, 1.0),
            Some("parentbased_always_off") => (true, 0.0),
            Some("parentbased_traceidratio") => (true, ratio()?),
            Some("always_on") => (false, 1.0),
            Some("always_off") => (false, 0.0),
            Some("traceidratio") => (false, ratio()?),
            Some(other) => {
                return Err(Error::Sampler(format!(
                    "OTEL_TRACES_SAMPLER={other:?}: expected always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                )))
            }
        };
        Ok(Sampling {
            parent_based,
            ratio,
        })
    }

    /// Whether a span in the trace of `parent` (a new trace without one) is sampled.
    pub fn sampled(&self, parent: Option<TraceParent>) -> bool {
        match parent {
            Some(p) if self.parent_based => p.flags & 1 == 1,
            Some(p) => by_trace_id(p.trace_id, self.ratio),
            None => self.ratio >= 1.0 || (self.ratio > 0.0 && draw() < self.ratio),
        }
    }
}

/// The trace-id ratio rule: the low 63 bits of the id against the ratio's share of them.
fn by_trace_id(trace_id: u128, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    // Truncation is the rule: the id's low bits as a fraction of 2^63.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    ((trace_id as u64) >> 1) < bound
}

/// A uniform draw from [0, 1) (for starting traces; not for anything that needs secrecy).
fn draw() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9e37_79b9_7f4a_7c15);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        #[allow(clippy::cast_precision_loss)]
        let top = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64;
        top / (1u64 << 53) as f64
    })
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
    /// The sampler variables are not valid.
    #[error("trace sampler: {0}")]
    Sampler(String),
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
        Some(_) => {
            let _ = SAMPLING.set(Sampling::from_env(&var)?);
            Some(provider(service, &var)?)
        }
        None => None,
    };
    // One global filter (no per-layer filters): the log level, plus Threds' own spans whenever
    // they are exported, whatever the level.
    let mut spec = var("THREDS_LOG").unwrap_or_else(|| "info".to_owned());
    if provider.is_some() {
        spec = format!("{spec},{TARGET}=info");
    }
    let filter = EnvFilter::try_new(&spec).map_err(|e| Error::Filter(format!("{spec:?}: {e}")))?;
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
    // Threds decides before it creates a span (see `Sampling`): the SDK records every span it gets.
    Ok(SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
    fn samplers_follow_the_standard_names() {
        let parse = |pairs: &[(&str, &str)]| Sampling::from_env(&vars(pairs));
        assert_eq!(parse(&[]).unwrap(), Sampling::default());
        let ratio = parse(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ])
        .unwrap();
        assert_eq!(
            ratio,
            Sampling {
                parent_based: true,
                ratio: 0.01
            }
        );
        let off = parse(&[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap();
        assert!(!off.parent_based && off.ratio == 0.0);
        for bad in [
            vec![("OTEL_TRACES_SAMPLER", "sometimes")],
            vec![
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
        ] {
            let e = parse(&bad).unwrap_err().to_string();
            assert!(e.contains("OTEL_TRACES_SAMPLER"), "{e}");
        }
    }

    #[test]
    fn sampling_follows_the_parent_or_the_ratio() {
        let parent = |flags| TraceParent {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            span_id: 1,
            flags,
        };
        let parent_based = Sampling {
            parent_based: true,
            ratio: 0.0,
        };
        assert!(parent_based.sampled(Some(parent(1))));
        assert!(!parent_based.sampled(Some(parent(0))));
        assert!(!parent_based.sampled(None), "ratio 0 starts no trace");
        let all = Sampling {
            parent_based: false,
            ratio: 1.0,
        };
        assert!(all.sampled(Some(parent(0))) && all.sampled(None));
        // About 1% of new traces at ratio 0.01.
        let one_percent = Sampling {
            parent_based: true,
            ratio: 0.01,
        };
        let n = (0..100_000).filter(|_| one_percent.sampled(None)).count();
        assert!((500..1500).contains(&n), "{n} of 100000");
        // By trace id: the same id always decides the same way, and about the ratio of ids pass.
        let ratio = Sampling {
            parent_based: false,
            ratio: 0.25,
        };
        let ids =
            (0..10_000u128).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        let passed = ids
            .map(|trace_id| TraceParent {
                trace_id,
                span_id: 1,
                flags: 0,
            })
            .filter(|p| ratio.sampled(Some(*p)))
            .count();
        assert!((2000..3000).contains(&passed), "{passed} of 10000");
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
