//! A small HTTP/1.1 client over one kept-alive loopback connection (hyper), for the load
//! generator: one `Client` is one connection, reconnected after a transport error.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// Time one request may take, end to end (the server's own limit is 10 s).
pub const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// Bytes of a response body kept (the whole publication list of a big city fits).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub struct Client {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A response: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or an error naming what was asked.
    pub fn json(&self, what: &str) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("{what}: the answer is not JSON: {e}"))
    }

    /// The start of the body, for error messages.
    pub fn excerpt(&self) -> String {
        let s = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
        s.replace('\n', " ")
    }
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, sender: None }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("set_nodelay: {e}"))?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {}: {e}", self.addr))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> Result<Answer, String> {
        let host = self.addr.to_string();
        let sender = self.connect().await?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection not ready: {e}"))?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("bad request {path}: {e}"))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = res.status().as_u16();
        let body = http_body_util::Limited::new(res.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("{path}: reading the body: {e}"))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Sends one request and reads the whole answer. A transport error or timeout is an
    /// `Err` (the connection is then dropped and made anew by the next call); any HTTP
    /// status is an `Ok`.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> Result<Answer, String> {
        let out =
            match tokio::time::timeout(REQUEST_LIMIT, self.exchange(method, path, token, body))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "{path}: no answer within {} s",
                    REQUEST_LIMIT.as_secs()
                )),
            };
        if out.is_err() {
            self.sender = None;
        }
        out
    }

    /// A GET that must answer 2xx with JSON.
    pub async fn get_json(&mut self, path: &str, token: &str) -> Result<serde_json::Value, String> {
        let a = self.call(Method::GET, path, token, None).await?;
        if !a.ok() {
            return Err(format!("GET {path}: {} {}", a.status, a.excerpt()));
        }
        a.json(&format!("GET {path}"))
    }

    /// A POST that must answer 2xx with JSON.
    pub async fn post_json(
        &mut self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let a = self
            .call(Method::POST, path, token, Some(body.to_string()))
            .await?;
        if !a.ok() {
            return Err(format!("POST {path}: {} {}", a.status, a.excerpt()));
        }
        a.json(&format!("POST {path}"))
    }
}
