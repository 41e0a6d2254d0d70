//! Fixed-time signal plans (placeholder: being written).
