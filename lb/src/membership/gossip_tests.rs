//! The gossip task's door, on a real loopback socket: what it drops and counts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;

const SECRET: &[u8] = b"a gossip secret of enough bytes";

async fn node(gossip: &str, secret: Option<&[u8]>) -> Membership {
    let cfg: ClusterSection = toml::from_str(&format!(
        "peer_listen = \"127.0.0.1:1\"\ngossip_listen = \"{gossip}\"\n"
    ))
    .expect("section");
    Membership::start(&cfg, "n1", secret.map(Arc::from))
        .await
        .expect("start")
}

/// A sealed datagram with stamp (`epoch`, `seq`) and `body` after it.
fn datagram(key: Option<&[u8]>, epoch: u64, seq: u64, body: &[u8]) -> Vec<u8> {
    let mut payload = epoch.to_be_bytes().to_vec();
    payload.extend_from_slice(&seq.to_be_bytes());
    payload.extend_from_slice(body);
    seal::seal(key, &payload)
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 2 s: {what}");
}

#[tokio::test]
async fn a_replayed_datagram_is_dropped_and_counted() {
    let m = node("127.0.0.61:47461", Some(SECRET)).await;
    let to: SocketAddr = "127.0.0.61:47461".parse().unwrap();
    let s = tokio::net::UdpSocket::bind("127.0.0.62:0").await.unwrap();
    // Authenticated, fresh, but not gossip: malformed (its stamp is now seen).
    let d = datagram(Some(SECRET), 7, 1, b"not foca");
    s.send_to(&d, to).await.unwrap();
    until("malformed", || m.gossip_malformed() == 1).await;
    // The same bytes again: a replay, dropped before foca.
    s.send_to(&d, to).await.unwrap();
    until("replayed", || m.gossip_replayed() == 1).await;
    // An older epoch: a replay; a newer sequence number in the epoch: fresh (malformed).
    s.send_to(&datagram(Some(SECRET), 6, 9, b"x"), to)
        .await
        .unwrap();
    s.send_to(&datagram(Some(SECRET), 7, 2, b"x"), to)
        .await
        .unwrap();
    until("counted", || {
        m.gossip_replayed() == 2 && m.gossip_malformed() == 2
    })
    .await;
    // Without the key: rejected, not replayed.
    s.send_to(&datagram(None, 8, 1, b"x"), to).await.unwrap();
    until("rejected", || m.gossip_rejected() == 1).await;
    assert_eq!((m.gossip_replayed(), m.gossip_malformed()), (2, 2));
    m.leave().await;
}

#[tokio::test]
async fn without_a_key_there_is_no_replay_check_and_a_short_datagram_is_malformed() {
    let m = node("127.0.0.63:47463", None).await;
    let to: SocketAddr = "127.0.0.63:47463".parse().unwrap();
    let s = tokio::net::UdpSocket::bind("127.0.0.64:0").await.unwrap();
    let d = datagram(None, 7, 1, b"not foca");
    s.send_to(&d, to).await.unwrap();
    s.send_to(&d, to).await.unwrap();
    s.send_to(&[1, 2, 3], to).await.unwrap();
    until("three malformed", || m.gossip_malformed() == 3).await;
    assert_eq!(m.gossip_replayed(), 0);
    m.leave().await;
}

async fn member(id: &str, gossip: &str, seeds: &[&str]) -> Membership {
    let seeds: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
    let cfg: ClusterSection = toml::from_str(&format!(
        "peer_listen = \"127.0.0.1:1\"\ngossip_listen = \"{gossip}\"\nseeds = [{}]\n\
         probe_interval = \"100ms\"\nsuspect_timeout = \"500ms\"\n",
        seeds.join(", ")
    ))
    .expect("section");
    Membership::start(&cfg, id, Some(Arc::from(SECRET)))
        .await
        .expect("start")
}

#[tokio::test]
async fn the_member_list_is_current_until_the_next_change() {
    let a = member("na", "127.0.1.63:47563", &[]).await;
    let before = a.members();
    assert!(a.is_current(&before));
    assert!(
        !a.is_current(&Arc::new(before.as_ref().clone())),
        "by pointer, not value"
    );
    let b = member("nb", "127.0.1.64:47564", &["127.0.1.63:47563"]).await;
    until("a sees b", || a.members().iter().any(|m| m.id == "nb")).await;
    assert!(!a.is_current(&before));
    assert!(a.is_current(&a.members()));
    a.leave().await;
    b.leave().await;
}

#[tokio::test]
async fn a_members_note_reaches_the_others_and_a_newer_one_replaces_it() {
    let a = member("na", "127.0.1.61:47561", &[]).await;
    let b = member("nb", "127.0.1.62:47562", &["127.0.1.61:47561"]).await;
    let mut changes = a.subscribe_notes();
    b.set_note(b"first".to_vec()).expect("small note");
    until("a holds b's first note", || {
        a.notes().get("nb").is_some_and(|n| &*n.data == b"first")
    })
    .await;
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    let first = a.notes()["nb"].clone();
    b.set_note(b"second".to_vec()).expect("small note");
    until("a holds b's second note", || {
        a.notes().get("nb").is_some_and(|n| &*n.data == b"second")
    })
    .await;
    let second = a.notes()["nb"].clone();
    assert_eq!(second.epoch, first.epoch);
    assert!(second.seq > first.seq);
    assert!(changes.has_changed().unwrap());
    // Each holds its own note too; a note over the limit is refused.
    until("b holds its own", || {
        b.notes().get("nb").is_some_and(|n| &*n.data == b"second")
    })
    .await;
    assert!(a.notes().get("na").is_none());
    assert!(b.set_note(vec![0; notes::MAX_NOTE_DATA + 1]).is_err());
    a.leave().await;
    b.leave().await;
}
