//! Answers written by a connection's reader task itself: the accepting side's quick path.
//!
//! Contract:
//! * A connection accepted with a [`Quick`] handler offers it the first frame of each new
//!   stream when that frame is a `Lookup`, on the reader task, before any stream is opened.
//!   The handler must not wait. It answers by feeding frames to the [`Reply`] it is given
//!   and returning true; the frames then go to the connection's writer as a stream's would
//!   (tagged in write order, batched with the others), and no stream is opened at all: no
//!   stream state, no hand-over to the server loop, no task. Later frames of its id (a
//!   `Credit`, a `Reset`) are dropped, as after an exchange's end.
//! * It declines (returns false) whatever it cannot answer at once, and must then not have
//!   counted or changed anything: the stream opens with its first frame and goes to the
//!   server loop as without a quick path. A reply that cannot take the writer's room for
//!   its answer now ([`Reply::room_for`] false) declines too, so a quick answer never
//!   makes the reader wait and never passes the writer's window.
//! * A quick answer's body (`Data`, a `WireHit`'s inline body) is bounded by the stream
//!   window, as a fresh stream's credit is.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::batch::{Batch, KEEP_MIN};
use super::{frame_err, Link, Out, PeerError, STREAM_WINDOW, WRITE_WINDOW};
use crate::cluster::frame::Frame;

/// The quick path's handler: true when it answered the frame through the reply.
pub type Quick = Arc<dyn Fn(&Frame, &mut Reply<'_>) -> bool + Send + Sync>;

/// One quick answer being encoded for stream `id` of a connection.
pub struct Reply<'a> {
    link: &'a Link,
    id: u32,
    pending: Batch,
    /// The writer's room for the answer, taken by [`Reply::room_for`].
    permit: Option<OwnedSemaphorePermit>,
    /// `Data` payload bytes fed so far.
    data: usize,
}

impl<'a> Reply<'a> {
    pub(super) fn new(link: &'a Link, id: u32) -> Reply<'a> {
        Reply {
            link,
            id,
            pending: Batch::default(),
            permit: None,
            data: 0,
        }
    }

    /// Queues the answer for the writer (it was fed within the room taken for it).
    pub(super) fn send(self) {
        if !self.pending.is_empty() {
            let _ = self.link.out.send(Out::Frames(self.pending, self.permit));
        }
    }

    /// Takes the writer's room for an answer whose head frame is about `head` bytes and whose
    /// body is `body` bytes (inline or in one `Data` frame); false when it is taken now (then
    /// decline).
    pub fn room_for(&mut self, head: usize, body: usize) -> bool {
        // What the writer's window counts (frame heads and `End` included), and what is
        // copied into the buffer rather than kept (`Batch::encode_data`).
        let want = (head + body + 64).clamp(1, WRITE_WINDOW);
        let Ok(permit) = Arc::clone(&self.link.room).try_acquire_many_owned(want as u32) else {
            return false;
        };
        self.permit = Some(permit);
        let copied = if body < KEEP_MIN { body } else { 0 };
        self.pending.bytes_mut().reserve(head + copied + 64);
        true
    }

    /// Adds one frame to the answer; false (nothing added) for a body (`Data`, an inline
    /// one) beyond a fresh stream's window.
    pub fn feed_now(&mut self, f: &Frame) -> Result<bool, PeerError> {
        let limits = &self.link.limits;
        let data = super::body_len(f);
        if self.data + data > STREAM_WINDOW {
            return Ok(false);
        }
        self.data += data;
        self.pending
            .encode(limits, self.id, f)
            .map(|()| true)
            .map_err(|e| frame_err(self.link.addr, e))
    }

    /// The other side's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.link.addr
    }
}

impl Link {
    /// Offers stream `id`'s first frame to the quick path: None when it was answered (and
    /// queued for the writer), else the frame back, for the stream to open with.
    pub(super) fn answer_now(&self, id: u32, f: Frame) -> Option<Frame> {
        let Some(quick) = &self.quick else {
            return Some(f);
        };
        let mut reply = Reply::new(self, id);
        if !quick(&f, &mut reply) {
            return Some(f);
        }
        reply.send();
        None
    }
}
