//! Charon's fuzz targets share their checks with the corpus replay test.

pub mod checks;
