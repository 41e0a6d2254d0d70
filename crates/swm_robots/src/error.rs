//! The one error type of `swm_robots`.

/// Everything that can go wrong in `swm_robots`.
#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    /// A parameter outside its documented range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
}
