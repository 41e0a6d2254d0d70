//! Which part of the batch this process writes: shard `I` of `N` owns the chunks `c` with
//! `c mod N == I`.
//!
//! [`Shard::from_env`] reads, in order:
//!
//! | scheduler | index | count |
//! |---|---|---|
//! | `SWM_SHARD=I/N` | `I` | `N` |
//! | Slurm array job | `SLURM_ARRAY_TASK_ID` | `SLURM_ARRAY_TASK_COUNT`, else `SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1` (index offset by `MIN`) |
//! | Kubernetes Indexed Job | `JOB_COMPLETION_INDEX` | `SWM_SHARDS` (set it to the Job's `completions`: Kubernetes does not export it) |
//! | none | 0 | 1 |
//!
//! Slurm arrays must be contiguous (`--array=0-15`, not `0-15:2`); the command line's
//! `--shard I/N` overrides all of these.

use std::fmt;
use std::str::FromStr;

use crate::BatchError;

/// Shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Where a shard came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSource {
    CommandLine,
    /// `SWM_SHARD`.
    Env,
    Slurm,
    Kubernetes,
    /// Nothing said: the whole batch.
    Default,
}

impl fmt::Display for ShardSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShardSource::CommandLine => "--shard",
            ShardSource::Env => "SWM_SHARD",
            ShardSource::Slurm => "SLURM_ARRAY_TASK_ID",
            ShardSource::Kubernetes => "JOB_COMPLETION_INDEX and SWM_SHARDS",
            ShardSource::Default => "default",
        })
    }
}

impl Shard {
    /// The whole batch.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Shard, BatchError> {
        if count == 0 || index >= count {
            return Err(BatchError::Shard(format!("{index}/{count}"), "need 0 <= I < N".to_string()));
        }
        Ok(Shard { index, count })
    }

    /// Whether chunk `chunk` is this shard's.
    pub fn owns(&self, chunk: u64) -> bool {
        chunk % u64::from(self.count) == u64::from(self.index)
    }

    /// From the process environment (module docs).
    pub fn from_env() -> Result<(Shard, ShardSource), BatchError> {
        Self::from_env_with(|k| std::env::var(k).ok())
    }

    /// From an environment given as a lookup function (module docs).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<(Shard, ShardSource), BatchError> {
        let num = |k: &str| -> Result<Option<u32>, BatchError> {
            match get(k) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|e| BatchError::Shard(format!("{k}={v}"), format!("not a shard number: {e}"))),
            }
        };
        if let Some(v) = get("SWM_SHARD").filter(|v| !v.trim().is_empty()) {
            return Ok((v.parse()?, ShardSource::Env));
        }
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            if let Some(count) = num("SLURM_ARRAY_TASK_COUNT")? {
                let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                return Ok((Shard::new(id.wrapping_sub(min), count)?, ShardSource::Slurm));
            }
            return match (num("SLURM_ARRAY_TASK_MIN")?, num("SLURM_ARRAY_TASK_MAX")?) {
                (Some(min), Some(max)) if max >= min && id >= min => {
                    Ok((Shard::new(id - min, max - min + 1)?, ShardSource::Slurm))
                }
                _ => Err(BatchError::Shard(
                    format!("SLURM_ARRAY_TASK_ID={id}"),
                    "needs SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN/MAX".to_string(),
                )),
            };
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let Some(count) = num("SWM_SHARDS")? else {
                return Err(BatchError::Shard(
                    format!("JOB_COMPLETION_INDEX={index}"),
                    "set SWM_SHARDS to the Job's completions (Kubernetes does not export it)".to_string(),
                ));
            };
            return Ok((Shard::new(index, count)?, ShardSource::Kubernetes));
        }
        Ok((Shard::ALL, ShardSource::Default))
    }
}

impl FromStr for Shard {
    type Err = BatchError;

    /// `I/N`.
    fn from_str(s: &str) -> Result<Shard, BatchError> {
        let bad = |m: &str| BatchError::Shard(s.to_string(), m.to_string());
        let (i, n) = s.split_once('/').ok_or_else(|| bad("expected I/N, e.g. 0/4"))?;
        let i = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let n = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        Shard::new(i, n).map_err(|_| bad("need 0 <= I < N"))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<(Shard, ShardSource), BatchError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Shard::from_env_with(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn parses_flags_and_scheduler_variables() {
        assert_eq!("2/7".parse::<Shard>().unwrap(), Shard { index: 2, count: 7 });
        for bad in ["7/7", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(env(&[]).unwrap(), (Shard::ALL, ShardSource::Default));
        assert_eq!(env(&[("SWM_SHARD", "1/3")]).unwrap(), (Shard::new(1, 3).unwrap(), ShardSource::Env));
        let slurm = [("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_COUNT", "8"), ("SLURM_ARRAY_TASK_MIN", "0")];
        assert_eq!(env(&slurm).unwrap(), (Shard::new(5, 8).unwrap(), ShardSource::Slurm));
        // 1-based arrays: --array=1-4.
        let slurm = [("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "4")];
        assert_eq!(env(&slurm).unwrap().0, Shard::new(0, 4).unwrap());
        assert!(env(&[("SLURM_ARRAY_TASK_ID", "1")]).is_err());
        let k8s = [("JOB_COMPLETION_INDEX", "3"), ("SWM_SHARDS", "4")];
        assert_eq!(env(&k8s).unwrap(), (Shard::new(3, 4).unwrap(), ShardSource::Kubernetes));
        let e = env(&[("JOB_COMPLETION_INDEX", "3")]).unwrap_err().to_string();
        assert!(e.contains("SWM_SHARDS"), "{e}");
        assert!(env(&[("JOB_COMPLETION_INDEX", "4"), ("SWM_SHARDS", "4")]).is_err());
    }

    #[test]
    fn chunks_go_round_robin() {
        let s = Shard::new(2, 3).unwrap();
        let mine: Vec<u64> = (0..10).filter(|c| s.owns(*c)).collect();
        assert_eq!(mine, [2, 5, 8]);
    }
}
