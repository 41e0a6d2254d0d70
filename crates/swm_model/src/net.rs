//! The network, its weight file, and the pure-Rust CPU forward pass.
//!
//! # Architecture
//! ```text
//! neighbours [8 × 14] ─► Linear 14→64, ReLU ─► Linear 64→64, ReLU ─► × mask ─► max over slots ─┐
//! ego [90] ──────────────────────────────────────────────────────────────────────────────── concat [154]
//!   ─► Linear 154→256, ReLU ─► Linear 256→256, ReLU ─┬─► head_vehicle    Linear 256→143 (logits)
//!                                                    └─► head_pedestrian Linear 256→81  (logits)
//! ```
//! Each agent uses the head of its class. Parameters: 168,160 with the default sizes (H = 64, T = 256).
//!
//! **FLOPs per agent step** (multiply-adds × 2, biases and ReLUs left out):
//! neighbour MLP `8 × 2 × (14·64 + 64·64)` = 79,872; trunk `2 × (154·256 + 256·256)` =
//! 209,920; head `2 × 256·143` = 73,216 (vehicles) or `2 × 256·81` = 41,472 (pedestrians).
//! About **0.36 MFLOP** (363,008) per vehicle step ([`Network::flops_per_agent_step`]), with
//! all eight neighbour slots present. The forward pass here runs the neighbour MLP on the
//! present slots only (the masked max-pool reads nothing else), so an agent with `p`
//! neighbours costs `(8 − p) × 9,984` FLOPs less ([`Network::flops_per_neighbour_slot`]).
//!
//! # File layout `swm-model/1` (safetensors)
//! Tensors, all `F32`, row-major, PyTorch `nn.Linear` convention (`weight` is
//! `[out, in]`, `y = x · weightᵀ + bias`):
//!
//! | name | shape |
//! |---|---|
//! | `nbr.0.weight`, `nbr.0.bias` | `[H, 14]`, `[H]` |
//! | `nbr.1.weight`, `nbr.1.bias` | `[H, H]`, `[H]` |
//! | `trunk.0.weight`, `trunk.0.bias` | `[T, 90 + H]`, `[T]` |
//! | `trunk.1.weight`, `trunk.1.bias` | `[T, T]`, `[T]` |
//! | `head_vehicle.weight`, `head_vehicle.bias` | `[143, T]`, `[143]` |
//! | `head_pedestrian.weight`, `head_pedestrian.bias` | `[81, T]`, `[81]` |
//!
//! Metadata (strings): `format` = `swm-model/1`, `feature_layout` (= 1), `feature_dim`,
//! `ego_dim`, `neighbours`, `neighbour_dim`, `nbr_hidden` (H), `trunk_hidden` (T),
//! `vehicle_vocab`, `pedestrian_vocab`, `dt_s`, `vehicle_accel_mps2` and
//! `vehicle_yaw_rate_radps` and `pedestrian_dv_mps` (JSON arrays: the token grids), and
//! `training` (JSON, free-form: data, seed, metrics). A reader must check `format`,
//! `feature_layout` and the vocabularies before use.
//!
//! # The CPU forward pass
//! Batched over the agents of a step, single-threaded per call (rollouts parallelise over
//! scenarios and samples). The matrix products ([`crate::matmul`]) run a kernel on weights
//! packed once per network where the CPU has AVX-512F or AVX2 with FMA, and the `gemm`
//! crate on the weights in place elsewhere; all give the same bits.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::ModelError;
use crate::features::{EGO_DIM, FEATURE_DIM, FEATURE_LAYOUT_VERSION, NEIGHBOUR_DIM, NEIGHBOURS};
use crate::matmul::{PackedDense, linear, linear_rows, packed_kernel_available};
use crate::tokens::{
    AgentClass, PEDESTRIAN_DV_MPS, PEDESTRIAN_TOKENS, VEHICLE_ACCEL_MPS2, VEHICLE_TOKENS, VEHICLE_YAW_RATE_RADPS,
};

