//! Behaviour cloning with candle (CPU).
//!
//! * **Model**: [`CandleNet`], the same network as [`crate::net::Network`] built from candle
//!   `Linear` layers over the same `[out, in]` tensors (so a trained model is saved by
//!   copying the tensors out; the pure-Rust forward pass matches it within 1e-4, tested).
//! * **Loss**: cross-entropy of the recorded (closed-loop tokenised) token under the head
//!   of the agent's class.
//! * **Noise injection**: every batch adds Gaussian noise to the inputs that come from the
//!   agent's own past: speed, acceleration and yaw rate (σ 0.05 in feature units), and the
//!   history block (σ 0.03, i.e. 0.3 m on positions, 0.03 rad on headings). A closed-loop
//!   rollout feeds the model its own slightly-off past; trained on clean history it leans
//!   on it and drifts.
//! * **Optimiser**: AdamW (β 0.9/0.999, weight decay 1e-4), linear warm-up over
//!   [`TrainConfig::warmup_steps`] then cosine decay to 5 % of [`TrainConfig::lr`].
//! * **Validation**: whole episodes held out (every episode whose id is `≡ 7 (mod 8)`,
//!   when there are at least 8 episodes; otherwise every 10th pair): loss and top-1
//!   token accuracy per class after every epoch. The epoch with the lowest validation loss
//!   is the result (a checkpoint callback sees every epoch's network).
//! * **Determinism**: initial weights, shuffling and noise come from `CounterRng` streams of
//!   [`TrainConfig::seed`]; candle's CPU kernels are deterministic for a fixed thread count.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW};
use swm_core::rng::CounterRng;

use crate::ModelError;
use crate::data::Dataset;
use crate::features::{EGO_DIM, FEATURE_DIM, HISTORY_RANGE, NEIGHBOUR_DIM, NEIGHBOURS};
use crate::net::{Dense, NetConfig, Network};
use crate::tokens::AgentClass;

fn ce(e: candle_core::Error) -> ModelError {
    ModelError::Train(e.to_string())
}

/// The network in candle.
pub struct CandleNet {
    pub config: NetConfig,
    vars: Vec<Var>,
    layers: Vec<Linear>,
}

impl CandleNet {
    /// From a network's weights (as trainable variables).
    pub fn from_network(net: &Network) -> Result<CandleNet, ModelError> {
        let dev = Device::Cpu;
        let mut vars = Vec::new();
        let mut layers = Vec::new();
        for l in net.layers() {
            let w =
                Var::from_tensor(&Tensor::from_slice(&l.weight, (l.n_out, l.n_in), &dev).map_err(ce)?).map_err(ce)?;
            let b = Var::from_tensor(&Tensor::from_slice(&l.bias, l.n_out, &dev).map_err(ce)?).map_err(ce)?;
            layers.push(Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())));
            vars.push(w);
            vars.push(b);
        }
        Ok(CandleNet { config: net.config, vars, layers })
    }

    /// The weights back as a [`Network`].
    pub fn to_network(&self, training: String) -> Result<Network, ModelError> {
        let mut layers = Vec::new();
        for pair in self.vars.chunks(2) {
            let w = pair[0].as_tensor();
            let (o, i) = w.dims2().map_err(ce)?;
            let weight = w.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce)?;
            let bias = pair[1].as_tensor().to_vec1::<f32>().map_err(ce)?;
            layers.push(Dense { weight, bias, n_in: i, n_out: o });
        }
        Ok(Network::from_layers(self.config, layers, training))
    }

    /// Logits of both heads for a batch `[B, FEATURE_DIM]`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor), ModelError> {
        let f = || -> candle_core::Result<(Tensor, Tensor)> {
            let b = x.dim(0)?;
            let h = self.config.nbr_hidden;
            let ego = x.narrow(1, 0, EGO_DIM)?;
            let nbr = x.narrow(1, EGO_DIM, NEIGHBOURS * NEIGHBOUR_DIM)?.reshape((b * NEIGHBOURS, NEIGHBOUR_DIM))?;
            let mask = nbr.narrow(1, NEIGHBOUR_DIM - 1, 1)?;
            let e = self.layers[0].forward(&nbr)?.relu()?;
            let e = self.layers[1].forward(&e)?.relu()?;
            let e = e.broadcast_mul(&mask)?.reshape((b, NEIGHBOURS, h))?.max(1)?;
            let z = Tensor::cat(&[&ego, &e], 1)?;
            let z = self.layers[2].forward(&z)?.relu()?;
            let z = self.layers[3].forward(&z)?.relu()?;
            Ok((self.layers[4].forward(&z)?, self.layers[5].forward(&z)?))
        };
        f().map_err(ce)
    }
}

/// Training settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub seed: u64,
    pub net: NetConfig,
    /// Noise σ on speed/acceleration/yaw rate and on the history block (feature units).
    pub noise_kinematics: f32,
    pub noise_history: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 8,
            batch: 512,
            lr: 2e-3,
            weight_decay: 1e-4,
            warmup_steps: 100,
            seed: 1,
            net: NetConfig::default(),
            noise_kinematics: 0.05,
            noise_history: 0.03,
        }
    }
}

