//! Codec tests: round trips, partial input, limits, malformed input, authentication.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::*;

mod mangled;
mod tagged;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn head() -> ObjectHead {
    ObjectHead {
        status: 200,
        headers: vec![
            (b("content-type"), b("text/html")),
            (b("x-a"), b("1")),
            (b("x-a"), b("2")),
        ],
        meta: WireMeta {
            request_time_ms: 1_700_000_000_000,
            response_time_ms: 1_700_000_000_042,
            corrected_initial_age_ms: 3_000,
            freshness_lifetime_ms: 60_000,
            no_cache: false,
            must_revalidate: true,
            stale_while_revalidate_ms: Some(30_000),
            stale_if_error_ms: None,
        },
        vary: vec!["accept-encoding".into()],
        variant_id: b("gzip"),
        has_targeted: true,
        body_len: 5,
        cache_status: "b; hit; ttl=30".into(),
    }
}

/// One frame of every type (two of those with an option or a boolean).
/// A `WireHit` of a 5-byte body, inline or not.
fn wire_hit(body: Option<Bytes>) -> Frame {
    Frame::WireHit(Box::new(WireHit {
        wire: b("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
        meta: head().meta,
        body_len: 5,
        cache_status: b("b; hit; ttl=30"),
        body,
    }))
}

fn samples() -> Vec<Frame> {
    vec![
        Frame::Hello {
            version: VERSION,
            node: "node-a".into(),
            nonce: [7; 16],
        },
        Frame::Lookup(Lookup {
            key: "http://example.com/a".into(),
            method: LookupMethod::Head,
            uri: "/a?x=1".into(),
            headers: vec![
                (b("accept-encoding"), b("gzip")),
                (b("host"), b("example.com")),
            ],
            hops: 1,
            flags: Lookup::MAY_LEASE,
        }),
        Frame::Lookup(Lookup {
            key: "http://example.com/b".into(),
            method: LookupMethod::Get,
            uri: "/b".into(),
            headers: vec![(b("host"), b("example.com"))],
            hops: 1,
            flags: Lookup::WIRE,
        }),
        Frame::Lookup(Lookup {
            key: "http://example.com/c".into(),
            method: LookupMethod::Get,
            uri: "/c".into(),
            headers: vec![(b("range"), b("bytes=0-9"))],
            hops: 1,
            flags: Lookup::RANGE,
        }),
        Frame::Hit(Box::new(head())),
        wire_hit(None),
        wire_hit(Some(b("hello"))),
        Frame::Miss(Miss {
            lease: Some(77),
            cache_status: "b; fwd=miss".into(),
        }),
        Frame::Miss(Miss {
            lease: None,
            cache_status: String::new(),
        }),
        Frame::Push(Box::new(Push {
            key: "http://example.com/a".into(),
            lease: 77,
            head: ObjectHead {
                vary: vec![],
                variant_id: Bytes::new(),
                meta: WireMeta {
                    stale_while_revalidate_ms: None,
                    stale_if_error_ms: Some(1),
                    ..head().meta
                },
                ..head()
            },
        })),
        Frame::Data(b("hello")),
        Frame::Data(Bytes::new()),
        Frame::End { complete: true },
        Frame::End { complete: false },
        Frame::Purge {
            url: "http://example.com/a".into(),
        },
        Frame::Ban {
            prefix: "http://example.com/".into(),
        },
        Frame::BanAll,
        Frame::Count(3),
        Frame::Wait,
        Frame::Credit(0x0102_0304),
        Frame::Error {
            code: 503,
            message: "origin down".into(),
        },
        Frame::Answer(Answer {
            status: 200,
            headers: vec![(b("cache-status"), b("b; hit; fwd=stale; ttl=-3"))],
            body_len: 5,
        }),
        Frame::Answer(Answer {
            status: 502,
            headers: vec![],
            body_len: u64::MAX,
        }),
        Frame::ConfigGet {
            version: 3,
            hash: [0xab; 32],
        },
        Frame::Config {
            version: 3,
            hash: [0xab; 32],
            // Longer than a field may be: a config text is bounded by the frame only.
            text: "#".repeat(DEFAULT_MAX_FIELD + 1),
        },
    ]
}

fn encode_all(codec: &mut PeerCodec, frames: &[Frame]) -> BytesMut {
    let mut buf = BytesMut::new();
    for f in frames {
        codec.encode(f, &mut buf).expect("encodes");
    }
    buf
}

fn decode_all(codec: &mut PeerCodec, buf: &mut BytesMut) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(f) = codec.decode(buf).expect("decodes") {
        out.push(f);
    }
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    out
}

