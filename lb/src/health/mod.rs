//! Health of backends; the cache node's origin pools and the director's services both use it.
//!
//! * `rise_fall`: the active checks' state machine ([`ServerState`] from [`CheckOutcome`]s:
//!   `Down` after `fall` failures in a row, `Up` after `rise` successes in a row).
//! * `passive`: passive ejection (failed real requests take a server out for a backoff).
//! * `record`: [`Health`], one server's record of both, and whether it takes new requests.
//! * `probe`: the active probes that feed it ([`probe()`]: TCP connect or HTTP `GET`, each
//!   bounded by its timeout, and the loop that runs them on an interval).
//!
//! * `admin`: runtime control ([`admin::Override`]: drain, ready, maint, weight; `strait ctl`).
//!
//! All but `probe` are pure: functions of their inputs and `now`.

pub mod admin;
mod passive;
pub mod probe;
mod record;
mod rise_fall;

pub use probe::{probe, ProbeKind};
pub use record::Health;
pub use rise_fall::{CheckOutcome, ServerState};
