//! Philox4x32-10 and the keyed draws of `swm_model::sampling` on the GPU
//! (`shaders/philox.wgsl`): the same integers as [`swm_core::rng::philox4x32`] and
//! [`swm_model::sampling::keyed_u32x4`], checked bit for bit in the tests.

use crate::context::dispatch;
use crate::layout::PhiloxTestParams;
use crate::{GpuContext, GpuError, shaders};

/// One draw to compute on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhiloxQuery {
    /// `philox4x32(counter, key_from_seed(seed))`.
    Raw { counter: [u32; 4], seed: u64 },
    /// `keyed_u32x4(seed, scenario, agent, step, sample, stream)`.
    Keyed { seed: u64, scenario: u64, agent: u32, step: u32, sample: u32, stream: u32 },
}

/// Computes every query on the GPU (one thread each) and reads the 128-bit results back.
pub fn philox_on_gpu(ctx: &GpuContext, queries: &[PhiloxQuery]) -> Result<Vec<[u32; 4]>, GpuError> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let mut words = Vec::with_capacity(queries.len() * 8);
    for q in queries {
        match *q {
            PhiloxQuery::Raw { counter, seed } => {
                words.extend_from_slice(&counter);
                words.extend_from_slice(&[seed as u32, (seed >> 32) as u32, 0, 0]);
            }
            PhiloxQuery::Keyed { seed, scenario, agent, step, sample, stream } => {
                words.extend_from_slice(&[scenario as u32, agent, step, sample]);
                words.extend_from_slice(&[seed as u32, (seed >> 32) as u32, 1, stream]);
            }
        }
    }
    let pipeline = ctx.pipeline("philox_test", shaders::PHILOX_TEST, "main")?;
    let params = ctx.uniform("philox params", &PhiloxTestParams { rows: queries.len() as u32, ..Default::default() });
    let input = ctx.storage_init("philox inputs", &words)?;
    let output = ctx.storage("philox outputs", queries.len() as u64 * 16)?;
    let bind = ctx.bind(&pipeline, &[&params, &input, &output]);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    dispatch(ctx, &mut enc, &pipeline, &bind, (queries.len() as u32).div_ceil(64));
    ctx.submit_and_wait(enc)?;
    let flat: Vec<u32> = ctx.read(&output, queries.len() * 4)?;
    Ok(flat.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
}
