//! OCI whiteout names: `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` hides all of a
//! directory's lower-layer content.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Prefix of a whiteout file name.
pub const PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE: &str = ".wh..wh..opq";

/// What a file name means under the whiteout convention.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// Not a whiteout.
    None,
    /// The directory containing the marker is opaque.
    Opaque,
    /// The sibling with this name is deleted.
    Delete(&'a OsStr),
}

/// Classifies a file name (one path component).
pub fn classify(name: &OsStr) -> Whiteout<'_> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE.as_bytes() {
        Whiteout::Opaque
    } else if let Some(rest) = bytes.strip_prefix(PREFIX.as_bytes()) {
        Whiteout::Delete(OsStr::from_bytes(rest))
    } else {
        Whiteout::None
    }
}

/// The whiteout file name that deletes `name`.
pub fn name_for(name: &OsStr) -> OsString {
    let mut out = OsString::from(PREFIX);
    out.push(name);
    out
}
