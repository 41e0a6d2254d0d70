//! Metrics (placeholder: being written).
