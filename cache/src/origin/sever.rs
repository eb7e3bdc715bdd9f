//! Connections of the upload client (`upload_client`) that the node can close from outside.
//!
//! hyper's pool may take a connection back the moment a response's body has been read, before
//! the node has looked at the response (a small body is read with the head). When the node
//! then refuses the response, poisoning the connection keeps the pool from handing it out
//! again, but leaves it open and idle. [`Sever::cut`] closes it as well: every read and write
//! on it fails from then on, and the task parked on it is woken, so hyper drops it at once.
//!
//! Each response carries its connection's [`Sever`] in its extensions (hyper-util copies a
//! connection's `Connected::extra` into every response it reads).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Closes one connection from outside.
#[derive(Clone, Default, Debug)]
pub struct Sever(Arc<Shared>);

#[derive(Default, Debug)]
struct Shared {
    cut: AtomicBool,
    /// The last task that read the connection.
    reader: AtomicWaker,
}

impl Sever {
    /// Close the connection: its reads and writes fail from now on.
    pub fn cut(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.reader.wake();
    }

    fn is_cut(&self) -> bool {
        self.0.cut.load(Ordering::Acquire)
    }

    fn error() -> io::Error {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "connection closed by the node",
        )
    }
}

/// An `HttpConnector` whose connections carry a [`Sever`].
#[derive(Clone)]
pub struct SeverableConnector(pub HttpConnector);

/// One connection made by [`SeverableConnector`].
pub struct Severable {
    io: TokioIo<TcpStream>,
    sever: Sever,
}

/// A connect error (hyper-util's own type is not nameable).
type ConnectError = Box<dyn std::error::Error + Send + Sync>;

type Connecting = Pin<Box<dyn Future<Output = Result<Severable, ConnectError>> + Send>>;

impl tower_service::Service<Uri> for SeverableConnector {
    type Response = Severable;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let connecting = self.0.call(dst);
        Box::pin(async move {
            let io = connecting.await.map_err(ConnectError::from)?;
            Ok(Severable {
                io,
                sever: Sever::default(),
            })
        })
    }
}

impl Connection for Severable {
    fn connected(&self) -> Connected {
        self.io.connected().extra(self.sever.clone())
    }
}

impl Read for Severable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.sever.0.reader.register(cx.waker());
        if this.sever.is_cut() {
            return Poll::Ready(Err(Sever::error()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl Write for Severable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.sever.is_cut() {
            return Poll::Ready(Err(Sever::error()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cut_connection_is_closed_and_its_reader_woken() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connector = SeverableConnector(HttpConnector::new());
        let uri: Uri = format!("http://{addr}/").parse().unwrap();
        let conn = tower_service::Service::call(&mut connector, uri)
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let sever = conn.sever.clone();
        // A reader parked on the idle connection, as hyper's connection task is.
        let mut conn = conn;
        let parked = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            std::future::poll_fn(|cx| {
                let mut rb = hyper::rt::ReadBuf::new(&mut buf);
                Pin::new(&mut conn).poll_read(cx, rb.unfilled())
            })
            .await
        });
        tokio::task::yield_now().await;
        sever.cut();
        let read = parked.await.unwrap();
        assert_eq!(
            read.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionAborted)
        );
        // The connection was dropped with the task: the server sees it end.
        let mut rest = Vec::new();
        let n = tokio::io::AsyncReadExt::read_to_end(&mut server, &mut rest)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
