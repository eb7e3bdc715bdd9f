//! Storage: the RAM tier and single-flight fills.
