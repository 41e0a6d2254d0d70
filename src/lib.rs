//! swm
