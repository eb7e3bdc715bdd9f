use super::*;
use bytes::Bytes;

fn data(n: usize) -> Frame {
    Frame::Data(Bytes::from(vec![7u8; n]))
}

/// A `WireHit` whose wire head and inline body are slices of `buf` (`n` bytes of body).
pub(super) fn wire_hit_in(buf: &Bytes, n: usize) -> Frame {
    Frame::WireHit(Box::new(crate::cluster::frame::WireHit {
        wire: buf.slice(0..20),
        meta: crate::cluster::frame::WireMeta {
            request_time_ms: 1,
            response_time_ms: 2,
            corrected_initial_age_ms: 0,
            freshness_lifetime_ms: 1_000,
            no_cache: false,
            must_revalidate: false,
            stale_while_revalidate_ms: None,
            stale_if_error_ms: None,
        },
        body_len: n as u64,
        cache_status: Bytes::from_static(b"b; hit"),
        body: Some(buf.slice(20..20 + n)),
    }))
}

#[test]
fn frames_go_to_their_streams_queues() {
    let mut r = Routes::new(false, STREAM_WINDOW);
    let one = r.open(1);
    let two = r.open(2);
    assert!(matches!(r.route(2, Frame::Count(2), false), Route::Queued));
    assert!(matches!(r.route(1, Frame::Count(1), false), Route::Queued));
    assert!(matches!(r.route(2, Frame::Wait, false), Route::Queued));
    assert_eq!(one.try_next(), Some(Frame::Count(1)));
    assert_eq!(two.try_next(), Some(Frame::Count(2)));
    assert_eq!(two.try_next(), Some(Frame::Wait));
    assert_eq!(one.try_next(), None);
    // The dialling side never gets streams it did not open.
    assert!(matches!(r.route(3, Frame::Count(3), false), Route::Dropped));
}

#[test]
fn the_accepting_side_opens_a_stream_for_each_new_id_only() {
    let mut r = Routes::new(true, STREAM_WINDOW);
    let Route::New(one) = r.route(1, Frame::BanAll, false) else {
        panic!("stream 1 not opened");
    };
    assert_eq!(one.try_next(), Some(Frame::BanAll));
    assert!(matches!(r.route(1, Frame::Count(2), false), Route::Queued));
    assert!(matches!(r.route(5, lookup("k"), false), Route::New(..)));
    // Ids need not come in order (the dialling side's tasks queue their first frames in the
    // order they run): a lower id not open yet opens too.
    assert!(matches!(r.route(4, Frame::BanAll, false), Route::New(..)));
    // Only a frame that starts an exchange opens a stream.
    assert!(matches!(r.route(7, Frame::Count(7), false), Route::Dropped));
    assert!(matches!(
        r.route(7, Frame::Data(bytes::Bytes::from_static(b"x")), false),
        Route::Dropped
    ));
    assert!(matches!(r.route(7, Frame::Reset, false), Route::Dropped));
    // Stream 1 ended here: its late frames are dropped.
    assert!(r.close(1));
    assert!(matches!(r.route(1, Frame::Count(3), false), Route::Dropped));
    assert!(matches!(
        r.route(1, Frame::Credit(3), false),
        Route::Dropped
    ));
    assert!(matches!(r.route(6, Frame::BanAll, false), Route::New(..)));
}

#[test]
fn the_accepting_side_refuses_streams_beyond_the_cap() {
    let mut r = Routes::new(true, STREAM_WINDOW);
    for id in 1..=MAX_STREAMS as u32 {
        assert!(
            matches!(r.route(id, Frame::BanAll, false), Route::New(..)),
            "{id}"
        );
    }
    let over = MAX_STREAMS as u32 + 1;
    assert!(matches!(
        r.route(over, Frame::BanAll, false),
        Route::Refused
    ));
    // Once one ends, a new one is taken again.
    assert!(r.close(1));
    assert!(matches!(
        r.route(over + 1, Frame::BanAll, false),
        Route::New(..)
    ));
}

#[test]
fn a_reset_closes_its_stream_and_only_it() {
    let mut r = Routes::new(false, STREAM_WINDOW);
    let s1 = r.open(1);
    let s2 = r.open(2);
    assert!(matches!(r.route(1, Frame::Count(1), false), Route::Queued));
    assert!(matches!(r.route(1, Frame::Reset, false), Route::Reset));
    assert!(s1.closed.load(Ordering::Acquire));
    assert!(!s2.closed.load(Ordering::Acquire));
    // What was queued before the reset is still read, then the queue ends.
    assert_eq!(s1.try_next(), Some(Frame::Count(1)));
    assert_eq!(s1.try_next(), None);
    assert!(s1.inbox.lock().ended);
    assert!(!s2.inbox.lock().ended);
    assert!(matches!(r.route(1, Frame::Reset, false), Route::Dropped));
    assert!(matches!(r.route(2, Frame::Count(2), false), Route::Queued));
}

