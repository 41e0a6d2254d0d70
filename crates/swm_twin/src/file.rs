//! The `.swt` file.
use crate::{Twin, TwinError};
use std::path::Path;

pub fn write_swt_bytes(_twin: &Twin) -> Result<Vec<u8>, TwinError> {
    Err(TwinError::Encode("unwritten".into()))
}
pub fn read_swt_bytes(_bytes: &[u8], path: &str) -> Result<Twin, TwinError> {
    Err(TwinError::BadMagic { path: path.into() })
}
pub fn write_swt(_twin: &Twin, _path: &Path) -> Result<(), TwinError> {
    Ok(())
}
pub fn read_swt(path: &Path) -> Result<Twin, TwinError> {
    Err(TwinError::BadMagic { path: path.display().to_string() })
}
