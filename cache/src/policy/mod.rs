//! RFC 9111 policy: pure functions of request, response and `now`.
