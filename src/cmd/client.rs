//! The one HTTP/1.1 client of `strait ctl` and the simulator's probes: a single exchange on a
//! connection the caller opened (so it can pick the client port), with a bounded body. The
//! health probes in `strait_lb::health::probe` keep their own: they read only a status line.

use anyhow::anyhow;
use bytes::Bytes;
use http::response::Parts;
use http::Request;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Sends `request` on `stream` and reads the answer's head and at most `max_body` bytes of body.
pub async fn exchange(
    stream: TcpStream,
    request: Request<Empty<Bytes>>,
    max_body: usize,
) -> anyhow::Result<(Parts, Bytes)> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Owned here and aborted below: the connection never outlives the exchange.
    let driver = tokio::spawn(connection);
    let answer = async {
        let (head, body) = sender.send_request(request).await?.into_parts();
        let body = Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the body: {e}"))?
            .to_bytes();
        anyhow::Ok((head, body))
    }
    .await;
    driver.abort();
    answer
}
