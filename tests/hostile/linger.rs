//! Lingering close (`cache/src/http/linger.rs`): a node that answers before it read a request's
//! body, and ends the connection, drains what the client still sends (within 2 s and 4 MiB)
//! instead of resetting the connection, so a client writing its body to the end sees its
//! writes go through and reads the answer.

use std::io::{Read, Write};

use crate::support::strict;
use crate::support::IO_TIMEOUT;
use crate::{connect, node, origin};

#[test]
fn a_chunk_size_refused_early_is_answered_and_the_rest_of_the_upload_drained() {
    let origin = origin();
    let node = node(&[origin.addr], "[limits]\nmax_request_body = \"1MiB\"\n");
    let mut raw = b"POST /obj/drained HTTP/1.1\r\nHost: test.example\r\n\
                    Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\n"
        .to_vec();
    raw.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    let mut r = connect(node.addr, IO_TIMEOUT);
    // 2 MiB is more than the sockets hold: the write ends only if the node reads it.
    r.get_mut()
        .write_all(&raw)
        .expect("the whole upload written: the node drained it");
    let resp = strict::read_final(&mut r, false).expect("the answer");
    assert_eq!(resp.status, 413);
    let mut rest = Vec::new();
    r.get_mut()
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    assert_eq!(r.read_to_end(&mut rest).expect("a clean end"), 0);
    assert_eq!(origin.count("/obj/drained"), 0);
}
