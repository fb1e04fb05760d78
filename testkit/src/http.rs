//! Plain HTTP/1.0 exchanges with a local server (readiness, metrics, posting events): one request
//! a connection, the whole answer read until the server closes it.

use crate::Error;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, `null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The value of the sample `name` (with its labels, as printed) in a Prometheus scrape `body`.
pub fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The value of the sample `name` in the `/metrics` of the server at `addr`.
pub fn metric(addr: &str, name: &str) -> Result<Option<f64>, Error> {
    Ok(sample(&get(addr, "/metrics")?.body, name))
}

/// `GET path` at `addr` (`host:port`).
pub fn get(addr: &str, path: &str) -> Result<Response, Error> {
    exchange(addr, &format!("GET {path} HTTP/1.0\r\n\r\n"))
}

/// `GET path` at `addr` with `Authorization: Bearer token`.
pub fn get_with_token(addr: &str, path: &str, token: &str) -> Result<Response, Error> {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n"),
    )
}

/// `POST path` at `addr` with a JSON body, and `Authorization: Bearer token` when a token is given.
pub fn post_json(
    addr: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Response, Error> {
    let body = body.to_string();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    exchange(
        addr,
        &format!(
            "POST {path} HTTP/1.0\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Sends `request` and parses the answer.
fn exchange(addr: &str, request: &str) -> Result<Response, Error> {
    let mut stream =
        TcpStream::connect(addr).map_err(Error::io(format!("connecting to {addr}")))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(Error::io("setting socket timeouts"))?;
    stream
        .write_all(request.as_bytes())
        .map_err(Error::io(format!("writing to {addr}")))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(Error::io(format!("reading from {addr}")))?;
    parse(&String::from_utf8_lossy(&answer))
}

/// Status line, headers, blank line, body.
fn parse(answer: &str) -> Result<Response, Error> {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::Http(format!("no end of headers in {answer:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Http(format!("no status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        return Err(Error::Http("chunked answer to an HTTP/1.0 request".into()));
    }
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse;

    #[test]
    fn answers_parse_into_status_and_body() {
        let r = parse("HTTP/1.1 202 Accepted\r\ncontent-length: 7\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (202, "{\"a\":1}"));
        assert_eq!(r.json()["a"], 1);
        assert!(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n").is_err());
        assert!(parse("garbage").is_err());
    }
}
