//! Any vector or raster format GDAL reads (feature `gdal`).
//!
//! Vector layers (Shapefile, GeoPackage, GML, KML, FlatGeobuf...) go through the same
//! feature conversion as GeoJSON ([`crate::vector::add_feature`]); rasters GDAL reads
//! (`.asc`, `.img`, `.vrt`...) become [`Dem`]s. GDAL's own diagnostics go to `tracing`.

use crate::{
    IngestError, Report,
    dem::Dem,
    osm::OsmData,
    vector::{AttributeValue, FeatureSource, VectorMapping, add_feature, geometry_to_wgs84},
};
use gdal::{
    Dataset,
    spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef},
    vector::{FieldValue, LayerAccess},
};
use std::path::Path;
use swm_core::Crs;

/// Routes GDAL's error messages to `tracing` instead of stderr (once per process).
fn quiet_gdal() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gdal::config::set_error_handler(|class, code, message| {
            tracing::debug!(target: "gdal", ?class, code, "{message}");
        });
    });
}

fn gdal_err(path: &Path, e: impl std::fmt::Display) -> IngestError {
    IngestError::Gdal { path: path.to_path_buf(), message: e.to_string() }
}

fn file_label(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn open(path: &Path) -> Result<Dataset, IngestError> {
    quiet_gdal();
    if !path.exists() {
        return Err(IngestError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
    }
    Dataset::open(path).map_err(|e| gdal_err(path, e))
}

/// The supported CRS a spatial reference stands for, if it is one of ours.
pub fn crs_of(srs: &SpatialRef) -> Option<Crs> {
    let by_code = |s: &SpatialRef| {
        let is_epsg = s.auth_name().is_some_and(|a| a.eq_ignore_ascii_case("EPSG"));
        s.auth_code().ok().filter(|_| is_epsg).and_then(|c| u32::try_from(c).ok()).and_then(|c| Crs::from_epsg(c).ok())
    };
    if let Some(crs) = by_code(srs) {
        return Some(crs);
    }
    let mut identified = srs.clone();
    if identified.auto_identify_epsg().is_ok()
        && let Some(crs) = by_code(&identified)
    {
        return Some(crs);
    }
    let proj4 = normalized_proj4(srs);
    Crs::ALL.into_iter().find(|c| {
        SpatialRef::from_epsg(c.epsg()).is_ok_and(|s| s == *srs || (proj4.is_some() && normalized_proj4(&s) == proj4))
    })
}

/// The PROJ.4 definition's parameters, sorted, without those that do not change the
/// projection (`+no_defs`, a null `+towgs84`...): ESRI `.prj` files (no EPSG code) match
/// their EPSG definition this way.
fn normalized_proj4(srs: &SpatialRef) -> Option<Vec<String>> {
    let def = srs.to_proj4().ok()?;
    let mut params: Vec<String> = def
        .split_whitespace()
        .filter(|p| !matches!(*p, "+no_defs" | "+type=crs" | "+wktext" | "+towgs84=0,0,0,0,0,0,0" | "+towgs84=0,0,0"))
        .map(str::to_string)
        .collect();
    params.sort();
    (!params.is_empty()).then_some(params)
}

fn describe(srs: &SpatialRef) -> String {
    let name = srs.name().unwrap_or_else(|| "unnamed".into());
    match (srs.auth_name(), srs.auth_code()) {
        (Some(a), Ok(c)) => format!("{name} ({a}:{c})"),
        _ => name,
    }
}

/// How a layer's coordinates reach WGS84.
enum ToWgs84 {
    Ours(Crs),
    Gdal(CoordTransform),
}

fn wgs84_traditional() -> Result<SpatialRef, gdal::errors::GdalError> {
    let mut wgs84 = SpatialRef::from_epsg(4326)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(wgs84)
}

fn attribute(value: Option<FieldValue>) -> AttributeValue {
    let join = |items: Vec<String>| AttributeValue::Text(items.join(";"));
    match value {
        None => AttributeValue::Null,
        Some(FieldValue::IntegerValue(i)) => AttributeValue::Integer(i.into()),
        Some(FieldValue::Integer64Value(i)) => AttributeValue::Integer(i),
        Some(FieldValue::RealValue(x)) => AttributeValue::Real(x),
        Some(FieldValue::StringValue(s)) => AttributeValue::Text(s),
        Some(FieldValue::IntegerListValue(v)) => join(v.iter().map(i32::to_string).collect()),
        Some(FieldValue::Integer64ListValue(v)) => join(v.iter().map(i64::to_string).collect()),
        Some(FieldValue::RealListValue(v)) => join(v.iter().map(|x| crate::vector::format_number(*x)).collect()),
        Some(FieldValue::StringListValue(v)) => join(v),
        Some(FieldValue::DateValue(d)) => AttributeValue::Text(d.to_string()),
        Some(FieldValue::DateTimeValue(t)) => AttributeValue::Text(t.to_string()),
    }
}

/// Reads every layer of a vector file GDAL opens into OSM-like objects.
///
/// Each layer's coordinates are taken in `mapping.crs` if set, else in the layer's spatial
/// reference: one of ours (by EPSG code) is converted by [`Crs::to_wgs84`], any other by
/// GDAL's coordinate transformation; a layer without one is taken as EPSG:4326 (with a
/// warning). Features are numbered across layers in reading order.
pub fn read_vector(
    path: &Path,
    source_index: u32,
    mapping: &VectorMapping,
    report: &mut Report,
) -> Result<OsmData, IngestError> {
    let dataset = open(path)?;
    let name = file_label(path);
    let source = FeatureSource { label: &name, source_index, mapping };
    let mut data = OsmData::new();
    let mut feature_index: u64 = 0;
    let layer_count = dataset.layer_count();
    if layer_count == 0 {
        return Err(IngestError::Gdal { path: path.to_path_buf(), message: "no vector layers".into() });
    }
    for layer_index in 0..layer_count {
        let mut layer = dataset.layer(layer_index).map_err(|e| gdal_err(path, e))?;
        let layer_name = layer.name();
        let subject = format!("{name} layer {layer_name}");
        if layer.defn().geom_fields().next().is_none() {
            report.warn(subject, "the layer has no geometry column; skipped");
            continue;
        }
        let to_wgs84 = match (mapping.crs, layer.spatial_ref()) {
            (Some(crs), _) => ToWgs84::Ours(crs),
            (None, None) => {
                report.warn(subject.as_str(), "the layer has no spatial reference; taking coordinates as EPSG:4326");
                ToWgs84::Ours(Crs::Wgs84)
            }
            (None, Some(srs)) => match crs_of(&srs) {
                Some(crs) => ToWgs84::Ours(crs),
                None => {
                    let mut src = srs.clone();
                    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
                    let transform = wgs84_traditional().and_then(|wgs84| CoordTransform::new(&src, &wgs84));
                    match transform {
                        Ok(t) => {
                            tracing::debug!(layer = %layer_name, crs = %describe(&srs), "reprojecting with GDAL");
                            ToWgs84::Gdal(t)
                        }
                        Err(e) => {
                            return Err(IngestError::UnsupportedCrs {
                                path: path.to_path_buf(),
                                message: format!(
                                    "layer {layer_name}: cannot transform {} to WGS84: {e}",
                                    describe(&srs)
                                ),
                            });
                        }
                    }
                }
            },
        };
        for feature in layer.features() {
            let index = feature_index;
            feature_index += 1;
            let fsubject = format!("{name} feature {index}");
            let fid = feature.fid().map(|f| format!(" (layer {layer_name}, fid {f})")).unwrap_or_default();
            let Some(geometry) = feature.geometry() else {
                report.warn(fsubject, format!("the feature{fid} has no geometry; dropped"));
                continue;
            };
            let mut geometry = geometry.clone();
            geometry.flatten_to_2d();
            if let ToWgs84::Gdal(t) = &to_wgs84
                && let Err(e) = geometry.transform_inplace(t)
            {
                return Err(IngestError::parse(
                    path,
                    format!("feature {index}{fid}"),
                    format!("cannot transform to WGS84: {e}"),
                ));
            }
            let converted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| geometry.to_geo()));
            let geo = match converted {
                Ok(Ok(g)) => g,
                Ok(Err(e)) => {
                    report.warn(
                        fsubject,
                        format!("{} geometry{fid} not supported ({e}); dropped", geometry.geometry_name()),
                    );
                    continue;
                }
                Err(_) => {
                    report.warn(fsubject, format!("malformed {} geometry{fid}; dropped", geometry.geometry_name()));
                    continue;
                }
            };
            let crs = match &to_wgs84 {
                ToWgs84::Ours(crs) => *crs,
                ToWgs84::Gdal(_) => Crs::Wgs84,
            };
            let geo = geometry_to_wgs84(&geo, crs)
                .map_err(|m| IngestError::parse(path, format!("feature {index}{fid}"), m))?;
            let attributes: Vec<(String, AttributeValue)> = feature.fields().map(|(k, v)| (k, attribute(v))).collect();
            add_feature(&mut data, &source, index, &geo, &attributes, report);
        }
    }
    Ok(data)
}