/// The `format` metadata value of model files.
pub const MODEL_FORMAT: &str = "swm-model/1";

/// Layer sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetConfig {
    pub nbr_hidden: usize,
    pub trunk_hidden: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { nbr_hidden: 64, trunk_hidden: 256 }
    }
}

/// The widest hidden layer [`NetConfig::check`] allows: an 8192-wide trunk holds 67 M
/// weights in its middle layer alone (268 MB of f32, and training's AdamW keeps two more
/// copies).
pub const MAX_HIDDEN_WIDTH: usize = 8192;

impl NetConfig {
    /// Whether both widths are 1 to [`MAX_HIDDEN_WIDTH`]: the widths [`crate::train::train`]
    /// makes a network of.
    pub fn check(&self) -> Result<(), ModelError> {
        for (name, width) in [("nbr_hidden", self.nbr_hidden), ("trunk_hidden", self.trunk_hidden)] {
            if !(1..=MAX_HIDDEN_WIDTH).contains(&width) {
                return Err(ModelError::Train(format!("{name} {width}: a width must be 1 to {MAX_HIDDEN_WIDTH}")));
            }
        }
        Ok(())
    }

    /// `(name, [out, in])` of every linear layer, in file order.
    pub fn layers(&self) -> Vec<(&'static str, [usize; 2])> {
        let (h, t) = (self.nbr_hidden, self.trunk_hidden);
        vec![
            ("nbr.0", [h, NEIGHBOUR_DIM]),
            ("nbr.1", [h, h]),
            ("trunk.0", [t, EGO_DIM + h]),
            ("trunk.1", [t, t]),
            ("head_vehicle", [VEHICLE_TOKENS, t]),
            ("head_pedestrian", [PEDESTRIAN_TOKENS, t]),
        ]
    }

    pub fn parameters(&self) -> usize {
        self.layers().iter().map(|(_, [o, i])| o * i + o).sum()
    }
}

/// One linear layer, PyTorch layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[out, in]` row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
}

/// The network's weights and metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub config: NetConfig,
    /// In [`NetConfig::layers`] order ([`Network::layers`]; changed only through
    /// [`Network::layers_mut`], which drops the packed copy).
    layers: Vec<Dense>,
    /// Free-form training metadata (JSON).
    pub training: String,
    packed: Packed,
}

/// The layers packed for the CPU kernel ([`crate::matmul`]), made on the first forward pass
/// of a CPU that runs it. A cache of `layers`: it takes no part in equality.
#[derive(Clone, Default)]
struct Packed(OnceLock<Vec<PackedDense>>);

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "Packed(made)" } else { "Packed(not made)" })
    }
}

impl PartialEq for Packed {
    fn eq(&self, _: &Packed) -> bool {
        true
    }
}

/// Scratch buffers of the forward pass (reused between calls).
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    nbr_in: Vec<f32>,
    /// Per feature row, where its present neighbours' rows start in `nbr_in` (one more
    /// entry at the end).
    nbr_start: Vec<usize>,
    h1: Vec<f32>,
    h2: Vec<f32>,
    x: Vec<f32>,
    t1: Vec<f32>,
    t2: Vec<f32>,
    /// The rows of one head's class, and where their logits go.
    rows_of: Vec<usize>,
    at: Vec<usize>,
}

impl Network {
    /// A network from its layers, in [`NetConfig::layers`] order.
    pub fn from_layers(config: NetConfig, layers: Vec<Dense>, training: String) -> Network {
        Network { config, layers, training, packed: Packed::default() }
    }

    /// The layers, in [`NetConfig::layers`] order.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// The layers to change in place (forgets the packed copy the CPU kernel made).
    pub fn layers_mut(&mut self) -> &mut Vec<Dense> {
        self.packed = Packed::default();
        &mut self.layers
    }

