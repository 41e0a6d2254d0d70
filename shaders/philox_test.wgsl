// Check kernel for philox.wgsl (composed after it). Row i of `inputs` is 8 words:
//   mode 0: counter (4 words), seed low, seed high, 0, unused  -> philox4x32(counter, key)
//   mode 1: scenario, agent, step, sample, seed low, seed high, 1, stream -> keyed_u32x4

struct PhiloxTestParams {
    rows: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: PhiloxTestParams;
@group(0) @binding(1) var<storage, read> inputs: array<u32>;
@group(0) @binding(2) var<storage, read_write> outputs: array<vec4<u32>>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wg.x + wg.y * groups.x) * 64u + li;
    if i >= params.rows {
        return;
    }
    let b = i * 8u;
    let key = key_from_seed(inputs[b + 4u], inputs[b + 5u]);
    if inputs[b + 6u] == 0u {
        outputs[i] = philox4x32(vec4<u32>(inputs[b], inputs[b + 1u], inputs[b + 2u], inputs[b + 3u]), key);
    } else {
        outputs[i] = keyed_u32x4(key, inputs[b], inputs[b + 1u], inputs[b + 2u], inputs[b + 3u], inputs[b + 7u]);
    }
}