/// Reads band 1 of a raster GDAL opens as a DEM (scale and offset applied).
///
/// The raster must be north-up and in one of the supported CRSs; others are
/// [`IngestError::UnsupportedCrs`] (reproject them with `gdalwarp -t_srs EPSG:5186`).
pub fn read_raster_dem(path: &Path) -> Result<Dem, IngestError> {
    let dataset = open(path)?;
    if dataset.raster_count() == 0 {
        return Err(IngestError::Gdal { path: path.to_path_buf(), message: "no raster bands".into() });
    }
    let unsupported = |message: String| IngestError::UnsupportedCrs { path: path.to_path_buf(), message };
    let crs = match dataset.spatial_ref() {
        Err(_) => {
            return Err(unsupported(
                "the raster has no spatial reference: the DEM's coordinate reference system is unknown".into(),
            ));
        }
        Ok(srs) => crs_of(&srs).ok_or_else(|| {
            unsupported(format!(
                "the DEM's coordinate reference system is {}; supported: EPSG:4326, 5186, 5179, 32652 \
                 (reproject it, e.g. with gdalwarp -t_srs EPSG:5186)",
                describe(&srs)
            ))
        })?,
    };
    let gt = dataset.geo_transform().map_err(|e| IngestError::parse(path, "georeferencing", e.to_string()))?;
    if gt[2] != 0.0 || gt[4] != 0.0 {
        return Err(IngestError::parse(
            path,
            "georeferencing",
            "the raster is rotated or sheared; only north-up rasters are supported",
        ));
    }
    let band = dataset.rasterband(1).map_err(|e| gdal_err(path, e))?;
    let (width, height) = band.size();
    let buffer = band.read_band_as::<f32>().map_err(|e| gdal_err(path, e))?;
    let (_, mut elevation_m) = buffer.into_shape_and_vec();
    let nodata = band.no_data_value().map(|v| v as f32);
    let scale = band.scale().unwrap_or(1.0);
    let offset = band.offset().unwrap_or(0.0);
    if scale != 1.0 || offset != 0.0 {
        for z in &mut elevation_m {
            if z.is_finite() && nodata.is_none_or(|nd| *z != nd) {
                *z = (*z as f64 * scale + offset) as f32;
            }
        }
    }
    Dem {
        source: file_label(path),
        crs,
        origin: [gt[0] + gt[1] / 2.0, gt[3] + gt[5] / 2.0],
        pixel_size: [gt[1], gt[5]],
        width,
        height,
        elevation_m,
        nodata,
    }
    .validated(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dem::tests::temp_dir;
    use gdal::vector::{LayerOptions, OGRFieldType, OGRwkbGeometryType, ToGdal};
    use gdal::{DriverManager, raster::RasterCreationOptions};
    use swm_core::{LatLon, OsmType, SourceRef};

    /// Writes three buildings (EPSG:5186) with the building register's attributes.
    fn write_buildings(driver: &str, path: &Path) -> Vec<[f64; 2]> {
        let driver = DriverManager::get_driver_by_name(driver).unwrap();
        let mut ds = driver.create_vector_only(path).unwrap();
        let srs = SpatialRef::from_epsg(5186).unwrap();
        let layer = ds
            .create_layer(LayerOptions {
                name: "buildings",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbPolygon,
                options: None,
            })
            .unwrap();
        layer
            .create_defn_fields(&[
                ("BLD_NM", OGRFieldType::OFTString),
                ("HEIGHT", OGRFieldType::OFTReal),
                ("GRND_FLR", OGRFieldType::OFTInteger),
            ])
            .unwrap();
        let corner = [193370.3029, 547281.4483];
        let mut first_vertices = Vec::new();
        for (k, (name, height, floors)) in [("A", 32.5, 9), ("B", 12.0, 3), ("C", 0.0, 0)].into_iter().enumerate() {
            let x0 = corner[0] + 50.0 * k as f64;
            let y0 = corner[1];
            let poly = geo::Polygon::new(
                geo::LineString::from(vec![
                    (x0, y0),
                    (x0 + 30.0, y0),
                    (x0 + 30.0, y0 + 20.0),
                    (x0, y0 + 20.0),
                    (x0, y0),
                ]),
                vec![],
            );
            first_vertices.push([x0, y0]);
            let geometry = poly.to_gdal().unwrap();
            let mut feature = gdal::vector::Feature::new(layer.defn()).unwrap();
            feature.set_geometry(geometry).unwrap();
            feature.set_field_string(0, name).unwrap();
            feature.set_field_double(1, height).unwrap();
            feature.set_field_integer(2, floors).unwrap();
            feature.create(&layer).unwrap();
        }
        ds.close().unwrap();
        first_vertices
    }

    fn check_buildings(path: &Path, first_vertices: &[[f64; 2]]) {
        let mut report = Report::default();
        let data = read_vector(path, 2, &VectorMapping::default(), &mut report).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(data.ways.len(), 3);
        for (index, xy) in first_vertices.iter().enumerate() {
            let (id, way) = data
                .ways
                .iter()
                .find(|(id, _)| {
                    data.origins.get(&(OsmType::Way, **id))
                        == Some(&SourceRef::Feature { source: 2, index: index as u64 })
                })
                .unwrap();
            let _ = id;
            assert_eq!(way.nodes.first(), way.nodes.last());
            let expected = Crs::Korea2000CentralBelt2010.to_wgs84(*xy).unwrap();
            // The ring may start at any vertex (drivers may reorient it): find the corner.
            let found =
                way.nodes.iter().map(|n| data.nodes[n].pos).any(|p| {
                    (p.lat_deg - expected.lat_deg).abs() < 1e-7 && (p.lon_deg - expected.lon_deg).abs() < 1e-7
                });
            assert!(found, "feature {index}: no vertex at {expected:?}");
            match index {
                0 => {
                    assert!(way.tags.is("height", "32.5") && way.tags.is("building:levels", "9"), "{:?}", way.tags);
                    assert!(way.tags.is("building", "yes") && way.tags.is("BLD_NM", "A"));
                    assert!(way.tags.is("GRND_FLR", "9") && way.tags.is("HEIGHT", "32.5"));
                }
                1 => assert!(way.tags.is("height", "12") && way.tags.is("building", "yes"), "{:?}", way.tags),
                _ => assert!(!way.tags.has("height") && !way.tags.has("building"), "{:?}", way.tags),
            }
        }
        let first = data.nodes.values().next().unwrap().pos;
        assert!((first.lat_deg - 37.525).abs() < 1e-3 && (first.lon_deg - 126.925).abs() < 2e-3, "{first:?}");
    }

    #[test]
    fn geopackage_buildings_in_epsg_5186() {
        let dir = temp_dir("gpkg");
        let path = dir.join("buildings.gpkg");
        let corners = write_buildings("GPKG", &path);
        check_buildings(&path, &corners);
        assert!(matches!(crate::detect_kind(&path), Ok(crate::SourceKind::GdalVector)));
    }

    #[test]
    fn shapefile_buildings_in_epsg_5186() {
        let dir = temp_dir("shp");
        let path = dir.join("buildings.shp");
        let corners = write_buildings("ESRI Shapefile", &path);
        check_buildings(&path, &corners);
    }

    #[test]
    fn foreign_crs_is_reprojected_by_gdal() {
        let dir = temp_dir("gpkg3857");
        let path = dir.join("mercator.gpkg");
        let driver = DriverManager::get_driver_by_name("GPKG").unwrap();
        let mut ds = driver.create_vector_only(&path).unwrap();
        let srs = SpatialRef::from_epsg(3857).unwrap();
        let layer = ds
            .create_layer(LayerOptions {
                name: "pois",
                srs: Some(&srs),
                ty: OGRwkbGeometryType::wkbPoint,
                options: None,
            })
            .unwrap();
        layer.create_defn_fields(&[("amenity", OGRFieldType::OFTString)]).unwrap();
        // Web Mercator of (37.5, 127.0).
        let x = 127.0f64.to_radians() * 6_378_137.0;
        let y = (std::f64::consts::FRAC_PI_4 + 37.5f64.to_radians() / 2.0).tan().ln() * 6_378_137.0;
        {
            let mut feature = gdal::vector::Feature::new(layer.defn()).unwrap();
            feature.set_geometry(geo::Point::new(x, y).to_gdal().unwrap()).unwrap();
            feature.set_field_string(0, "cafe").unwrap();
            feature.create(&layer).unwrap();
        }
        ds.close().unwrap();
        let mut report = Report::default();
        let data = read_vector(&path, 0, &VectorMapping::default(), &mut report).unwrap();
        let node = data.nodes.values().next().unwrap();
        assert!((node.pos.lat_deg - 37.5).abs() < 1e-7 && (node.pos.lon_deg - 127.0).abs() < 1e-7, "{:?}", node.pos);
        assert!(node.tags.is("amenity", "cafe"));
    }

    #[test]
    fn geojson_fixture_through_gdal_matches_the_native_reader() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/roads.geojson");
        let mut report = Report::default();
        let via_gdal = read_vector(&path, 0, &VectorMapping::default(), &mut report).unwrap();
        let native = crate::vector::read_geojson(&path, 0, &VectorMapping::default(), &mut report).unwrap();
        let positions = |d: &OsmData| d.nodes.values().map(|n| n.pos).collect::<Vec<LatLon>>();
        assert_eq!(positions(&via_gdal), positions(&native));
        assert_eq!(via_gdal.ways.len(), 3);
        assert!(via_gdal.ways.values().any(|w| w.tags.is("highway", "primary") && w.tags.is("lanes", "6")));
    }

    #[test]
    fn unreadable_files_are_errors() {
        let dir = temp_dir("gdalbad");
        let path = dir.join("broken.gpkg");
        std::fs::write(&path, b"not a geopackage").unwrap();
        let mut report = Report::default();
        let err = read_vector(&path, 0, &VectorMapping::default(), &mut report).unwrap_err();
        assert!(matches!(err, IngestError::Gdal { .. }), "{err:?}");
        assert!(err.to_string().contains("broken.gpkg"));
        let err = read_vector(&dir.join("missing.shp"), 0, &VectorMapping::default(), &mut report).unwrap_err();
        assert!(matches!(err, IngestError::Io { .. }), "{err:?}");
    }

    fn write_asc(dir: &Path, name: &str, epsg: Option<u32>) -> std::path::PathBuf {
        // 4 x 3 grid, 30 m cells, lower-left corner at (200000, 550000) in EPSG:5186.
        let mem = DriverManager::get_driver_by_name("MEM").unwrap();
        let mut ds = mem.create_with_band_type::<f32, _>("", 4, 3, 1).unwrap();
        ds.set_geo_transform(&[200_000.0, 30.0, 0.0, 550_090.0, 0.0, -30.0]).unwrap();
        if let Some(code) = epsg {
            ds.set_spatial_ref(&SpatialRef::from_epsg(code).unwrap()).unwrap();
        }
        let mut band = ds.rasterband(1).unwrap();
        band.set_no_data_value(Some(-9999.0)).unwrap();
        let mut buf = gdal::raster::Buffer::new(
            (4, 3),
            vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, -9999.0],
        );
        band.write((0, 0), (4, 3), &mut buf).unwrap();
        let path = dir.join(name);
        let aaig = DriverManager::get_driver_by_name("AAIGrid").unwrap();
        ds.create_copy(&aaig, &path, &RasterCreationOptions::default()).unwrap();
        path
    }

    #[test]
    fn aaigrid_dem_in_epsg_5186() {
        let dir = temp_dir("asc");
        let path = write_asc(&dir, "dem.asc", Some(5186));
        assert!(matches!(crate::detect_kind(&path), Ok(crate::SourceKind::Dem)));
        let dem = Dem::read(&path).unwrap();
        assert_eq!(dem.crs, Crs::Korea2000CentralBelt2010);
        assert_eq!((dem.width, dem.height), (4, 3));
        assert_eq!(dem.origin, [200_015.0, 550_075.0]);
        assert_eq!(dem.pixel_size, [30.0, -30.0]);
        assert_eq!(dem.nodata, Some(-9999.0));
        let at = |x: f64, y: f64| dem.elevation_at(Crs::Korea2000CentralBelt2010.to_wgs84([x, y]).unwrap());
        assert!((at(200_045.0, 550_045.0).unwrap() - 6.0).abs() < 1e-4);
        assert!((at(200_030.0, 550_060.0).unwrap() - 3.5).abs() < 1e-4);
        assert_eq!(at(200_105.0, 550_015.0), None, "no-data");
        assert_eq!(at(199_000.0, 550_015.0), None, "outside");

        let path = write_asc(&dir, "nocrs.asc", None);
        let err = Dem::read(&path).unwrap_err();
        assert!(matches!(err, IngestError::UnsupportedCrs { .. }), "{err:?}");
        let path = write_asc(&dir, "mercator.asc", Some(3857));
        let err = Dem::read(&path).unwrap_err();
        let IngestError::UnsupportedCrs { message, .. } = &err else { panic!("{err:?}") };
        assert!(message.contains("3857") || message.contains("Mercator"), "{message}");
    }
}
