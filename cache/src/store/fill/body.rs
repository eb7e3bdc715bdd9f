//! A [`FillReader`] is an `http_body::Body` (Data = `Bytes`, Error = [`FollowError`]), so the
//! caller hands it to hyper as a response body: frames are the fill's chunks, zero-copy, in
//! order from byte 0; the body ends when the fill finishes and fails with the fill's error.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use super::{FillReader, FollowError};

impl<H> Body for FillReader<H> {
    type Data = Bytes;
    type Error = FollowError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, FollowError>>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|next| next.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.shared.is_end_of_body(self.id)
    }
}
