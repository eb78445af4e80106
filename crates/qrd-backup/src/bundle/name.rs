//! Bundle file names: `NAME.tar.zst` when complete, `.NAME.tar.zst.partial-<pid>-<random>` while being
//! written. The partial name starts with a dot and does not end in `.tar.zst`, so nothing that looks for
//! bundles (`qrd backup list`, a DBA's `ls *.tar.zst`, a copy job) ever takes one for a bundle.

use time::OffsetDateTime;

/// The extension of a complete bundle.
pub const EXTENSION: &str = ".tar.zst";
/// What follows the bundle's name in the name of its partial file.
pub const PARTIAL_MARK: &str = ".partial-";

/// `qrd-backup-20261123T101500Z`: the name qrd gives a bundle of a run that began at `created`.
pub fn default_name(created: OffsetDateTime) -> String {
    format!("qrd-backup-{}", qrd_conf::write::utc_stamp(created.into()))
}

/// `NAME.tar.zst`, or why `name` cannot name a bundle.
pub fn bundle_file_name(name: &str) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.starts_with('.') {
        return Err("the name starts with a dot (such names are reserved for partial files)");
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err("the name holds a slash or a control character");
    }
    Ok(format!("{name}{EXTENSION}"))
}

/// A complete bundle's file name: `NAME.tar.zst`, `NAME` not starting with a dot.
pub fn is_bundle_file_name(file_name: &str) -> bool {
    !file_name.starts_with('.') && file_name.len() > EXTENSION.len() && file_name.ends_with(EXTENSION)
}

/// A partial file's name: `.NAME.tar.zst.partial-…`.
pub fn is_partial_file_name(file_name: &str) -> bool {
    file_name.starts_with('.') && file_name.contains(&format!("{EXTENSION}{PARTIAL_MARK}"))
}

/// The prefix of the partial file of bundle file `file_name`, for this process.
pub(crate) fn partial_prefix(file_name: &str) -> String {
    format!(".{file_name}{PARTIAL_MARK}{}-", std::process::id())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn names() {
        assert_eq!(default_name(datetime!(2026-11-23 11:15:00 +01:00)), "qrd-backup-20261123T101500Z");
        assert_eq!(bundle_file_name("nightly").unwrap(), "nightly.tar.zst");
        assert_eq!(
            bundle_file_name(".hidden"),
            Err("the name starts with a dot (such names are reserved for partial files)")
        );
        assert_eq!(bundle_file_name("a/b"), Err("the name holds a slash or a control character"));
        assert_eq!(bundle_file_name(""), Err("the name is empty"));
        assert!(is_bundle_file_name("nightly.tar.zst"));
        assert!(!is_bundle_file_name(".tar.zst"));
        assert!(!is_bundle_file_name("nightly.tar"));
    }

    #[test]
    fn a_partial_name_never_looks_like_a_bundle() {
        let partial = format!("{}k2Xq9z", partial_prefix("nightly.tar.zst"));
        assert!(partial.starts_with(".nightly.tar.zst.partial-"), "{partial}");
        assert!(is_partial_file_name(&partial));
        assert!(!is_bundle_file_name(&partial));
        // Even if a random suffix happened to end in the extension.
        let unlucky = format!("{}.tar.zst", partial_prefix("nightly.tar.zst"));
        assert!(!is_bundle_file_name(&unlucky) && is_partial_file_name(&unlucky));
    }
}
