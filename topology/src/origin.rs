//! The test origin.
