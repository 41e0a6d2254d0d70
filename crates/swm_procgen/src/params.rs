//! Parameters of a generated district, read from TOML.

use crate::ProcgenError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The embedded default district (`data/default-district.toml`).
const DEFAULT_DISTRICT_TOML: &str = include_str!("../../../data/default-district.toml");

/// The districts the shipped world model trains on (`data/training-district.toml`).
const TRAINING_DISTRICT_TOML: &str = include_str!("../../../data/training-district.toml");

/// What to generate. Every random choice is a pure function of `seed`; the other fields
/// are the means and switches the seed varies around (see `data/default-district.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistrictParams {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// The twin's name.
    pub name: String,
    /// Latitude of the district's centre (the twin frame's origin), degrees.
    pub origin_lat_deg: f64,
    /// Longitude of the district's centre, degrees.
    pub origin_lon_deg: f64,
    /// Extent `[east-west, north-south]` of the district, metres.
    pub size_m: [f64; 2],
    /// Mean spacing of the arterial grid, metres (each seed varies it by ±15 %).
    pub superblock_m: f64,
    /// Largest rotation of the street grid away from north, degrees.
    pub max_grid_rotation_deg: f64,
    /// Chance that one arterial runs at an angle to the grid.
    pub angled_road_chance: f64,
    /// A river (with bridges and a riverside park) along one edge of the district.
    pub river: bool,
    /// A forested hill in one superblock (and in the DEM).
    pub hill: bool,
    /// Along a river, an expressway in the riverside park (a dual carriageway at
    /// 80 km/h, as along the Han) with an exit and an entry ramp to the riverside
    /// arterial. Off in the embedded default, on in `data/training-district.toml`.
    pub expressway: bool,
    /// A subway line under an arterial (and, along a river, sometimes a surface railway).
    pub rail: bool,
    /// Mean share of superblocks built as apartment complexes (danji), 0..1.
    pub apartment_share: f64,
    /// Share of superblocks split by a tertiary collector road, 0..1.
    pub collector_share: f64,
    /// Chance, 0..1, of each bend the generator can make: an arterial curving away at
    /// the district's edge, a dogleg in an apartment complex's road, a road winding
    /// round the hill. Bends are what the teacher slows for and the learned model must
    /// see in training (`data/training-district.toml`: 0.6); 0 in the embedded default.
    pub bend_share: f64,
    /// Building density multiplier (1 = typical Seoul; smaller leaves wider gaps).
    pub density: f64,
    /// Share of buildings tagged with `height`, 0..1.
    pub height_tag_share: f64,
    /// Share of buildings tagged with `building:levels`, 0..1.
    pub levels_tag_share: f64,
    /// Cell size of the generated DEM, metres.
    pub dem_cell_m: f64,
}

impl Default for DistrictParams {
    fn default() -> Self {
        Self {
            seed: 1,
            name: "procgen-district".to_string(),
            origin_lat_deg: 37.54,
            origin_lon_deg: 127.02,
            size_m: [2000.0, 1600.0],
            superblock_m: 480.0,
            max_grid_rotation_deg: 15.0,
            angled_road_chance: 0.5,
            river: true,
            hill: true,
            expressway: false,
            rail: true,
            apartment_share: 0.45,
            collector_share: 0.5,
            bend_share: 0.0,
            density: 1.0,
            height_tag_share: 0.4,
            levels_tag_share: 0.7,
            dem_cell_m: 15.0,
        }
    }
}

impl DistrictParams {
    /// Parses and validates TOML; missing keys take their defaults.
    pub fn from_toml_str(text: &str) -> Result<Self, ProcgenError> {
        let params: DistrictParams = toml::from_str(text).map_err(|e| ProcgenError::Toml(Box::new(e)))?;
        params.validate()?;
        Ok(params)
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ProcgenError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ProcgenError::Io { path: path.to_path_buf(), source })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ProcgenError::Toml(source) => ProcgenError::TomlFile { path: path.to_path_buf(), source },
            other => other,
        })
    }

    /// The district shipped with swm (`data/default-district.toml`).
    pub fn embedded_default() -> Self {
        Self::from_toml_str(DEFAULT_DISTRICT_TOML).expect("data/default-district.toml is valid")
    }

    /// The districts `swm train --procgen-seeds` trains on (`data/training-district.toml`):
    /// the embedded default with bends and the riverside expressway, so that training
    /// sees curves and 80 km/h roads as the real cities have them.
    pub fn training_default() -> Self {
        Self::from_toml_str(TRAINING_DISTRICT_TOML).expect("data/training-district.toml is valid")
    }

    /// The same parameters with another seed.
    pub fn with_seed(&self, seed: u64) -> Self {
        Self { seed, ..self.clone() }
    }

    /// Checks that every value is in its domain.
    pub fn validate(&self) -> Result<(), ProcgenError> {
        let bad = |field: &'static str, message: String| Err(ProcgenError::Invalid { field, message });
        if !(self.origin_lat_deg.is_finite() && self.origin_lat_deg.abs() <= 80.0) {
            return bad("origin_lat_deg", format!("{} is not a latitude within ±80°", self.origin_lat_deg));
        }
        if !(self.origin_lon_deg.is_finite() && self.origin_lon_deg.abs() <= 180.0) {
            return bad("origin_lon_deg", format!("{} is not a longitude", self.origin_lon_deg));
        }
        for s in self.size_m {
            if !(600.0..=20_000.0).contains(&s) {
                return bad("size_m", format!("{:?}: each side must be 600..20000 m", self.size_m));
            }
        }
        if !(250.0..=1500.0).contains(&self.superblock_m) {
            return bad("superblock_m", format!("{} must be 250..1500 m", self.superblock_m));
        }
        if self.superblock_m * 1.2 > self.size_m[0].min(self.size_m[1]) {
            return bad("superblock_m", format!("{} m does not fit the district {:?}", self.superblock_m, self.size_m));
        }
        if !(0.0..=30.0).contains(&self.max_grid_rotation_deg) {
            return bad("max_grid_rotation_deg", format!("{} must be 0..30", self.max_grid_rotation_deg));
        }
        let shares = [
            ("angled_road_chance", self.angled_road_chance),
            ("apartment_share", self.apartment_share),
            ("collector_share", self.collector_share),
            ("bend_share", self.bend_share),
            ("height_tag_share", self.height_tag_share),
            ("levels_tag_share", self.levels_tag_share),
        ];
        for (field, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, format!("{v} must be in 0..1"));
            }
        }
        if !(0.3..=2.0).contains(&self.density) {
            return bad("density", format!("{} must be 0.3..2", self.density));
        }
        if !(2.0..=100.0).contains(&self.dem_cell_m) {
            return bad("dem_cell_m", format!("{} must be 2..100 m", self.dem_cell_m));
        }
        Ok(())
    }
}
