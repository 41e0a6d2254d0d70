//! The quadrotor drone: 3-D dynamics, altitude limits and clearance above the twin's buildings.