/// The first decode result of `bytes` on a fresh codec.
fn decode_one(bytes: &[u8]) -> Result<Option<Frame>, FrameError> {
    PeerCodec::default().decode(&mut BytesMut::from(bytes))
}

fn err(bytes: &[u8]) -> String {
    match decode_one(bytes) {
        Err(e) => e.to_string(),
        Ok(f) => panic!("decoded {f:?}"),
    }
}

/// A frame of type `ty` with `payload` on stream 0, length computed.
fn raw(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    v.push(ty);
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

const C_NONCE: [u8; 16] = [0x11; 16];
const S_NONCE: [u8; 16] = [0x22; 16];

/// Both ends of one authenticated connection: (client, server).
fn pair(client_secret: &[u8], server_secret: &[u8]) -> (PeerCodec, PeerCodec) {
    let mut c = PeerCodec::default();
    let mut s = PeerCodec::default();
    c.enable_auth(client_secret, &C_NONCE, &S_NONCE, true);
    s.enable_auth(server_secret, &C_NONCE, &S_NONCE, false);
    (c, s)
}

#[test]
fn every_frame_round_trips() {
    let frames = samples();
    let mut codec = PeerCodec::default();
    let mut buf = encode_all(&mut codec, &frames);
    assert_eq!(decode_all(&mut codec, &mut buf), frames);
}

#[test]
fn every_frame_round_trips_authenticated_both_ways() {
    // Hello is sent before authentication starts.
    let frames: Vec<Frame> = samples().into_iter().skip(1).collect();
    let (mut c, mut s) = pair(b"shared", b"shared");
    let mut buf = encode_all(&mut c, &frames);
    assert_eq!(decode_all(&mut s, &mut buf), frames);
    let mut back = encode_all(&mut s, &frames);
    assert_eq!(decode_all(&mut c, &mut back), frames);
    // Each frame grew by exactly the tag.
    let plain = encode_all(&mut PeerCodec::default(), &frames).len();
    let tagged = encode_all(&mut pair(b"x", b"x").0, &frames).len();
    assert_eq!(tagged, plain + frames.len() * crate::cluster::auth::TAG_LEN);
}

#[test]
fn the_wire_layout_is_pinned() {
    let mut buf = BytesMut::new();
    let mut codec = PeerCodec::default();
    codec
        .encode(Frame::End { complete: true }, &mut buf)
        .expect("encodes");
    codec
        .encode_on(
            0x0a0b0c0d,
            &Frame::Miss(Miss {
                lease: Some(0x0102),
                cache_status: "m".into(),
            }),
            &mut buf,
        )
        .expect("encodes");
    codec
        .encode_on(7, &Frame::Reset, &mut buf)
        .expect("encodes");
    codec
        .encode_on(9, &Frame::Credit(0x0004_0000), &mut buf)
        .expect("encodes");
    let want: &[u8] = &[
        0, 0, 0, 2, 7, 0, 0, 0, 0, 1, // End { complete: true } on stream 0
        0, 0, 0, 15, 4, 0x0a, 0x0b, 0x0c, 0x0d, 1, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1,
        b'm', // Miss on stream 0x0a0b0c0d
        0, 0, 0, 1, 16, 0, 0, 0, 7, // Reset of stream 7
        0, 0, 0, 5, 17, 0, 0, 0, 9, 0, 4, 0, 0, // Credit of 256 KiB on stream 9
    ];
    assert_eq!(&buf[..], want);
    let mut codec = PeerCodec::default();
    let frames: Vec<_> = std::iter::from_fn(|| codec.decode_on(&mut buf).expect("decodes"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(frames, [0, 0x0a0b0c0d, 7, 9]);
}

#[test]
fn bytes_fed_one_at_a_time_decode_to_the_same_frames() {
    let frames = samples();
    let whole = encode_all(&mut PeerCodec::default(), &frames);
    let mut codec = PeerCodec::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in whole.iter() {
        buf.put_u8(byte);
        if let Some(f) = codec.decode(&mut buf).expect("decodes") {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
    assert!(codec.decode_eof(&mut buf).expect("clean end").is_none());

    let tagged: Vec<Frame> = frames.into_iter().skip(1).collect();
    let (mut c, mut s) = pair(b"k", b"k");
    let whole = encode_all(&mut c, &tagged);
    let mut got = Vec::new();
    for &byte in whole.iter() {
        buf.put_u8(byte);
        if let Some(f) = s.decode(&mut buf).expect("decodes") {
            got.push(f);
        }
    }
    assert_eq!(got, tagged);
}

#[test]
fn an_over_limit_length_is_refused_from_the_first_five_bytes() {
    let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff, 2][..]);
    let e = PeerCodec::default().decode(&mut buf).expect_err("too long");
    assert_eq!(
        e.to_string(),
        "Lookup frame: 2147483647 bytes over the 262144 limit"
    );
    assert!(buf.capacity() < 1024, "reserved {}", buf.capacity());
    // Data has its own, larger bound.
    let over = (DEFAULT_MAX_DATA_FRAME + 1) as u32;
    let mut data = BytesMut::from(&over.to_be_bytes()[..]);
    data.put_u8(6);
    assert_eq!(
        PeerCodec::default()
            .decode(&mut data)
            .expect_err("too long")
            .to_string(),
        "Data frame: 1048577 bytes over the 1048576 limit"
    );
    assert!(data.capacity() < 1024);
}

#[test]
fn a_frame_within_the_limit_waits_for_its_bytes() {
    let len = DEFAULT_MAX_DATA_FRAME as u32;
    let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
    buf.put_u8(6);
    assert!(PeerCodec::default()
        .decode(&mut buf)
        .expect("waits")
        .is_none());
}

#[test]
fn the_largest_data_chunk_fits_and_one_more_byte_does_not() {
    let mut codec = PeerCodec::default();
    let max = codec.limits().max_data_chunk();
    let mut buf = BytesMut::new();
    let chunk = Bytes::from(vec![9u8; max]);
    codec
        .encode(Frame::Data(chunk.clone()), &mut buf)
        .expect("fits");
    assert_eq!(
        codec.decode(&mut buf).expect("decodes"),
        Some(Frame::Data(chunk))
    );
    let e = codec
        .encode(Frame::Data(Bytes::from(vec![9u8; max + 1])), &mut buf)
        .expect_err("too long");
    assert_eq!(
        e.to_string(),
        "Data frame: 1048577 bytes over the 1048576 limit"
    );
    assert!(buf.is_empty());
}

fn lookup(uri: String, headers: usize) -> Frame {
    Frame::Lookup(Lookup {
        key: "k".into(),
        method: LookupMethod::Get,
        uri,
        headers: (0..headers).map(|_| (b("x"), b("y"))).collect(),
        hops: 0,
        flags: 0,
    })
}

#[test]
fn over_limit_fields_are_refused_on_both_sides() {
    let loose = Limits {
        max_field: 1 << 20,
        max_headers: 1000,
        ..Limits::default()
    };
    let cases = [
        (
            lookup("u".repeat(70_000), 0),
            "Lookup.uri: 70000 bytes over the 65536 limit",
        ),
        (
            lookup("/".into(), 257),
            "Lookup.headers: 257 entries over the 256 limit",
        ),
    ];
    for (frame, want) in cases {
        let mut buf = BytesMut::new();
        PeerCodec::new(loose)
            .encode(&frame, &mut buf)
            .expect("loose limits");
        assert_eq!(err(&buf), want);
        // A codec with the default limits will not send it either, and writes nothing.
        let mut out = BytesMut::from(&b"before"[..]);
        let e = PeerCodec::default()
            .encode(&frame, &mut out)
            .expect_err("refused");
        assert_eq!(e.to_string(), want);
        assert_eq!(&out[..], b"before");
    }
    let long_id = Frame::Hello {
        version: 1,
        node: "n".repeat(256),
        nonce: [0; 16],
    };
    let e = PeerCodec::default()
        .encode(long_id, &mut BytesMut::new())
        .expect_err("long");
    assert_eq!(e.to_string(), "Hello.node: 256 bytes over the 255 limit");
}

#[test]
fn malformed_payloads_are_named() {
    assert_eq!(err(&raw(42, b"")), "frame type 42 unknown");
    assert_eq!(err(&[0, 0, 0, 0, 1]), "frame length 0: no type byte");
    assert_eq!(
        err(&raw(8, &[0, 0, 0, 2, 0xff, 0xfe])),
        "bad UTF-8 in Purge.url"
    );
    assert_eq!(
        err(&raw(7, &[2])),
        "End.complete: 2 is not a boolean (0 or 1)"
    );
    assert_eq!(
        err(&raw(7, &[1, 0])),
        "1 trailing bytes after the End payload"
    );
    assert_eq!(
        err(&raw(10, &[0, 0])),
        "truncated Count frame at Count.count"
    );
    assert_eq!(
        err(&raw(13, &[0, 0, 0, 0, 0, 0, 0, 1, 9, 9])),
        "truncated ConfigGet frame at ConfigGet.hash"
    );
    assert_eq!(
        err(&raw(17, &[0, 0, 1])),
        "truncated Credit frame at Credit.bytes"
    );
    let mut config = vec![0, 0, 0, 0, 0, 0, 0, 1];
    config.extend_from_slice(&[0; 32]);
    config.extend_from_slice(&[0, 0, 0, 1, 0xff]);
    assert_eq!(err(&raw(14, &config)), "bad UTF-8 in Config.text");
    // A Hit whose payload stops early (the length agrees with what is there).
    let mut hit = BytesMut::new();
    PeerCodec::default()
        .encode(Frame::Hit(Box::new(head())), &mut hit)
        .expect("encodes");
    let cut = &hit[9..hit.len() - 3];
    assert_eq!(err(&raw(3, cut)), "truncated Hit frame at Hit.cache_status");
    let mut bad_status = hit[9..].to_vec();
    bad_status[0..2].copy_from_slice(&42u16.to_be_bytes());
    assert_eq!(
        err(&raw(3, &bad_status)),
        "Hit.status: 42 is not a status code (100..=999)"
    );
    let mut l = BytesMut::new();
    PeerCodec::default()
        .encode(lookup("/".into(), 0), &mut l)
        .expect("encodes");
    let mut flags = l[9..].to_vec();
    *flags.last_mut().expect("flags byte") = 16;
    assert_eq!(
        err(&raw(2, &flags)),
        "Lookup.flags: 16 is not a set of known flags (bits 0 to 3)"
    );
}

#[test]
fn an_inline_body_of_another_length_than_announced_is_refused_both_ways() {
    let mut buf = BytesMut::new();
    PeerCodec::default()
        .encode(wire_hit(Some(b("hello"))), &mut buf)
        .expect("encodes");
    let whole = buf[9..].to_vec();
    // One byte short, one byte over: the announced 5 is not what follows the cache status.
    assert_eq!(
        err(&raw(19, &whole[..whole.len() - 1])),
        "object head announced 5 body bytes, got 4"
    );
    let mut over = whole.clone();
    over.push(b'!');
    assert_eq!(
        err(&raw(19, &over)),
        "object head announced 5 body bytes, got 6"
    );
    // Without the body at all it is a head whose body follows as `Data`.
    let head_only = &whole[..whole.len() - 5];
    assert_eq!(
        decode_one(&raw(19, head_only)).unwrap(),
        Some(wire_hit(None))
    );
    // A sender never writes what the receiver would refuse.
    let e = PeerCodec::default()
        .encode(wire_hit(Some(b("hell"))), &mut BytesMut::new())
        .unwrap_err();
    assert_eq!(e.to_string(), "object head announced 5 body bytes, got 4");
}

#[test]
fn a_stream_closed_inside_a_frame_is_an_error() {
    let mut buf = BytesMut::from(&raw(10, &[0, 0, 0, 0, 0, 0, 0, 1])[..7]);
    let e = PeerCodec::default().decode_eof(&mut buf).expect_err("cut");
    assert_eq!(
        e.to_string(),
        "connection closed inside a frame (7 bytes buffered)"
    );
}

#[test]
fn wire_meta_converts_from_and_to_stored_meta() {
    let w = head().meta;
    let stored = crate::policy::StoredMeta::try_from(&w).expect("in range");
    assert_eq!(WireMeta::from(&stored), w);
}

#[test]
fn a_lookup_from_a_raw_head_is_the_same_bytes_as_one_from_its_fields() {
    let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x.example\r\nAccept-Encoding:  gzip \r\nConnection: close\r\nX-Empty:\r\n\r\n";
    let pairs: Vec<(Bytes, Bytes)> = crate::policy::headers::request_fields(raw)
        .map(|(n, v)| (Bytes::copy_from_slice(n), Bytes::copy_from_slice(v)))
        .collect();
    assert_eq!(pairs.len(), 3);
    let owned = Lookup {
        key: "http://x.example/a?b=1".into(),
        method: LookupMethod::Get,
        uri: "/a?b=1".into(),
        headers: pairs,
        hops: 1,
        flags: Lookup::WIRE | Lookup::MAY_LEASE,
    };
    let codec = PeerCodec::default();
    let mut from_frame = BytesMut::new();
    codec
        .encode_untagged(7, &Frame::Lookup(owned.clone()), &mut from_frame)
        .expect("encodes");
    let mut from_raw = BytesMut::new();
    let out = LookupOut {
        headers: Fields::Raw(raw),
        ..owned.out()
    };
    codec
        .encode_lookup(7, &out, &mut from_raw)
        .expect("encodes");
    assert_eq!(from_raw, from_frame);
    // It decodes to the owned lookup.
    let mut rx = PeerCodec::default();
    let got = rx.decode_on(&mut from_raw).expect("decodes");
    assert_eq!(got, Some((7, Frame::Lookup(owned.clone()))));
    // More field lines than the limit: refused, and nothing is left in the buffer.
    let limits = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    let strict = PeerCodec::new(limits);
    let mut buf = BytesMut::from(&b"kept"[..]);
    let err = strict.encode_lookup(7, &out, &mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::TooMany {
                count: 3,
                limit: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(&buf[..], b"kept");
}

#[test]
fn what_a_frame_begun_still_needs_is_bounded_by_its_kind() {
    let codec = PeerCodec::default();
    let data = Frame::Data(Bytes::from(vec![3u8; 5000]));
    let whole = encode_all(&mut PeerCodec::default(), std::slice::from_ref(&data));
    assert_eq!(codec.still_needed(&whole), 0, "whole");
    assert_eq!(codec.still_needed(&whole[..100]), whole.len() - 100);
    assert_eq!(codec.still_needed(&whole[..4]), 0, "no type yet");
    assert_eq!(codec.still_needed(&[]), 0);
    // A length over the kind's limit, or an unknown type: nothing reserved (decode refuses it).
    let limit = Limits::default().max_data_frame;
    let mut over = raw(whole[4], &[]);
    over[..4].copy_from_slice(&((limit + 2) as u32).to_be_bytes());
    assert_eq!(codec.still_needed(&over), 0);
    over[..4].copy_from_slice(&(limit as u32).to_be_bytes());
    assert_eq!(codec.still_needed(&over), 8 + limit - over.len());
    assert_eq!(codec.still_needed(&raw(0xee, b"x")[..6]), 0);
}