    /// The layers packed for the CPU kernel, or `None` where the CPU has no such kernel.
    fn packed(&self) -> Option<&[PackedDense]> {
        packed_kernel_available()
            .then(|| self.packed.0.get_or_init(|| self.layers.iter().map(PackedDense::new).collect()).as_slice())
    }

    /// A network with deterministic small random weights (Kaiming-uniform-like from a
    /// Philox stream), for tests and as the training start.
    pub fn init(config: NetConfig, seed: u64) -> Network {
        let mut rng = swm_core::rng::CounterRng::new(seed, 0x4E45_5400);
        let layers = config
            .layers()
            .iter()
            .map(|(_, [o, i])| {
                let bound = (1.0 / *i as f64).sqrt();
                let weight = (0..o * i).map(|_| rng.range_f64(-bound, bound) as f32).collect();
                let bias = (0..*o).map(|_| rng.range_f64(-bound, bound) as f32).collect();
                Dense { weight, bias, n_in: *i, n_out: *o }
            })
            .collect();
        Network::from_layers(config, layers, "{}".to_string())
    }

    pub fn parameters(&self) -> usize {
        self.config.parameters()
    }

    /// FLOPs of the neighbour MLP on one neighbour slot (2 per multiply-add). The forward
    /// pass runs it on the present neighbours only ([`Network::trunk`]): an agent step with
    /// `p` of the [`NEIGHBOURS`] slots present does `NEIGHBOURS - p` times this fewer FLOPs
    /// than [`Network::flops_per_agent_step`].
    pub fn flops_per_neighbour_slot(&self) -> usize {
        let h = self.config.nbr_hidden;
        2 * (NEIGHBOUR_DIM * h + h * h)
    }

    /// FLOPs (2 per multiply-add) of one agent step of `class` with every neighbour slot
    /// present (see the module docs): the model's size, an upper bound of the work done.
    pub fn flops_per_agent_step(&self, class: AgentClass) -> usize {
        let (h, t) = (self.config.nbr_hidden, self.config.trunk_hidden);
        let head = match class {
            AgentClass::Vehicle => VEHICLE_TOKENS,
            AgentClass::Pedestrian => PEDESTRIAN_TOKENS,
        };
        2 * (NEIGHBOURS * (NEIGHBOUR_DIM * h + h * h) + (EGO_DIM + h) * t + t * t + t * head)
    }

