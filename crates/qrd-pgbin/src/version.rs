//! PostgreSQL version numbers as printed by `tool --version` and by the server (`server_version_num`).

use std::cmp::Ordering;
use std::fmt;

/// A PostgreSQL version. Only major and minor matter for compatibility (10+ numbering); pre-release
/// suffixes such as `17beta1` are kept in `text` and sort before the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgVersion {
    pub major: u32,
    pub minor: u32,
    /// The version as printed, e.g. `16.2`, `15.18`, `17beta1`.
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("unrecognised PostgreSQL version string {0:?}")]
pub struct VersionError(pub String);

impl PgVersion {
    /// Parses a bare version (`16.2`, `14.17`, `17beta1`, `9.6.24`).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let text = text.trim();
        let digits_end = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let major_len = digits_end(text);
        let major: u32 = text[..major_len].parse().map_err(|_| VersionError(text.to_owned()))?;
        let rest = &text[major_len..];
        let mut minor = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let minor_len = digits_end(after_dot);
            minor = after_dot[..minor_len].parse().map_err(|_| VersionError(text.to_owned()))?;
            // 9.6.24: before PostgreSQL 10 the major had two parts; fold it into one number (906).
            if major < 10 {
                let patch_part = &after_dot[minor_len..];
                let patch = patch_part.strip_prefix('.').map(|p| p[..digits_end(p)].parse().unwrap_or(0)).unwrap_or(0);
                return Ok(Self { major: major * 100 + minor, minor: patch, text: text.to_owned() });
            }
        }
        Ok(Self { major, minor, text: text.to_owned() })
    }

    /// Parses the output of `tool --version`, e.g. `psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub fn from_version_output(output: &str) -> Result<Self, VersionError> {
        let line = output.lines().next().unwrap_or_default();
        let after = line.split_once("(PostgreSQL) ").map(|(_, v)| v).ok_or_else(|| VersionError(line.to_owned()))?;
        let token = after.split_whitespace().next().unwrap_or_default();
        Self::parse(token).map_err(|_| VersionError(line.to_owned()))
    }

    /// From `server_version_num` (e.g. 160014 → 16.14; 90624 → 9.6.24).
    pub fn from_version_num(num: u32) -> Self {
        if num >= 100_000 {
            let (major, minor) = (num / 10_000, num % 10_000);
            Self { major, minor, text: format!("{major}.{minor}") }
        } else {
            let (major, minor) = (num / 100, num % 100);
            Self { major, minor, text: format!("{}.{}.{}", major / 100, major % 100, minor) }
        }
    }

    /// The major as users write it: `16`, or `9.6` before PostgreSQL 10.
    pub fn major_text(&self) -> String {
        if self.major >= 100 { format!("{}.{}", self.major / 100, self.major % 100) } else { self.major.to_string() }
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialOrd for PgVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor).cmp(&(other.major, other.minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_output() {
        let v = PgVersion::from_version_output("psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").unwrap();
        assert_eq!((v.major, v.minor, v.text.as_str()), (15, 18, "15.18"));
        let v = PgVersion::from_version_output("pg_dump (PostgreSQL) 16.2").unwrap();
        assert_eq!((v.major, v.minor), (16, 2));
        let v = PgVersion::from_version_output("postgres (PostgreSQL) 17beta1").unwrap();
        assert_eq!((v.major, v.minor, v.text.as_str()), (17, 0, "17beta1"));
        let err = PgVersion::from_version_output("bash: pg_dump: command not found").unwrap_err();
        assert_eq!(err.0, "bash: pg_dump: command not found", "the error quotes the line it could not read");
    }

    #[test]
    fn parses_old_and_new_numbering() {
        assert_eq!(PgVersion::parse("9.6.24").unwrap().major, 906);
        assert_eq!(PgVersion::parse("9.6.24").unwrap().major_text(), "9.6");
        assert_eq!(PgVersion::from_version_num(140017).text, "14.17");
        assert_eq!(PgVersion::from_version_num(90624).text, "9.6.24");
        assert_eq!(PgVersion::from_version_num(90624).major, 906);
        assert!(PgVersion::parse("16.2").unwrap() > PgVersion::parse("15.18").unwrap());
    }
}
