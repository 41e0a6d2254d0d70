//! Any vector or raster format GDAL reads (feature `gdal`).
