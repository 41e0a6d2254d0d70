//! Shared test helpers.
#![allow(dead_code)]

use swm_gpu::{AdapterPreference, GpuContext, GpuError};

/// A context on the best adapter. Without any adapter: fails under `CI=true` (CI installs
/// Mesa's lavapipe), otherwise prints why and returns `None` so the test is skipped.
pub fn ctx() -> Option<GpuContext> {
    match GpuContext::new(AdapterPreference::Auto) {
        Ok(c) => Some(c),
        Err(e @ GpuError::NoAdapter { .. }) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but no GPU adapter: {e} (install mesa-vulkan-drivers)");
            }
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A small deterministic generator for test inputs (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in [lo, hi).
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
}