    /// The trunk output `[batch, T]` of a batch of feature rows `[batch, FEATURE_DIM]`. The
    /// neighbour MLP runs on the present slots only (all but those whose presence flag is 0
    /// or below), which are all the masked max-pool reads.
    pub fn trunk<'s>(&self, features: &[f32], scratch: &'s mut Scratch) -> &'s [f32] {
        let b = features.len() / FEATURE_DIM;
        let h = self.config.nbr_hidden;
        let s = scratch;
        let packed = self.packed();
        let p = |i: usize| packed.map(|p| &p[i]);
        // The neighbour MLP runs on the present neighbours' slots only: the pool leaves the
        // empty ones out, and a row's outputs never depend on the batch it is in
        // (`crate::matmul`), so the pooled values are those of running every slot.
        s.nbr_in.clear();
        s.nbr_start.clear();
        for row in features.chunks_exact(FEATURE_DIM) {
            s.nbr_start.push(s.nbr_in.len() / NEIGHBOUR_DIM);
            for slot in row[EGO_DIM..].chunks_exact(NEIGHBOUR_DIM) {
                // The pool's test: a slot whose presence flag is 0 or below is empty.
                if slot[NEIGHBOUR_DIM - 1] <= 0.0 {
                    continue;
                }
                s.nbr_in.extend_from_slice(slot);
            }
        }
        let present = s.nbr_in.len() / NEIGHBOUR_DIM;
        s.nbr_start.push(present);
        if present > 0 {
            linear(&s.nbr_in, present, &self.layers[0], p(0), &mut s.h1, true);
            linear(&s.h1, present, &self.layers[1], p(1), &mut s.h2, true);
        }
        s.x.clear();
        for (r, row) in features.chunks_exact(FEATURE_DIM).enumerate() {
            s.x.extend_from_slice(&row[..EGO_DIM]);
            let start = s.x.len();
            s.x.resize(start + h, 0.0);
            for hk in s.h2[s.nbr_start[r] * h..s.nbr_start[r + 1] * h].chunks_exact(h) {
                for (x, v) in s.x[start..].iter_mut().zip(hk) {
                    *x = x.max(*v);
                }
            }
        }
        linear(&s.x, b, &self.layers[2], p(2), &mut s.t1, true);
        linear(&s.t1, b, &self.layers[3], p(3), &mut s.t2, true);
        &s.t2
    }

    /// Logits of every row for the head of `classes[row]`: row `r` gets
    /// `classes[r].vocab()` logits, appended to `out` in row order (so `out` is ragged:
    /// use [`logit_offsets`]).
    pub fn forward(&self, features: &[f32], classes: &[AgentClass], scratch: &mut Scratch, out: &mut Vec<f32>) {
        let b = features.len() / FEATURE_DIM;
        assert_eq!(b, classes.len(), "one class per feature row");
        let t = self.config.trunk_hidden;
        self.trunk(features, scratch);
        let t2 = std::mem::take(&mut scratch.t2);
        let offsets = logit_offsets(classes);
        out.clear();
        out.resize(offsets.last().copied().unwrap_or(0), 0.0);
        // Each head reads its class's rows of the trunk where they are and writes their
        // logits where the ragged output holds them.
        for (class, head) in [(AgentClass::Vehicle, 4), (AgentClass::Pedestrian, 5)] {
            scratch.rows_of.clear();
            scratch.rows_of.extend((0..b).filter(|&r| classes[r] == class));
            if scratch.rows_of.is_empty() {
                continue;
            }
            scratch.at.clear();
            scratch.at.extend(scratch.rows_of.iter().map(|&r| offsets[r]));
            let packed = self.packed().map(|p| &p[head]);
            linear_rows(&t2, &scratch.rows_of, &self.layers[head], packed, out, &scratch.at, false);
        }
        debug_assert_eq!(t2.len(), b * t);
        scratch.t2 = t2;
    }

    /// Serialises as a `swm-model/1` safetensors file (module docs).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let names = self.config.layers();
        let mut bytes: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        for ((name, _), l) in names.iter().zip(&self.layers) {
            bytes.push((format!("{name}.weight"), f32_bytes(&l.weight), vec![l.n_out, l.n_in]));
            bytes.push((format!("{name}.bias"), f32_bytes(&l.bias), vec![l.n_out]));
        }
        let views: Vec<(String, TensorView)> = bytes
            .iter()
            .map(|(n, b, shape)| {
                TensorView::new(Dtype::F32, shape.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| ModelError::Layout { tensor: n.clone(), message: e.to_string() })
            })
            .collect::<Result<_, _>>()?;
        let meta = self.metadata();
        safetensors::serialize(views, Some(meta))
            .map_err(|e| ModelError::Layout { tensor: String::new(), message: e.to_string() })
    }

    fn metadata(&self) -> std::collections::HashMap<String, String> {
        let j = |v: &[f64]| serde_json::to_string(v).unwrap_or_default();
        let m: BTreeMap<&str, String> = BTreeMap::from([
            ("format", MODEL_FORMAT.to_string()),
            ("feature_layout", FEATURE_LAYOUT_VERSION.to_string()),
            ("feature_dim", FEATURE_DIM.to_string()),
            ("ego_dim", EGO_DIM.to_string()),
            ("neighbours", NEIGHBOURS.to_string()),
            ("neighbour_dim", NEIGHBOUR_DIM.to_string()),
            ("nbr_hidden", self.config.nbr_hidden.to_string()),
            ("trunk_hidden", self.config.trunk_hidden.to_string()),
            ("vehicle_vocab", VEHICLE_TOKENS.to_string()),
            ("pedestrian_vocab", PEDESTRIAN_TOKENS.to_string()),
            ("dt_s", crate::tokens::DT_S.to_string()),
            ("vehicle_accel_mps2", j(&VEHICLE_ACCEL_MPS2)),
            ("vehicle_yaw_rate_radps", j(&VEHICLE_YAW_RATE_RADPS)),
            ("pedestrian_dv_mps", j(&PEDESTRIAN_DV_MPS)),
            ("training", self.training.clone()),
        ]);
        m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_safetensors()?;
        std::fs::write(path, bytes).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })
    }

    /// Reads a model file, checking its format, layout version, vocabularies, widths and shapes.
    pub fn load(path: &Path) -> Result<Network, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        Network::from_safetensors(&bytes).map_err(|e| match e {
            ModelError::Layout { tensor, message } => ModelError::File { path: path.to_path_buf(), tensor, message },
            other => other,
        })
    }

    /// Parses model bytes (see [`Network::load`]).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Network, ModelError> {
        let bad = |tensor: &str, message: String| ModelError::Layout { tensor: tensor.to_string(), message };
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| bad("", format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| meta.get(k).cloned().ok_or_else(|| bad("", format!("metadata `{k}` missing")));
        let format = get("format")?;
        if format != MODEL_FORMAT {
            return Err(bad("", format!("format {format:?}, expected {MODEL_FORMAT:?}")));
        }
        let num = |k: &str| -> Result<usize, ModelError> {
            get(k)?.parse::<usize>().map_err(|e| bad("", format!("metadata `{k}`: {e}")))
        };
        for (k, want) in [
            ("feature_layout", FEATURE_LAYOUT_VERSION as usize),
            ("feature_dim", FEATURE_DIM),
            ("vehicle_vocab", VEHICLE_TOKENS),
            ("pedestrian_vocab", PEDESTRIAN_TOKENS),
        ] {
            let got = num(k)?;
            if got != want {
                return Err(bad("", format!("metadata `{k}` is {got}, this build needs {want}")));
            }
        }
        let config = NetConfig { nbr_hidden: num("nbr_hidden")?, trunk_hidden: num("trunk_hidden")? };
        config.check().map_err(|e| match e {
            ModelError::Train(m) => bad("", format!("metadata: {m}")),
            other => other,
        })?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad("", e.to_string()))?;
        let mut layers = Vec::new();
        for (name, [o, i]) in config.layers() {
            let read = |t: String, shape: Vec<usize>| -> Result<Vec<f32>, ModelError> {
                let v = st.tensor(&t).map_err(|_| bad(&t, "missing".to_string()))?;
                if v.dtype() != Dtype::F32 {
                    return Err(bad(&t, format!("dtype {:?}, expected F32", v.dtype())));
                }
                if v.shape() != shape.as_slice() {
                    return Err(bad(&t, format!("shape {:?}, expected {:?}", v.shape(), shape)));
                }
                Ok(v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            };
            let weight = read(format!("{name}.weight"), vec![o, i])?;
            let bias = read(format!("{name}.bias"), vec![o])?;
            if let Some(bad_v) = weight.iter().chain(&bias).find(|v| !v.is_finite()) {
                return Err(bad(name, format!("non-finite value {bad_v}")));
            }
            layers.push(Dense { weight, bias, n_in: i, n_out: o });
        }
        Ok(Network::from_layers(config, layers, meta.get("training").cloned().unwrap_or_else(|| "{}".into())))
    }
}

/// Start of every row's logits in [`Network::forward`]'s output, plus the total at the end.
pub fn logit_offsets(classes: &[AgentClass]) -> Vec<usize> {
    let mut v = Vec::with_capacity(classes.len() + 1);
    let mut o = 0;
    v.push(0);
    for c in classes {
        o += c.vocab();
        v.push(o);
    }
    v
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
