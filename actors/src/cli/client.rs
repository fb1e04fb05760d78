//! `threds publish` and `threds tail`: small WebSocket clients for trying a running Threds.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Where and as whom to connect.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// Server URL, e.g. `http://127.0.0.1:8080` (or `ws://...`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Bearer token (`threds token --participant ID`); `THREDS_TOKEN` works too.
    #[arg(long, env = "THREDS_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Arguments of `threds publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    connection: Connection,
    /// A file of events (one JSON object, an array, or JSON lines); `-` or nothing reads stdin.
    file: Option<String>,
}

/// Arguments of `threds tail`.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    #[command(flatten)]
    connection: Connection,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<usize>,
}

/// A client's WebSocket.
pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) async fn connect(c: &Connection) -> anyhow::Result<Socket> {
    let base = c
        .url
        .trim_end_matches('/')
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let mut request = format!("{base}/ws")
        .into_client_request()
        .context("bad --url")?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", c.token)
            .parse()
            .context("bad --token")?,
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("connecting to {base}/ws"))?;
    // A refused token closes the connection at once with a reason.
    if let Ok(Some(Ok(Message::Close(Some(frame))))) =
        tokio::time::timeout(Duration::from_millis(200), socket.next()).await
    {
        bail!(
            "the server refused the connection: {} ({})",
            frame.reason,
            u16::from(frame.code)
        );
    }
    Ok(socket)
}

/// Sends a control request (`kind`, e.g. `org.wt.control.sysControl`, with `values`) and answers
/// its reply's `data.content.values`; a refused request is an error with the server's code and
/// reason.
pub(super) async fn control(
    socket: &mut Socket,
    kind: &str,
    values: Value,
    wait: Duration,
) -> anyhow::Result<Value> {
    let id = format!("cli-{}-{}", std::process::id(), uuid_like());
    let event = json!({
        "id": id,
        "type": kind,
        "thredId": "SYSTEM",
        "data": {"content": {"values": values}},
    });
    socket
        .send(Message::text(json!({ "event": event }).to_string()))
        .await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).unwrap_or_default(),
            Ok(Some(Ok(Message::Close(frame)))) => match frame {
                Some(f) => bail!(
                    "the server closed the connection: {} ({})",
                    f.reason,
                    u16::from(f.code)
                ),
                None => bail!("the server closed the connection"),
            },
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => bail!("the connection failed: {e}"),
            Ok(None) => bail!("the connection closed"),
            Err(_) => bail!("no reply to request {id} within {} s", wait.as_secs()),
        };
        if frame["error"]["ref"] == id.as_str() {
            bail!("request refused: {}", frame["error"]);
        }
        let event = &frame["message"]["event"];
        if event["re"] != id.as_str() {
            continue;
        }
        let content = &event["data"]["content"];
        if let Some(error) = content.get("error") {
            bail!(
                "{} (code {})",
                error["message"].as_str().unwrap_or("refused"),
                error["code"]
            );
        }
        return Ok(content["values"].clone());
    }
}

/// A request id part unlikely to repeat: the time in nanoseconds.
fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Reads events: one object, an array of objects, or one object per line.
fn read_events(text: &str) -> anyhow::Result<Vec<Value>> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(match value {
            Value::Array(items) => items,
            other => vec![other],
        });
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}: not JSON", i + 1)))
        .collect()
}

/// Sends each event and waits for its acknowledgement; exit 1 if any was rejected.
pub fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let text = match args.file.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading events from stdin")?;
            s
        }
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
    };
    let events = read_events(&text)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut socket = connect(&args.connection).await?;
        let mut failed = 0usize;
        for (i, mut event) in events.into_iter().enumerate() {
            if event.get("id").is_none() {
                event["id"] = json!(format!("publish-{}-{i}", std::process::id()));
            }
            let id = event["id"].as_str().unwrap_or_default().to_string();
            socket
                .send(Message::text(json!({ "event": event }).to_string()))
                .await?;
            loop {
                let frame = match tokio::time::timeout(Duration::from_secs(10), socket.next()).await
                {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        serde_json::from_str::<Value>(&t).unwrap_or_default()
                    }
                    Ok(Some(Ok(_))) => continue,
                    Ok(_) => bail!("the connection closed"),
                    Err(_) => bail!("no acknowledgement for event {id} within 10 s"),
                };
                if frame["ack"]["id"] == id.as_str() {
                    println!("{}", json!({"accepted": id}));
                    break;
                }
                if frame.get("error").is_some() {
                    eprintln!("rejected: {}", frame["error"]);
                    failed += 1;
                    break;
                }
            }
        }
        let _ = socket.close(None).await;
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// Prints the participant's messages as JSON lines until interrupted (or `--count`).
pub fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut socket = connect(&args.connection).await?;
        eprintln!("connected; waiting for messages (Ctrl-C to stop)");
        let mut seen = 0usize;
        while let Some(frame) = socket.next().await {
            match frame? {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap_or_default();
                    if let Some(message) = value.get("message") {
                        println!("{message}");
                        seen += 1;
                        if args.count.is_some_and(|n| seen >= n) {
                            break;
                        }
                    }
                }
                Message::Close(frame) => {
                    if let Some(f) = frame {
                        eprintln!("closed by the server: {} ({})", f.reason, u16::from(f.code));
                    }
                    break;
                }
                _ => {}
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
