//! An OTLP/HTTP trace receiver in the test process: accepts `POST /v1/traces` with protobuf
//! bodies (what `opentelemetry-otlp`'s `http/protobuf` exporter sends), decodes every span and
//! keeps it for the test to inspect.

use crate::Error;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One received span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The `service.name` of the process that sent it.
    pub service: String,
    /// Its trace id (32 hex digits).
    pub trace_id: String,
    /// Its span id (16 hex digits).
    pub span_id: String,
    /// Its parent's span id (16 hex digits; empty for a root).
    pub parent_span_id: String,
    /// Its name.
    pub name: String,
    /// Its kind: `internal`, `server`, `client`, `producer` or `consumer`.
    pub kind: &'static str,
    /// Its attributes, each value as text.
    pub attributes: BTreeMap<String, String>,
}

impl Span {
    /// The attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The receiver (it accepts until the process ends).
pub struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<Vec<String>>>,
    counted: Arc<AtomicUsize>,
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1 and keeps every span.
    pub fn start() -> Result<Receiver, Error> {
        Receiver::listen(true)
    }

    /// Listens on a free port of 127.0.0.1 and only counts the spans (for benchmarks).
    pub fn counting() -> Result<Receiver, Error> {
        Receiver::listen(false)
    }

    fn listen(keep: bool) -> Result<Receiver, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("otlp: bind"))?;
        let endpoint = format!(
            "http://{}",
            listener.local_addr().map_err(Error::io("otlp: address"))?
        );
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let counted = Arc::new(AtomicUsize::new(0));
        let store = Store {
            spans: spans.clone(),
            rejected: requests.clone(),
            counted: counted.clone(),
            keep,
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = store.clone();
                std::thread::spawn(move || serve(stream, &store));
            }
        });
        Ok(Receiver {
            endpoint,
            spans,
            requests,
            counted,
        })
    }

    /// How many spans arrived so far.
    pub fn count(&self) -> usize {
        self.counted.load(Ordering::Relaxed)
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Requests that were not a decodable `POST /v1/traces` (each described).
    pub fn rejected(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for the spans received to satisfy `done`; answers them either way.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || Instant::now() >= deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Where a connection puts what it receives.
#[derive(Clone)]
struct Store {
    spans: Arc<Mutex<Vec<Span>>>,
    rejected: Arc<Mutex<Vec<String>>>,
    counted: Arc<AtomicUsize>,
    keep: bool,
}

/// Serves one connection (HTTP/1.1, keep-alive) until the client closes it.
fn serve(stream: TcpStream, store: &Store) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = if request_line.starts_with("POST /v1/traces ") {
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(request) => {
                    let spans = decode(request);
                    store.counted.fetch_add(spans.len(), Ordering::Relaxed);
                    if store.keep {
                        if let Ok(mut all) = store.spans.lock() {
                            all.extend(spans);
                        }
                    }
                    "200 OK"
                }
                Err(e) => {
                    if let Ok(mut r) = store.rejected.lock() {
                        r.push(format!("{}: {e}", request_line.trim()));
                    }
                    "400 Bad Request"
                }
            }
        } else {
            if let Ok(mut r) = store.rejected.lock() {
                r.push(request_line.trim().to_owned());
            }
            "404 Not Found"
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The spans of one export request.
fn decode(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(Span {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: match span.kind {
                        2 => "server",
                        3 => "client",
                        4 => "producer",
                        5 => "consumer",
                        _ => "internal",
                    },
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    out
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
