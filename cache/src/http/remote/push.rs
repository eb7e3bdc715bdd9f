//! The owner's fill lease: what this node fetches goes to the owner too (`Push`, `Data`,
//! `End`), and the owner's word that it stored it (`Count`) is awaited before this node's
//! client sees the end of its body.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::frame::{Frame, Push};
use crate::cluster::peer::{PeerConn, PeerError};
use crate::cluster::wire;
use crate::http::ctx::Ctx;
use crate::store::object::FillHead;

use super::peer_failed;

/// Longest wait for the owner's word that it stored a pushed object.
const PUSH_ACK_WAIT: Duration = Duration::from_secs(2);

/// The owner's fill lease: what this node fetches goes to the owner too.
pub(in crate::http) struct PushSink {
    /// The connection the owner granted the lease on.
    pub(super) conn: PeerConn,
    /// The lease number from the owner's `Miss`.
    pub(super) lease: u64,
    pub(super) ctx: Arc<Ctx>,
    /// The owner's Cache-Status member from its `Miss`.
    pub owner_member: Option<String>,
}

impl PushSink {
    /// Sends the object's head; None when the owner can no longer be reached.
    pub async fn head(mut self, key: &str, head: &FillHead) -> Option<PushSink> {
        let wire_head = wire::from_fill(head, String::new())?;
        let push = Frame::Push(Box::new(Push {
            key: key.to_owned(),
            lease: self.lease,
            head: wire_head,
        }));
        match self.conn.send(push).await {
            Ok(()) => Some(self),
            Err(e) => {
                peer_failed(&self.ctx, &e);
                None
            }
        }
    }

    /// The response is not storable: the lease is given back unused.
    pub async fn decline(mut self) {
        match self.conn.send(Frame::End { complete: false }).await {
            Ok(()) => self.release(),
            Err(e) => peer_failed(&self.ctx, &e),
        }
    }

    /// Sends a body chunk; false when the owner can no longer be reached.
    pub async fn data(&mut self, chunk: bytes::Bytes) -> bool {
        match self.conn.send(Frame::Data(chunk)).await {
            Ok(()) => true,
            Err(e) => {
                peer_failed(&self.ctx, &e);
                false
            }
        }
    }

    /// The body was cut short (or outgrew what may be stored): the owner discards it.
    pub async fn abort(mut self) {
        if self.conn.send(Frame::End { complete: false }).await.is_ok() {
            self.release();
        }
    }

    /// The whole body (`total` bytes) was sent: waits (at most [`PUSH_ACK_WAIT`]) for the
    /// owner to say it stored it, so that this node's client sees the end of its body only once
    /// any node asked again finds the object at the owner.
    pub async fn end(mut self, total: u64) {
        if let Err(e) = self.conn.send(Frame::End { complete: true }).await {
            return peer_failed(&self.ctx, &e);
        }
        match self.conn.recv(PUSH_ACK_WAIT).await {
            Ok(Frame::Count(n)) if n == total => self.release(),
            Ok(other) => peer_failed(
                &self.ctx,
                &PeerError::Unexpected(self.conn.addr, other.name()),
            ),
            Err(e) => peer_failed(&self.ctx, &e),
        }
    }

    fn release(self) {
        if let Some(cl) = &self.ctx.cluster {
            cl.peers.put(self.conn);
        }
    }
}