#[test]
fn data_beyond_the_credit_given_resets_the_stream_without_touching_the_others() {
    let window = 10_000;
    let mut r = Routes::new(false, window);
    let state = r.open(1);
    let other = r.open(2);
    // Two chunks fit the credit; the third goes beyond it.
    assert!(matches!(r.route(1, data(4000), false), Route::Queued));
    assert!(matches!(r.route(1, data(4000), false), Route::Queued));
    assert_eq!(state.unacked.load(Ordering::Acquire), 8000);
    assert!(matches!(r.route(1, data(4000), false), Route::Overflow));
    assert!(state.closed.load(Ordering::Acquire));
    assert!(matches!(r.route(1, data(10), false), Route::Dropped));
    // The other stream goes on.
    assert!(matches!(r.route(2, data(9000), false), Route::Queued));
    assert!(other.try_next().is_some());
    // The reset stream's reader gets what was queued, then the end.
    assert!(state.try_next().is_some());
    assert!(state.try_next().is_some());
    assert!(state.try_next().is_none());
    assert!(state.inbox.lock().ended);
}

/// Where a `Data` payload's bytes live once queued: the read buffer's (`true`) or a copy.
fn queued_in(state: &StreamState, buf: &Bytes) -> Vec<bool> {
    let inbox = state.inbox.lock();
    let r = buf.as_ptr_range();
    inbox
        .frames
        .iter()
        .map(|f| match f {
            Frame::Data(b) => r.contains(&b.as_ptr()),
            _ => false,
        })
        .collect()
}

#[test]
fn payloads_in_the_read_buffer_are_copied_out_unless_the_stream_takes_them_shared() {
    let buf = Bytes::from(vec![1u8; 3 * COPY_MAX]);
    let mid = buf.slice(0..SHARE_MIN);
    let large = buf.slice(SHARE_MIN..SHARE_MIN + COPY_MAX);
    let mut r = Routes::new(false, STREAM_WINDOW);
    let plain = r.open(1);
    let sharing = r.open(2);
    sharing.share(true);
    for id in [1, 2] {
        assert!(matches!(
            r.route(id, Frame::Data(mid.clone()), true),
            Route::Queued
        ));
        assert!(matches!(
            r.route(id, Frame::Data(large.clone()), true),
            Route::Queued
        ));
        // Copied out of a run of small frames already: not copied again.
        assert!(matches!(
            r.route(id, Frame::Data(mid.clone()), false),
            Route::Queued
        ));
    }
    // Under COPY_MAX a plain stream's payload is copied; a large one shares the buffer, as
    // before; a sharing stream keeps both in it.
    assert_eq!(queued_in(&plain, &buf), [false, true, true]);
    assert_eq!(queued_in(&sharing, &buf), [true, true, true]);
    // Turned off, what is queued under COPY_MAX is copied out.
    sharing.share(false);
    assert_eq!(queued_in(&sharing, &buf), [false, true, false]);
    assert!(matches!(
        r.route(2, Frame::Data(mid.clone()), true),
        Route::Queued
    ));
    assert_eq!(queued_in(&sharing, &buf), [false, true, false, false]);
}

#[test]
fn frames_other_than_data_count_their_size_against_the_window() {
    let window = 100_000;
    let buf = Bytes::from(vec![3u8; 40_000]);
    let mut r = Routes::new(false, window);
    let s = r.open(1);
    // Inline bodies of 30,000 bytes: three fit the window, the fourth resets the stream
    // (at 256 bytes a frame, hundreds would have been held).
    for _ in 0..3 {
        assert!(matches!(
            r.route(1, wire_hit_in(&buf, 30_000), false),
            Route::Queued
        ));
    }
    assert!(matches!(
        r.route(1, wire_hit_in(&buf, 30_000), false),
        Route::Overflow
    ));
    assert!(s.closed.load(Ordering::Acquire));
    // What a frame counted is given back when its reader takes it.
    let t = r.open(2);
    for _ in 0..3 {
        assert!(matches!(
            r.route(2, wire_hit_in(&buf, 30_000), false),
            Route::Queued
        ));
        assert!(t.try_next().is_some());
    }
    assert_eq!(t.control.load(Ordering::Acquire), 0);
    // Small control frames still count CONTROL_COST each.
    for _ in 0..window / CONTROL_COST {
        assert!(matches!(r.route(2, Frame::Wait, false), Route::Queued));
    }
    assert!(matches!(r.route(2, Frame::Wait, false), Route::Overflow));
}

