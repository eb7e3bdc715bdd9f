//! Authenticated frames: what a tampered, replayed, reordered, misdirected or foreign frame
//! does to the receiving codec.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{encode_all, pair, samples, C_NONCE};
use crate::cluster::frame::{Frame, FrameError, PeerCodec};

#[test]
fn a_flipped_bit_fails_the_tag() {
    let (mut c, _) = pair(b"k", b"k");
    let frame = Frame::Purge {
        url: "http://example.com/".into(),
    };
    let wire = encode_all(&mut c, &[frame]);
    // Every bit after the length and type bytes (payload and tag).
    for bit in 5 * 8..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let (_, mut s) = pair(b"k", b"k");
        match s.decode(&mut bad) {
            Err(FrameError::TagMismatch) => {}
            other => panic!("bit {bit}: {other:?}"),
        }
    }
    // Flips in the length or type never yield a frame either.
    for bit in 0..5 * 8 {
        let mut bad = wire.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let (_, mut s) = pair(b"k", b"k");
        assert!(!matches!(s.decode(&mut bad), Ok(Some(_))), "bit {bit}");
    }
}

#[test]
fn replayed_reordered_and_misdirected_frames_fail_the_tag() {
    let (mut c, mut s) = pair(b"k", b"k");
    let one = encode_all(&mut c, &[Frame::Count(1)]);
    let two = encode_all(&mut c, &[Frame::Count(2)]);
    // Reordered: the second frame first.
    assert!(matches!(
        s.clone().decode(&mut two.clone()),
        Err(FrameError::TagMismatch)
    ));
    assert_eq!(
        s.decode(&mut one.clone()).expect("first"),
        Some(Frame::Count(1))
    );
    // Replayed.
    assert!(matches!(
        s.decode(&mut one.clone()),
        Err(FrameError::TagMismatch)
    ));
    // The client's own frame read back by the client: the server-to-client key differs.
    let (mut c2, _) = pair(b"k", b"k");
    let mine = encode_all(&mut c2, &[Frame::Count(1)]);
    assert!(matches!(
        c2.decode(&mut mine.clone()),
        Err(FrameError::TagMismatch)
    ));
}

#[test]
fn another_secret_or_connection_fails_the_tag() {
    let (mut c, _) = pair(b"k", b"k");
    let wire = encode_all(&mut c, &[Frame::Count(1)]);
    let (_, mut wrong_secret) = pair(b"k", b"K");
    assert!(matches!(
        wrong_secret.decode(&mut wire.clone()),
        Err(FrameError::TagMismatch)
    ));
    let mut other_conn = PeerCodec::default();
    other_conn.enable_auth(b"k", &C_NONCE, &[0x33; 16], false);
    assert!(matches!(
        other_conn.decode(&mut wire.clone()),
        Err(FrameError::TagMismatch)
    ));
    // An untagged peer's frame is read with the next bytes taken as its tag: no frame.
    let plain = encode_all(
        &mut PeerCodec::default(),
        &[Frame::Count(1), Frame::Count(2)],
    );
    let (_, mut s) = pair(b"k", b"k");
    assert!(!matches!(s.decode(&mut plain.clone()), Ok(Some(_))));
}

#[test]
fn hello_is_refused_once_authenticated() {
    let (mut c, mut s) = pair(b"k", b"k");
    let hello = samples().remove(0);
    let e = c.encode(&hello, &mut BytesMut::new()).expect_err("refused");
    assert_eq!(e.to_string(), "Hello after the handshake");
    let mut plain = encode_all(&mut PeerCodec::default(), &[hello]);
    assert!(matches!(
        s.decode(&mut plain),
        Err(FrameError::HelloAfterHandshake)
    ));
}
