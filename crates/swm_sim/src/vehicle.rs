//! Vehicles (placeholder: being written).
