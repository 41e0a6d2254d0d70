//! Procedurally generated Seoul-like districts.