#[test]
fn an_inline_body_in_the_read_buffer_is_copied_out_unless_the_stream_shares() {
    let buf = Bytes::from(vec![4u8; 2 * COPY_MAX]);
    let mut r = Routes::new(false, STREAM_WINDOW);
    let plain = r.open(1);
    let sharing = r.open(2);
    sharing.share(true);
    for id in [1, 2] {
        for n in [SHARE_MIN, COPY_MAX] {
            assert!(matches!(
                r.route(id, wire_hit_in(&buf, n), true),
                Route::Queued
            ));
        }
    }
    let within = |state: &StreamState| -> Vec<(bool, bool)> {
        let range = buf.as_ptr_range();
        let inbox = state.inbox.lock();
        inbox
            .frames
            .iter()
            .map(|f| match f {
                Frame::WireHit(h) => (
                    range.contains(&h.wire.as_ptr()),
                    range.contains(&h.body.as_ref().expect("a body").as_ptr()),
                ),
                _ => panic!("not a WireHit"),
            })
            .collect()
    };
    // Under COPY_MAX (head and body together) a plain stream's are copied; a larger one
    // shares the buffer; a sharing stream keeps both in it.
    assert_eq!(within(&plain), [(false, false), (true, true)]);
    assert_eq!(within(&sharing), [(true, true), (true, true)]);
    sharing.share(false);
    assert_eq!(within(&sharing), [(false, false), (true, true)]);
}

#[test]
fn the_reader_grants_credit_back_in_batches_as_it_takes_data() {
    let window = 10_000;
    let mut r = Routes::new(false, window);
    let s = r.open(1);
    for _ in 0..10 {
        assert!(matches!(r.route(1, data(1000), false), Route::Queued));
    }
    // The whole window is in flight.
    assert_eq!(s.unacked.load(Ordering::Acquire), window);
    // Frames other than Data take no credit.
    assert!(matches!(r.route(1, Frame::Count(1), false), Route::Queued));
    assert_eq!(s.unacked.load(Ordering::Acquire), window);
    // A quarter of the window (2500) taken is granted back at once, not before.
    assert_eq!(s.try_next_granting(), Some((data(1000), 0)));
    assert_eq!(s.try_next_granting(), Some((data(1000), 0)));
    assert_eq!(s.try_next_granting(), Some((data(1000), 3000)));
    assert_eq!(s.unacked.load(Ordering::Acquire), 7000);
    // The peer may send what was granted again, and not a byte more.
    for _ in 0..3 {
        assert!(matches!(r.route(1, data(1000), false), Route::Queued));
    }
    assert!(matches!(r.route(1, data(1), false), Route::Overflow));
}

#[test]
fn a_sender_takes_credit_and_gets_it_back_from_the_other_side() {
    let window = 10_000;
    let mut r = Routes::new(false, window);
    let s = r.open(1);
    assert_eq!(s.credit_left(), window);
    assert!(s.try_credit(6000));
    assert!(!s.try_credit(5000));
    assert_eq!(s.credit_left(), 4000);
    assert!(matches!(
        r.route(1, Frame::Credit(1000), false),
        Route::Credited
    ));
    assert_eq!(s.credit_left(), 5000);
    assert!(s.try_credit(5000));
    assert!(!s.try_credit(1));
    // A Credit never opens a stream, nor queues anything.
    assert!(matches!(
        r.route(7, Frame::Credit(1), false),
        Route::Dropped
    ));
    assert_eq!(s.try_next(), None);
    let mut acc = Routes::new(true, window);
    assert!(matches!(
        acc.route(1, Frame::Credit(1), false),
        Route::Dropped
    ));
    assert!(matches!(acc.route(1, Frame::BanAll, false), Route::New(..)));
}

