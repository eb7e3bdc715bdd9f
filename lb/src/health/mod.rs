//! Health of backends: the rise/fall state machine and passive ejection (`state`: pure, a
//! function of its inputs and `now`), and the active probes that feed it (`probe`: TCP connect
//! or HTTP `GET`, each bounded by its timeout, and the loop that runs them on an interval).
//! The cache node's origin pools and the director's services both use them.

pub mod probe;
pub mod state;

pub use probe::{probe, ProbeKind};
pub use state::{CheckOutcome, Health, ServerState};
