//! Philox on the GPU: the same integers as the CPU, bit for bit.

mod common;

use swm_core::rng::{key_from_seed, philox4x32};
use swm_gpu::philox::{PhiloxQuery, philox_on_gpu};
use swm_model::sampling::keyed_u32x4;

#[test]
fn known_answers_match_random123() {
    let Some(ctx) = common::ctx() else { return };
    // Random123's kat_vectors are for raw keys; seeds are the key's two words.
    let seed = |k: [u32; 2]| u64::from(k[0]) | (u64::from(k[1]) << 32);
    let q = [
        PhiloxQuery::Raw { counter: [0; 4], seed: 0 },
        PhiloxQuery::Raw { counter: [u32::MAX; 4], seed: u64::MAX },
        PhiloxQuery::Raw {
            counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            seed: seed([0xa4093822, 0x299f31d0]),
        },
    ];
    let got = philox_on_gpu(&ctx, &q).unwrap();
    assert_eq!(got[0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(got[1], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(got[2], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
}

/// 200,000 random raw counters and keys and 200,000 keyed draws (random seeds, scenarios,
/// agents, steps, samples incl. ones above 24 bits, both streams): identical integers.
#[test]
fn many_counters_are_bit_identical_to_the_cpu() {
    let Some(mut ctx) = common::ctx() else { return };
    // 6,250 workgroups over a grid 1,000 wide: the 2-D linearisation is exercised too.
    ctx.set_max_workgroups_per_dim(1000);
    let mut rng = common::Rng(0x5eed);
    let mut q = Vec::new();
    for i in 0..200_000u32 {
        // Edge words now and then: 0, all ones, high bits set.
        let word = |r: &mut common::Rng| match r.next_u32() % 8 {
            0 => 0,
            1 => u32::MAX,
            2 => 0x8000_0000 | (r.next_u32() & 0xFFFF),
            _ => r.next_u32(),
        };
        let counter = [word(&mut rng), word(&mut rng), word(&mut rng), word(&mut rng)];
        q.push(PhiloxQuery::Raw { counter, seed: rng.next_u64() });
        q.push(PhiloxQuery::Keyed {
            seed: rng.next_u64(),
            scenario: rng.next_u64(),
            agent: rng.next_u32() % 4096,
            step: rng.next_u32() % 1000,
            sample: if i.is_multiple_of(5) { rng.next_u32() } else { rng.next_u32() % 1024 },
            stream: rng.next_u32() % 2,
        });
    }
    let got = philox_on_gpu(&ctx, &q).unwrap();
    assert_eq!(got.len(), q.len());
    let mut bad = 0;
    for (qi, g) in q.iter().zip(&got) {
        let want = match *qi {
            PhiloxQuery::Raw { counter, seed } => philox4x32(counter, key_from_seed(seed)),
            PhiloxQuery::Keyed { seed, scenario, agent, step, sample, stream } => {
                keyed_u32x4(seed, scenario, agent, step, sample, stream)
            }
        };
        if *g != want {
            bad += 1;
            if bad < 5 {
                eprintln!("{qi:?}: GPU {g:08x?}, CPU {want:08x?}");
            }
        }
    }
    assert_eq!(bad, 0, "{bad} of {} draws differ", q.len());
}
