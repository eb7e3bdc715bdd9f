//! One module per subcommand.
pub mod check;
pub mod client;
pub mod ctl;
pub mod director;
pub mod node;
pub mod sim;
