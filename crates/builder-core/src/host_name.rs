//! Names that come from a Dockerfile, a build context, a layer or a server and end up naming a
//! file on the host. Such a name is only ever used as one path component inside a private
//! directory strata has just made, so it can neither climb out (`..`, `/`) nor name an
//! absolute path; anything else gets strata's own name.

/// `name` when it is exactly one path component that is safe to create inside a fresh private
/// directory: not empty, not `.` or `..`, without `/` or NUL.
pub(crate) fn single_component(name: &str) -> Option<&str> {
    let ok = !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0');
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::single_component;

    #[test]
    fn only_plain_components_pass() {
        for good in ["EOF", "file.txt", "..x", "a b", ".hidden"] {
            assert_eq!(single_component(good), Some(good));
        }
        for bad in ["", ".", "..", "/etc/passwd", "../../etc/passwd", "a/b", "a\0b", "/"] {
            assert_eq!(single_component(bad), None, "{bad:?}");
        }
    }
}
