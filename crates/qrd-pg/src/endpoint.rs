//! `HOST[:PORT]` as a DBA types it (`--old-primary db1:4432`, `--endpoint [fd00::5]:4432`) and as qrd
//! writes it into URLs and configuration: the one reader and writer of that form.

use std::fmt;

/// A host and, when one was given, a port. IPv6 addresses are kept without brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

/// Why a `HOST[:PORT]` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not HOST[:PORT]: {reason}")]
pub struct HostPortError {
    pub text: String,
    pub reason: &'static str,
}

impl HostPort {
    /// Reads `HOST`, `HOST:PORT`, `[IPV6]`, `[IPV6]:PORT`, or a bare IPv6 address (two colons or more, no
    /// port: `::1` is a host, never host `:` port `1`).
    pub fn parse(text: &str) -> Result<HostPort, HostPortError> {
        let bad = |reason| HostPortError { text: text.to_owned(), reason };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("a '[' without its ']'"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad("only :PORT may follow ']'"))?)),
            }
        } else {
            match text.matches(':').count() {
                0 => (text, None),
                1 => text.split_once(':').map(|(h, p)| (h, Some(p))).expect("one colon"),
                _ => (text, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port is not a number from 1 to 65535")),
                Ok(n) => Some(n),
            },
        };
        Ok(HostPort { host: host.to_owned(), port })
    }

    /// Like [`HostPort::parse`], but the port must be there.
    pub fn parse_with_port(text: &str) -> Result<(String, u16), HostPortError> {
        match HostPort::parse(text)? {
            HostPort { host, port: Some(port) } => Ok((host, port)),
            HostPort { port: None, .. } => Err(HostPortError { text: text.to_owned(), reason: "the port is missing" }),
        }
    }

    /// The host and this port, or `default` when none was given.
    pub fn or_port(self, default: u16) -> (String, u16) {
        (self.host, self.port.unwrap_or(default))
    }
}

/// `host` as it goes into a URL or before `:PORT`: an IPv6 address in brackets.
pub fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", url_host(&self.host)),
            None => f.write_str(&self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: Option<u16>) -> HostPort {
        HostPort { host: host.to_owned(), port }
    }

    #[test]
    fn every_form_a_dba_types() {
        assert_eq!(HostPort::parse("10.0.4.30").unwrap(), hp("10.0.4.30", None));
        assert_eq!(HostPort::parse("db.example:5432").unwrap(), hp("db.example", Some(5432)));
        assert_eq!(HostPort::parse("[::1]:4433").unwrap(), hp("::1", Some(4433)));
        assert_eq!(HostPort::parse("[::1]").unwrap(), hp("::1", None));
        assert_eq!(HostPort::parse("::1").unwrap(), hp("::1", None));
        assert_eq!(HostPort::parse("fd00::5").unwrap(), hp("fd00::5", None));
        assert_eq!(HostPort::parse("/var/run/postgresql").unwrap(), hp("/var/run/postgresql", None));
    }

    #[test]
    fn what_is_refused_says_why() {
        let reason = |s: &str| HostPort::parse(s).unwrap_err().reason;
        assert_eq!(reason("h:port"), "the port is not a number from 1 to 65535");
        assert_eq!(reason("h:0"), "the port is not a number from 1 to 65535");
        assert_eq!(reason("h:70000"), "the port is not a number from 1 to 65535");
        assert_eq!(reason(":5432"), "the host is empty");
        assert_eq!(reason("[::1"), "a '[' without its ']'");
        assert_eq!(reason("[::1]5432"), "only :PORT may follow ']'");
        assert_eq!(
            HostPort::parse("h:x").unwrap_err().to_string(),
            "\"h:x\" is not HOST[:PORT]: the port is not a number from 1 to 65535"
        );
        assert_eq!(HostPort::parse_with_port("db1").unwrap_err().reason, "the port is missing");
        assert_eq!(HostPort::parse_with_port("[fd00::5]:4432").unwrap(), ("fd00::5".to_owned(), 4432));
    }

    #[test]
    fn written_back_as_read() {
        for s in ["db.example:5432", "[::1]:4433", "10.0.4.30", "::1"] {
            assert_eq!(HostPort::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(url_host("::1"), "[::1]");
        assert_eq!(url_host("[::1]"), "[::1]");
        assert_eq!(url_host("db1"), "db1");
    }
}
