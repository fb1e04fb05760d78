//! An identity provider's key set endpoint in the test process: answers every `GET` with the
//! JSON Web Key Set the test publishes (or with whatever failure it sets), and counts the
//! requests, so tests can rotate keys and watch the server fetch them.

use crate::keys::{key_set, TestKey};
use crate::Error;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the endpoint answers: a status and a body.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: String,
}

/// The endpoint (it serves until the process ends).
pub struct Provider {
    url: String,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<AtomicUsize>,
}

impl Provider {
    /// Listens on a free port of 127.0.0.1, publishing `keys`.
    pub fn start(keys: &[TestKey]) -> Result<Provider, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("jwks: bind"))?;
        let addr = listener.local_addr().map_err(Error::io("jwks: address"))?;
        let provider = Provider {
            url: format!("http://{addr}/.well-known/jwks.json"),
            answer: Arc::new(Mutex::new(Answer {
                status: 200,
                body: String::new(),
            })),
            requests: Arc::new(AtomicUsize::new(0)),
        };
        provider.publish(keys)?;
        let (answer, requests) = (provider.answer.clone(), provider.requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (answer, requests) = (answer.clone(), requests.clone());
                std::thread::spawn(move || serve(stream, &answer, &requests));
            }
        });
        Ok(provider)
    }

    /// The key set's URL (for `THREDS_AUTH_JWKS_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Publishes the public halves of `keys` from now on.
    pub fn publish(&self, keys: &[TestKey]) -> Result<(), Error> {
        let body = key_set(keys)?.to_string();
        self.answer_with(200, &body);
        Ok(())
    }

    /// Answers `status` with `body` from now on (a provider that is down or serves garbage).
    pub fn answer_with(&self, status: u16, body: &str) {
        if let Ok(mut answer) = self.answer.lock() {
            *answer = Answer {
                status,
                body: body.to_owned(),
            };
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits up to `within` until more than `count` requests were answered; answers whether
    /// they were.
    pub fn wait_for_requests_over(&self, count: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.requests() <= count {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// Answers one request on `stream`, then closes it.
fn serve(stream: TcpStream, answer: &Mutex<Answer>, requests: &AtomicUsize) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {}
        }
    }
    let Answer { status, body } = answer.lock().map(|a| a.clone()).unwrap_or(Answer {
        status: 500,
        body: String::new(),
    });
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Counted before answering: a client that got the answer finds it counted.
    requests.fetch_add(1, Ordering::SeqCst);
    let _ = writer.write_all(head.as_bytes());
    let _ = writer.write_all(body.as_bytes());
    let _ = writer.flush();
}