#[tokio::test]
async fn a_sender_waiting_for_credit_wakes_on_credit_and_fails_on_a_reset() {
    let mut r = Routes::new(false, 100);
    let s = r.open(1);
    assert!(s.try_credit(100));
    let waiting = {
        let s = Arc::clone(&s);
        tokio::spawn(async move { std::future::poll_fn(|cx| s.poll_credit(cx, 50)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiting.is_finished());
    assert!(matches!(
        r.route(1, Frame::Credit(30), false),
        Route::Credited
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiting.is_finished());
    assert!(matches!(
        r.route(1, Frame::Credit(30), false),
        Route::Credited
    ));
    assert_eq!(waiting.await.expect("task"), Ok(()));
    assert_eq!(s.credit_left(), 10);
    let waiting = {
        let s = Arc::clone(&s);
        tokio::spawn(async move { std::future::poll_fn(|cx| s.poll_credit(cx, 50)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(matches!(r.route(1, Frame::Reset, false), Route::Reset));
    assert_eq!(waiting.await.expect("task"), Err(()));
}

#[test]
fn frames_sealed_in_one_batch_decode_in_order_with_their_streams() {
    let secret = b"a secret";
    let (cn, sn) = ([1u8; 16], [2u8; 16]);
    let mut tx = PeerCodec::default();
    tx.enable_auth(secret, &cn, &sn, true);
    let mut rx = PeerCodec::default();
    rx.enable_auth(secret, &cn, &sn, false);
    let plain = PeerCodec::default();
    let frames = [
        (3, Frame::Count(1)),
        (1, data(1000)),
        (3, Frame::End { complete: true }),
        (2, Frame::Wait),
        (1, Frame::Reset),
    ];
    // Each sender encodes on its own; the writer seals what is queued into one buffer.
    let mut wire = BytesMut::new();
    for (id, f) in &frames {
        let mut one = BytesMut::new();
        plain.encode_untagged(*id, f, &mut one).expect("encodes");
        tx.seal(&one, &mut wire);
    }
    let mut got = Vec::new();
    while let Some(f) = rx.decode_on(&mut wire).expect("decodes") {
        got.push(f);
    }
    assert!(wire.is_empty());
    assert_eq!(got, frames.to_vec());
    // Two frames sealed from one buffer are the same bytes as sealed one by one.
    let mut tx2 = PeerCodec::default();
    tx2.enable_auth(secret, &cn, &sn, true);
    let mut both = BytesMut::new();
    plain
        .encode_untagged(1, &Frame::Count(9), &mut both)
        .expect("encodes");
    plain
        .encode_untagged(2, &data(5), &mut both)
        .expect("encodes");
    let mut sealed = BytesMut::new();
    tx2.seal(&both, &mut sealed);
    let mut tx3 = PeerCodec::default();
    tx3.enable_auth(secret, &cn, &sn, true);
    let mut each = BytesMut::new();
    tx3.encode_on(1, &Frame::Count(9), &mut each)
        .expect("encodes");
    tx3.encode_on(2, &data(5), &mut each).expect("encodes");
    assert_eq!(sealed, each);
}

/// A dialled and an accepted link on loopback.
async fn pair(secret: Option<&[u8]>) -> (Arc<Link>, Arc<Link>, mpsc::UnboundedReceiver<PeerConn>) {
    pair_with(secret, None).await
}

/// [`pair`], the accepting side with the quick path `quick`.
async fn pair_with(
    secret: Option<&[u8]>,
    quick: Option<Quick>,
) -> (Arc<Link>, Arc<Link>, mpsc::UnboundedReceiver<PeerConn>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let secret_owned = secret.map(<[u8]>::to_vec);
    let server = tokio::spawn(async move {
        let (s, peer) = listener.accept().await.expect("accept");
        Link::accept(
            s,
            peer,
            "b",
            secret_owned.as_deref(),
            Limits::default(),
            quick,
        )
        .await
        .expect("handshake")
    });
    let a = Link::dial(addr, "a", secret, Limits::default(), Duration::from_secs(2))
        .await
        .expect("dial");
    let (b, incoming) = server.await.expect("server");
    assert_eq!(&*a.node, "b");
    assert_eq!(&*b.node, "a");
    (a, b, incoming)
}

/// A first frame that starts an exchange, carrying `n` (a `Purge` of `/n`).
fn ask(n: u64) -> Frame {
    Frame::Purge {
        url: format!("/{n}"),
    }
}

/// Answers each stream's `ask(n)` with `Count(n + 1)` after n ms.
fn echo(mut incoming: mpsc::UnboundedReceiver<PeerConn>) {
    tokio::spawn(async move {
        while let Some(mut c) = incoming.recv().await {
            tokio::spawn(async move {
                if let Ok(Some(Frame::Purge { url })) = c.next_request().await {
                    let n: u64 = url[1..].parse().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(n)).await;
                    if c.send(Frame::Count(n + 1)).await.is_ok() {
                        c.end();
                    }
                }
            });
        }
    });
}

#[tokio::test]
async fn many_exchanges_share_one_connection_and_answer_out_of_order() {
    let (a, _b, incoming) = pair(Some(b"secret")).await;
    echo(incoming);
    let mut asks = Vec::new();
    for n in (0..64u64).rev() {
        let mut c = a.open_stream().expect("stream");
        asks.push(tokio::spawn(async move {
            c.send(ask(n)).await.expect("send");
            let f = c.recv(Duration::from_secs(5)).await.expect("answer");
            c.end();
            (n, f)
        }));
    }
    for t in asks {
        let (n, f) = t.await.expect("task");
        assert_eq!(f, Frame::Count(n + 1));
    }
    assert_eq!(a.open_streams(), 0);
    assert!(!a.is_closed());
}

#[tokio::test]
async fn streams_whose_first_frames_come_out_of_order_are_all_answered() {
    // Opened 1, 2, 3, their first frames written 3, 1, 2 (as tasks on several threads may):
    // the owner serves each; none is taken for a closed stream's late frame.
    let (a, _b, incoming) = pair(Some(b"secret")).await;
    echo(incoming);
    let mut c1 = a.open_stream().expect("stream");
    let mut c2 = a.open_stream().expect("stream");
    let mut c3 = a.open_stream().expect("stream");
    c3.send(ask(3)).await.expect("send");
    c1.send(ask(1)).await.expect("send");
    c2.send(ask(2)).await.expect("send");
    for (n, c) in [(1, &mut c1), (2, &mut c2), (3, &mut c3)] {
        assert_eq!(
            c.recv(Duration::from_secs(5)).await.expect("answer"),
            Frame::Count(n + 1)
        );
    }
}

#[tokio::test]
async fn a_timeout_or_a_dropped_stream_leaves_the_connection_open() {
    let (a, b, mut incoming) = pair(None).await;
    let mut c = a.open_stream().expect("stream");
    c.send(ask(1)).await.expect("send");
    let mut server_side = incoming.recv().await.expect("stream at b");
    assert_eq!(
        server_side.next_request().await.expect("first"),
        Some(ask(1))
    );
    // No answer: the requester's wait runs out, and the stream is still usable.
    let e = c
        .recv(Duration::from_millis(50))
        .await
        .expect_err("timeout");
    assert!(matches!(e, PeerError::Timeout(..)), "{e}");
    server_side.send(Frame::Wait).await.expect("send");
    assert_eq!(
        c.recv(Duration::from_secs(2)).await.expect("late"),
        Frame::Wait
    );
    // The requester gives up mid-exchange: the owner's end is reset.
    drop(c);
    let e = server_side
        .recv(Duration::from_secs(2))
        .await
        .expect_err("reset");
    assert!(matches!(e, PeerError::Closed(_)), "{e}");
    assert!(server_side.send(Frame::Count(2)).await.is_err());
    drop(server_side);
    // Both connections still carry new streams.
    echo(incoming);
    let mut c = a.open_stream().expect("stream");
    c.send(ask(5)).await.expect("send");
    assert_eq!(
        c.recv(Duration::from_secs(2)).await.expect("answer"),
        Frame::Count(6)
    );
    assert!(!a.is_closed() && !b.is_closed());
}

#[tokio::test]
async fn a_broken_connection_fails_every_stream_on_it() {
    let (a, b, mut incoming) = pair(Some(b"k")).await;
    let mut streams = Vec::new();
    for n in 0..3 {
        let mut c = a.open_stream().expect("stream");
        c.send(ask(n)).await.expect("send");
        streams.push(c);
    }
    for _ in 0..3 {
        incoming.recv().await.expect("stream at b");
    }
    b.close();
    for mut c in streams {
        let e = c.recv(Duration::from_secs(2)).await.expect_err("closed");
        assert!(matches!(e, PeerError::Closed(_)), "{e}");
    }
    for _ in 0..100 {
        if a.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(a.is_closed());
    assert!(a.open_stream().is_none());
}

/// Opens two streams from `a`, each with a first `Count`: (a's slow, a's fast, b's slow,
/// b's fast).
async fn two_streams(
    a: &Arc<Link>,
    incoming: &mut mpsc::UnboundedReceiver<PeerConn>,
) -> (PeerConn, PeerConn, PeerConn, PeerConn) {
    let mut slow = a.open_stream().expect("stream");
    let mut fast = a.open_stream().expect("stream");
    slow.send(ask(0)).await.expect("send");
    fast.send(ask(0)).await.expect("send");
    let mut b_slow = incoming.recv().await.expect("slow at b");
    let mut b_fast = incoming.recv().await.expect("fast at b");
    assert_eq!(b_slow.next_request().await.expect("first"), Some(ask(0)));
    assert_eq!(b_fast.next_request().await.expect("first"), Some(ask(0)));
    (slow, fast, b_slow, b_fast)
}

/// One exchange on the fast stream.
async fn round_trip(b_fast: &mut PeerConn, fast: &mut PeerConn, n: u64) {
    b_fast.send(Frame::Count(n)).await.expect("fast send");
    let f = fast
        .recv(Duration::from_secs(2))
        .await
        .expect("fast answer");
    assert_eq!(f, Frame::Count(n));
}

#[tokio::test]
async fn a_slow_reader_paces_its_sender_and_the_other_streams_go_on() {
    let (a, _b, mut incoming) = pair(Some(b"k")).await;
    let (mut slow, mut fast, mut b_slow, mut b_fast) = two_streams(&a, &mut incoming).await;
    const TOTAL: usize = 20 * 1024 * 1024;
    const CHUNK: usize = 256 * 1024;
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![3u8; CHUNK]);
            let mut n = 0;
            while n < TOTAL {
                // A head and its chunks fed together, as the owner sends a stored object.
                for _ in 0..4 {
                    b_slow.feed(Frame::Data(chunk.clone())).await?;
                    n += CHUNK;
                    sent.store(n, Ordering::Release);
                }
                b_slow.flush().await?;
            }
            b_slow.send(Frame::End { complete: true }).await?;
            b_slow.end();
            Ok::<_, PeerError>(())
        })
    };
    let mut got = 0;
    let mut reads = 0u64;
    loop {
        match slow.recv(Duration::from_secs(5)).await.expect("slow frame") {
            Frame::Data(b) => got += b.len(),
            Frame::End { complete: true } => break,
            other => panic!("unexpected {other:?}"),
        }
        // The sender never has more than the window in flight beyond what was read.
        assert!(
            sent.load(Ordering::Acquire) <= got + STREAM_WINDOW,
            "sent {} read {got}",
            sent.load(Ordering::Acquire)
        );
        reads += 1;
        if reads == 8 {
            // The sender is held back (the reader is far from done), and another stream on
            // the connection is not.
            assert!(!sender.is_finished());
            for n in 1..=20 {
                round_trip(&mut b_fast, &mut fast, n).await;
            }
            assert!(!sender.is_finished());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(got, TOTAL);
    sender
        .await
        .expect("task")
        .expect("sent whole, never reset");
    round_trip(&mut b_fast, &mut fast, 99).await;
    slow.end();
    assert!(!a.is_closed());
}

#[tokio::test]
async fn a_sender_waiting_for_credit_is_bounded_by_its_timeout_and_woken_by_a_reset() {
    let (a, _b, mut incoming) = pair(None).await;
    let (slow, mut fast, mut b_slow, mut b_fast) = two_streams(&a, &mut incoming).await;
    let chunk = Bytes::from(vec![1u8; 512 * 1024]);
    for _ in 0..STREAM_WINDOW / chunk.len() {
        b_slow
            .send(Frame::Data(chunk.clone()))
            .await
            .expect("within credit");
    }
    // The credit is used up and nobody reads: the caller's timeout ends the wait.
    let waited = tokio::time::timeout(
        Duration::from_millis(100),
        b_slow.send(Frame::Data(chunk.clone())),
    )
    .await;
    assert!(waited.is_err(), "sent beyond the credit");
    round_trip(&mut b_fast, &mut fast, 1).await;
    // The reader gives up: the waiting sender fails at once.
    let blocked = tokio::spawn(async move {
        let r = b_slow.send(Frame::Data(chunk)).await;
        (r, b_slow)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!blocked.is_finished());
    drop(slow);
    let (r, _) = tokio::time::timeout(Duration::from_secs(2), blocked)
        .await
        .expect("woken")
        .expect("task");
    assert!(matches!(r, Err(PeerError::Closed(_))), "{r:?}");
    round_trip(&mut b_fast, &mut fast, 2).await;
}

#[tokio::test]
async fn a_peer_that_ignores_its_credit_gets_the_stream_reset_and_the_others_go_on() {
    let (a, b, mut incoming) = pair(None).await;
    let (mut slow, mut fast, mut b_slow, mut b_fast) = two_streams(&a, &mut incoming).await;
    let before = stream_resets();
    // b's side writes Data past its credit, as a peer that ignores flow control would.
    let chunk = Bytes::from(vec![1u8; 512 * 1024]);
    let mut sent = 0;
    while sent <= STREAM_WINDOW {
        let mut buf = BytesMut::new();
        b.limits
            .encode_untagged(b_slow.id, &Frame::Data(chunk.clone()), &mut buf)
            .expect("encodes");
        b.out.send(Out::Frames(buf.into(), None)).expect("queued");
        sent += chunk.len();
        round_trip(&mut b_fast, &mut fast, sent as u64).await;
    }
    // `slow` reads what was queued within the credit, then sees its stream closed.
    let mut got = 0;
    let e = loop {
        match slow.recv(Duration::from_secs(2)).await {
            Ok(Frame::Data(b)) => got += b.len(),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(e, PeerError::Closed(_)), "{e}");
    assert_eq!(got, STREAM_WINDOW);
    assert!(stream_resets() > before);
    // b's end is reset too.
    let e = b_slow
        .recv(Duration::from_secs(2))
        .await
        .expect_err("closed at b");
    assert!(matches!(e, PeerError::Closed(_)), "{e}");
    b_fast
        .send(Frame::End { complete: true })
        .await
        .expect("fast");
    assert_eq!(
        fast.recv(Duration::from_secs(2)).await.expect("fast end"),
        Frame::End { complete: true }
    );
    assert!(!a.is_closed() && !b.is_closed());
}

#[test]
fn a_small_run_is_the_whole_frames_in_front_up_to_the_copy_bound() {
    let codec = PeerCodec::default();
    let mut wire = BytesMut::new();
    for f in [data(1000), Frame::End { complete: true }, data(1000)] {
        codec.encode_untagged(1, &f, &mut wire).expect("encodes");
    }
    let whole = wire.len();
    let first = codec.wire_len(&wire).expect("a length");
    assert_eq!(first, 4 + 4 + 1 + 1000);
    assert_eq!(small_run(&codec, &wire), whole, "three whole frames");
    assert_eq!(
        small_run(&codec, &wire[..whole - 1]),
        whole - first,
        "the last one cut"
    );
    assert_eq!(small_run(&codec, &wire[..3]), 0, "no length yet");
    // Frames that together pass COPY_MAX: the run stops before the one that would.
    let mut big = BytesMut::new();
    let n = SHARE_MIN - 100;
    let fit = COPY_MAX / (n + 9);
    for _ in 0..fit + 1 {
        codec
            .encode_untagged(1, &data(n), &mut big)
            .expect("encodes");
    }
    let one = codec.wire_len(&big).expect("a length");
    assert_eq!(small_run(&codec, &big), fit * one);
    // A frame from SHARE_MIN up ends the run (it is split off the buffer).
    let mut mixed = BytesMut::new();
    for f in [data(100), data(SHARE_MIN), data(100)] {
        codec.encode_untagged(1, &f, &mut mixed).expect("encodes");
    }
    assert_eq!(small_run(&codec, &mixed), 4 + 4 + 1 + 100);
    assert_eq!(small_run(&codec, &mixed[4 + 4 + 1 + 100..]), 0);
    // Any other frame of that size is copied in the run, as before.
    let mut heads = BytesMut::new();
    let long = Frame::Error {
        code: 1,
        message: "x".repeat(SHARE_MIN),
    };
    for f in [data(100), long, data(100)] {
        codec.encode_untagged(1, &f, &mut heads).expect("encodes");
    }
    assert_eq!(small_run(&codec, &heads), heads.len());
    // A `WireHit` from SHARE_MIN up (an inline body) is split off as a `Data` frame is; a
    // shorter one is copied in the run.
    let body = Bytes::from(vec![1u8; SHARE_MIN + 40]);
    let mut hits = BytesMut::new();
    for f in [
        data(100),
        wire_hit_in(&body, 100),
        wire_hit_in(&body, SHARE_MIN),
    ] {
        codec.encode_untagged(1, &f, &mut hits).expect("encodes");
    }
    let two = codec.wire_len(&hits).expect("a length");
    let two = two + codec.wire_len(&hits[two..]).expect("a length");
    assert_eq!(small_run(&codec, &hits), two);
    assert_eq!(small_run(&codec, &hits[two..]), 0);
    // A first frame over the bound is not copied (it is split off the buffer).
    let mut huge = BytesMut::new();
    codec
        .encode_untagged(1, &data(COPY_MAX), &mut huge)
        .expect("encodes");
    assert_eq!(small_run(&codec, &huge), 0);
    // A hostile length is not trusted.
    assert_eq!(
        small_run(&codec, &[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1]),
        0
    );
}

#[test]
fn a_connections_read_room_grows_when_reads_fill_it_and_shrinks_when_they_do_not() {
    const K: usize = 1024;
    // Reads that fill what they are given double the room, up to the most.
    let mut room = READ_ROOM;
    let mut seen = vec![room];
    for _ in 0..4 {
        room = next_room(room, room, room);
        seen.push(room);
    }
    assert_eq!(seen, [64 * K, 128 * K, 256 * K, 256 * K, 256 * K]);
    // A read that took much but not all keeps it; one under an eighth halves it, down to
    // where reads start.
    assert_eq!(next_room(256 * K, 100 * K, 256 * K), 256 * K);
    assert_eq!(next_room(256 * K, 32 * K, 256 * K), 256 * K);
    assert_eq!(next_room(256 * K, 32 * K - 1, 256 * K), 128 * K);
    let mut room = READ_ROOM_MAX;
    for _ in 0..4 {
        room = next_room(room, 100, room);
    }
    assert_eq!(room, READ_ROOM);
    // Filled is judged against what the read was offered (a buffer with frames begun in it
    // offers less than its room).
    assert_eq!(next_room(64 * K, 20 * K, 20 * K), 128 * K);
}

fn lookup(key: &str) -> Frame {
    Frame::Lookup(crate::cluster::frame::Lookup {
        key: key.into(),
        method: crate::cluster::frame::LookupMethod::Get,
        uri: "/".into(),
        headers: Vec::new(),
        hops: 1,
        flags: 0,
    })
}

#[tokio::test]
async fn the_quick_path_answers_a_first_lookup_without_opening_a_stream() {
    // Answers a `Lookup` of "quick" with a `Count` and 6 KiB of `Data` (kept, not copied);
    // declines anything else.
    let quick: Quick = Arc::new(|f, reply| {
        let Frame::Lookup(l) = f else { return false };
        if l.key != "quick" || !reply.room_for(64, 6000) {
            return false;
        }
        reply.feed_now(&Frame::Count(7)).expect("count");
        assert!(reply.feed_now(&data(6000)).expect("data"));
        true
    });
    let (a, b, mut incoming) = pair_with(Some(b"secret"), Some(quick)).await;
    for round in 0..3 {
        let mut c = a.open_stream().expect("stream");
        c.send(lookup("quick")).await.expect("send");
        assert_eq!(
            c.recv(Duration::from_secs(5)).await.expect("answer"),
            Frame::Count(7)
        );
        assert_eq!(
            c.recv(Duration::from_secs(5)).await.expect("data"),
            data(6000)
        );
        // Frames of the answered stream after its answer (a grant, a reset) are dropped.
        if round == 1 {
            a.send_control(c.id, &Frame::Credit(100));
        }
        drop(c);
    }
    // Declined: the stream opens with its lookup and goes to the server loop.
    let mut c = a.open_stream().expect("stream");
    c.send(lookup("other")).await.expect("send");
    let mut at_b = tokio::time::timeout(Duration::from_secs(5), incoming.recv())
        .await
        .expect("in time")
        .expect("a stream at b");
    assert_eq!(
        at_b.next_request().await.expect("read"),
        Some(lookup("other"))
    );
    assert_eq!(b.open_streams(), 1, "only the declined stream opened");
    at_b.send(Frame::Count(1)).await.expect("answer");
    at_b.end();
    assert_eq!(
        c.recv(Duration::from_secs(5)).await.expect("answer"),
        Frame::Count(1)
    );
    c.end();
    // No other stream reached the server loop, and the connection is whole.
    assert!(incoming.try_recv().is_err());
    assert!(!a.is_closed() && !b.is_closed());
    assert!(b.routes.lock().streams.is_empty(), "nothing left open at b");
}

#[test]
fn with_a_quick_path_a_first_lookup_waits_for_the_reader_and_later_frames_of_its_id_are_dropped() {
    let mut r = Routes {
        quick: true,
        ..Routes::new(true, STREAM_WINDOW)
    };
    // A first `Lookup` is handed back, nothing opened: later frames of its id are dropped,
    // as a closed stream's. A lookup of a lower id is a new exchange (ids may come out of
    // order): handed back too.
    assert!(matches!(r.route(3, lookup("k"), false), Route::First(_)));
    assert!(r.streams.is_empty());
    assert!(matches!(r.route(3, Frame::Count(1), false), Route::Dropped));
    assert!(matches!(r.route(2, lookup("k"), false), Route::First(_)));
    assert!(matches!(
        r.route(3, Frame::Credit(10), false),
        Route::Dropped
    ));
    // Declined by the reader: opened with it, as without a quick path.
    assert!(matches!(r.route(4, lookup("k"), false), Route::First(_)));
    let Route::New(state) = r.open_with(4, lookup("k"), false) else {
        panic!("opened")
    };
    assert_eq!(state.try_next(), Some(lookup("k")));
    // Any other frame that starts an exchange opens its stream at once; one that does not
    // opens nothing.
    assert!(matches!(r.route(5, Frame::BanAll, false), Route::New(_)));
    assert!(matches!(r.route(6, Frame::Count(1), false), Route::Dropped));
    // Without a quick path a first `Lookup` opens too.
    let mut plain = Routes::new(true, STREAM_WINDOW);
    assert!(matches!(plain.route(1, lookup("k"), false), Route::New(_)));
}