/// Statistics of one epoch.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_accuracy_vehicle: f64,
    pub val_accuracy_pedestrian: f64,
    pub lr_end: f64,
}

/// What happened during training (for progress bars and plots).
#[derive(Clone, Debug)]
pub enum TrainEvent {
    Step { step: usize, total: usize, loss: f64 },
    Epoch(EpochStats),
}

/// The result of [`train`].
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub network: Network,
    pub epochs: Vec<EpochStats>,
    pub best_epoch: usize,
    /// Per-step training losses.
    pub step_losses: Vec<f64>,
    pub train_pairs: usize,
    pub val_pairs: usize,
}

/// Splits pairs into (train, validation) indices (module docs).
pub fn split(data: &Dataset) -> (Vec<usize>, Vec<usize>) {
    let mut eps: Vec<u32> = data.episode.clone();
    eps.sort_unstable();
    eps.dedup();
    let by_episode = eps.len() >= 8;
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for i in 0..data.len() {
        let val = if by_episode { data.episode[i] % 8 == 7 } else { i % 10 == 9 };
        if val { va.push(i) } else { tr.push(i) }
    }
    (tr, va)
}

fn gaussian(rng: &mut CounterRng) -> f32 {
    let u1 = rng.next_f64().max(1e-12);
    let u2 = rng.next_f64();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Batch tensors: features (with noise when `rng`), vehicle and pedestrian targets, and
/// vehicle and pedestrian masks.
type Batch = (Tensor, Tensor, Tensor, Tensor, Tensor);

fn batch(data: &Dataset, idx: &[usize], cfg: &TrainConfig, rng: Option<&mut CounterRng>) -> Result<Batch, ModelError> {
    let dev = Device::Cpu;
    let b = idx.len();
    let mut x = Vec::with_capacity(b * FEATURE_DIM);
    for &i in idx {
        x.extend_from_slice(&data.features[i * FEATURE_DIM..(i + 1) * FEATURE_DIM]);
    }
    if let Some(rng) = rng {
        for row in x.chunks_mut(FEATURE_DIM) {
            for v in &mut row[0..3] {
                *v += cfg.noise_kinematics * gaussian(rng);
            }
            for v in &mut row[HISTORY_RANGE] {
                *v += cfg.noise_history * gaussian(rng);
            }
        }
    }
    let tv: Vec<u32> =
        idx.iter().map(|&i| if data.classes[i] == AgentClass::Vehicle { data.tokens[i] as u32 } else { 0 }).collect();
    let tp: Vec<u32> = idx
        .iter()
        .map(|&i| if data.classes[i] == AgentClass::Pedestrian { data.tokens[i] as u32 } else { 0 })
        .collect();
    let mv: Vec<f32> = idx.iter().map(|&i| (data.classes[i] == AgentClass::Vehicle) as u8 as f32).collect();
    let mp: Vec<f32> = mv.iter().map(|m| 1.0 - m).collect();
    let t = |v: Vec<u32>| Tensor::from_vec(v, (b, 1), &dev);
    Ok((
        Tensor::from_vec(x, (b, FEATURE_DIM), &dev).map_err(ce)?,
        t(tv).map_err(ce)?,
        t(tp).map_err(ce)?,
        Tensor::from_vec(mv, (b, 1), &dev).map_err(ce)?,
        Tensor::from_vec(mp, (b, 1), &dev).map_err(ce)?,
    ))
}

/// Mean loss over the batch, and per-row correctness counts (vehicles, pedestrians).
fn loss_and_hits(
    net: &CandleNet,
    x: &Tensor,
    tv: &Tensor,
    tp: &Tensor,
    mv: &Tensor,
    mp: &Tensor,
) -> Result<(Tensor, [f64; 4]), ModelError> {
    let (lv, lp) = net.forward(x)?;
    let f = || -> candle_core::Result<(Tensor, [f64; 4])> {
        let b = x.dim(0)? as f64;
        let nll_v = candle_nn::ops::log_softmax(&lv, 1)?.gather(tv, 1)?.mul(mv)?.sum_all()?;
        let nll_p = candle_nn::ops::log_softmax(&lp, 1)?.gather(tp, 1)?.mul(mp)?.sum_all()?;
        let loss = (nll_v + nll_p)?.neg()?.affine(1.0 / b, 0.0)?;
        let hit = |l: &Tensor, t: &Tensor, m: &Tensor| -> candle_core::Result<(f64, f64)> {
            let am = l.argmax_keepdim(1)?.to_dtype(DType::U32)?;
            let eq = am.eq(t)?.to_dtype(DType::F32)?.mul(m)?.sum_all()?.to_scalar::<f32>()?;
            Ok((eq as f64, m.sum_all()?.to_scalar::<f32>()? as f64))
        };
        let (hv, nv) = hit(&lv, tv, mv)?;
        let (hp, np) = hit(&lp, tp, mp)?;
        Ok((loss, [hv, nv, hp, np]))
    };
    f().map_err(ce)
}

/// Trains a network on `data` (module docs) from the initial weights of `cfg.seed`;
/// `on_event` sees every step and epoch, `checkpoint` every epoch's network.
pub fn train(
    data: &Dataset,
    cfg: &TrainConfig,
    on_event: &mut dyn FnMut(&TrainEvent),
    checkpoint: &mut dyn FnMut(&Network, &EpochStats) -> Result<(), ModelError>,
) -> Result<TrainReport, ModelError> {
    train_from(data, cfg, None, on_event, checkpoint)
}

/// [`train`] from the weights of `start` when given (fine-tuning: its sizes must be
/// `cfg.net`), else from the initial weights of `cfg.seed`. The report's network is the
/// best epoch's, as in [`train`]; `start` itself is not a candidate.
pub fn train_from(
    data: &Dataset,
    cfg: &TrainConfig,
    start: Option<&Network>,
    on_event: &mut dyn FnMut(&TrainEvent),
    checkpoint: &mut dyn FnMut(&Network, &EpochStats) -> Result<(), ModelError>,
) -> Result<TrainReport, ModelError> {
    if data.is_empty() {
        return Err(ModelError::Train("no training pairs".to_string()));
    }
    cfg.net.check()?;
    if let Some(n) = start
        && n.config != cfg.net
    {
        return Err(ModelError::Train(format!(
            "the starting network's sizes {:?} are not the configured {:?}",
            n.config, cfg.net
        )));
    }
    let (train_idx, val_idx) = split(data);
    let init = match start {
        Some(n) => n.clone(),
        None => Network::init(cfg.net, cfg.seed),
    };
    let net = CandleNet::from_network(&init)?;
    let params = ParamsAdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: cfg.weight_decay };
    let mut opt = AdamW::new(net.vars.clone(), params).map_err(ce)?;
    let bsz = cfg.batch.max(1);
    let steps_per_epoch = train_idx.len().div_ceil(bsz);
    let total = (steps_per_epoch * cfg.epochs).max(1);
    let mut rng = CounterRng::new(cfg.seed, 0x5452_4149);
    let mut order = train_idx.clone();
    let mut step = 0usize;
    let mut report = TrainReport {
        network: init.clone(),
        epochs: Vec::new(),
        best_epoch: 0,
        step_losses: Vec::new(),
        train_pairs: train_idx.len(),
        val_pairs: val_idx.len(),
    };
    let mut best = f64::INFINITY;
    let mut lr = cfg.lr;
    for epoch in 1..=cfg.epochs {
        for i in (1..order.len()).rev() {
            let j = rng.range_i64(0, i as i64) as usize;
            order.swap(i, j);
        }
        let (mut sum, mut n) = (0.0, 0usize);
        for chunk in order.chunks(bsz) {
            lr = if step < cfg.warmup_steps {
                cfg.lr * (step + 1) as f64 / cfg.warmup_steps as f64
            } else {
                let t = (step - cfg.warmup_steps) as f64 / (total - cfg.warmup_steps.min(total - 1)).max(1) as f64;
                cfg.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
            };
            opt.set_learning_rate(lr);
            let (x, tv, tp, mv, mp) = batch(data, chunk, cfg, Some(&mut rng))?;
            let (loss, _) = loss_and_hits(&net, &x, &tv, &tp, &mv, &mp)?;
            opt.backward_step(&loss).map_err(ce)?;
            let l = loss.to_scalar::<f32>().map_err(ce)? as f64;
            if !l.is_finite() {
                return Err(ModelError::Train(format!("loss became {l} at step {step}")));
            }
            sum += l * chunk.len() as f64;
            n += chunk.len();
            step += 1;
            report.step_losses.push(l);
            on_event(&TrainEvent::Step { step, total, loss: l });
        }
        // Validation.
        let (mut vl, mut vn, mut hits) = (0.0, 0usize, [0.0f64; 4]);
        for chunk in val_idx.chunks(2048) {
            let (x, tv, tp, mv, mp) = batch(data, chunk, cfg, None)?;
            let (loss, h) = loss_and_hits(&net, &x, &tv, &tp, &mv, &mp)?;
            vl += loss.to_scalar::<f32>().map_err(ce)? as f64 * chunk.len() as f64;
            vn += chunk.len();
            for (a, b) in hits.iter_mut().zip(h) {
                *a += b;
            }
        }
        let stats = EpochStats {
            epoch,
            train_loss: sum / n.max(1) as f64,
            val_loss: if vn > 0 { vl / vn as f64 } else { f64::NAN },
            val_accuracy_vehicle: hits[0] / hits[1].max(1.0),
            val_accuracy_pedestrian: hits[2] / hits[3].max(1.0),
            lr_end: lr,
        };
        tracing::info!(epoch, train_loss = stats.train_loss, val_loss = stats.val_loss, "epoch");
        on_event(&TrainEvent::Epoch(stats.clone()));
        let network = net.to_network(String::new())?;
        checkpoint(&network, &stats)?;
        let score = if stats.val_loss.is_finite() { stats.val_loss } else { stats.train_loss };
        if score < best {
            best = score;
            report.best_epoch = epoch;
            report.network = network;
        }
        report.epochs.push(stats);
    }
    Ok(report)
}
