//! Pedestrians (placeholder: being written).
