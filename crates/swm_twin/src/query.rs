//! Spatial queries.
/// Spatial index over a twin.
pub struct TwinIndex;
