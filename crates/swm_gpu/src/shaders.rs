//! The WGSL sources (top-level `shaders/`), and the modules kernels are built from.
//!
//! WGSL has no `#include`: a kernel's module is its library files followed by its own file,
//! concatenated at compile time ([`MODULES`]). Library files (`philox.wgsl`,
//! `kinematics.wgsl`) hold only functions, constants and structs.

/// Philox4x32-10, keyed draws, `unit_f32` (library).
pub const PHILOX: &str = include_str!("../../../shaders/philox.wgsl");
/// Token kinematics and the agent state struct (library).
pub const KINEMATICS: &str = include_str!("../../../shaders/kinematics.wgsl");

/// Check kernel of the Philox library.
pub const PHILOX_TEST: &str =
    concat!(include_str!("../../../shaders/philox.wgsl"), "\n", include_str!("../../../shaders/philox_test.wgsl"));
/// Tiled batched linear layer (bias and ReLU fused).
pub const LINEAR: &str = include_str!("../../../shaders/linear.wgsl");
/// The fused neighbour MLP with masked max-pool.
pub const NBR_MLP: &str = include_str!("../../../shaders/nbr_mlp.wgsl");
/// Sampling fused with the kinematic step.
pub const SAMPLE: &str = concat!(
    include_str!("../../../shaders/philox.wgsl"),
    "\n",
    include_str!("../../../shaders/kinematics.wgsl"),
    "\n",
    include_str!("../../../shaders/token_rule.wgsl"),
    "\n",
    include_str!("../../../shaders/sample.wgsl")
);
/// Agent features from the history ring and the packed map.
pub const FEATURES: &str = concat!(
    include_str!("../../../shaders/kinematics.wgsl"),
    "\n",
    include_str!("../../../shaders/feature_types.wgsl"),
    "\n",
    include_str!("../../../shaders/map.wgsl"),
    "\n",
    include_str!("../../../shaders/features.wgsl")
);
/// The rollout feasibility masks around the sampled tokens.
pub const MASK: &str = concat!(
    include_str!("../../../shaders/philox.wgsl"),
    "\n",
    include_str!("../../../shaders/kinematics.wgsl"),
    "\n",
    include_str!("../../../shaders/feature_types.wgsl"),
    "\n",
    include_str!("../../../shaders/map.wgsl"),
    "\n",
    include_str!("../../../shaders/token_rule.wgsl"),
    "\n",
    include_str!("../../../shaders/mask.wgsl")
);
/// The end of a step: new states into the history ring and the record buffer.
pub const COMMIT: &str = concat!(
    include_str!("../../../shaders/kinematics.wgsl"),
    "\n",
    include_str!("../../../shaders/feature_types.wgsl"),
    "\n",
    include_str!("../../../shaders/commit.wgsl")
);

/// Every module a pipeline is built from, with the `shaders/` files it is made of.
pub const MODULES: &[(&str, &str, &[&str])] = &[
    ("philox", PHILOX, &["philox.wgsl"]),
    ("kinematics", KINEMATICS, &["kinematics.wgsl"]),
    ("philox_test", PHILOX_TEST, &["philox.wgsl", "philox_test.wgsl"]),
    ("linear", LINEAR, &["linear.wgsl"]),
    ("nbr_mlp", NBR_MLP, &["nbr_mlp.wgsl"]),
    ("sample", SAMPLE, &["philox.wgsl", "kinematics.wgsl", "token_rule.wgsl", "sample.wgsl"]),
    ("features", FEATURES, &["kinematics.wgsl", "feature_types.wgsl", "map.wgsl", "features.wgsl"]),
    (
        "mask",
        MASK,
        &["philox.wgsl", "kinematics.wgsl", "feature_types.wgsl", "map.wgsl", "token_rule.wgsl", "mask.wgsl"],
    ),
    ("commit", COMMIT, &["kinematics.wgsl", "feature_types.wgsl", "commit.wgsl"]),
];
