//! The ADDRESS field of host records, read the way the server reads it (`parse_hba_line` with
//! `getaddrinfo(AI_NUMERICHOST)` and `pg_sockaddr_cidr_mask`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Serialize;

/// Which clients a host record admits by address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Address {
    /// `all`: any address.
    All,
    /// `samehost`: any of the server's own addresses.
    SameHost,
    /// `samenet`: any address on a subnet the server is directly connected to.
    SameNet,
    /// `addr/prefix`. Host bits may be set (`10.0.0.1/24`): PostgreSQL accepts that and masks them away.
    Cidr {
        addr: IpAddr,
        prefix: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    /// `addr mask` as two fields. The mask need not be contiguous; matching is bitwise.
    Netmask {
        addr: IpAddr,
        mask: IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    /// A host name, or a suffix when it starts with a dot (`.example.com`). Matched by reverse DNS of the
    /// client address, confirmed by a forward lookup.
    Hostname { name: String },
}

/// Why a typed ADDRESS is not one; the text is the server's wording where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(pub String);

/// The first address field before any netmask field is read.
pub(crate) enum FirstField {
    Done(Address),
    NeedsMask(IpAddr, Option<String>),
}

impl Address {
    /// Parses what a DBA types for the ADDRESS column: `127.0.0.1/32`, `::1/128`, `10.0.0.0 255.0.0.0`
    /// (address and netmask separated by blanks), a host name, `.domain`, `samehost`, `samenet` or `all`.
    /// A bare address without a prefix or netmask is refused (the file would need a netmask field).
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        Self::parse_text(s).map_err(AddressError)
    }

    fn parse_text(s: &str) -> Result<Address, String> {
        let mut words = s.split_whitespace();
        let (first, second) = (words.next().unwrap_or(""), words.next());
        if words.next().is_some() {
            return Err(format!("too many words in address \"{s}\""));
        }
        match (parse_first_field(first, false)?, second) {
            (FirstField::Done(a), None) => Ok(a),
            (FirstField::Done(_), Some(_)) => Err(format!("only a numeric address can have a netmask: \"{s}\"")),
            (FirstField::NeedsMask(addr, zone), Some(mask)) => with_netmask(addr, zone, mask),
            (FirstField::NeedsMask(addr, _), None) => Err(format!(
                "address \"{first}\" needs a prefix length or a netmask, e.g. \"{first}/{}\"",
                if addr.is_ipv4() { 32 } else { 128 }
            )),
        }
    }

    /// True for `all`, `0.0.0.0/0`, `::/0` and all-zero netmasks: the record admits the whole internet
    /// (or all of IPv4 / IPv6), which deserves a warning before anything is written.
    pub fn covers_everything(&self) -> bool {
        match self {
            Address::All => true,
            Address::Cidr { prefix, .. } => *prefix == 0,
            Address::Netmask { mask, .. } => bits(*mask) == 0,
            _ => false,
        }
    }

    /// The address family as written, when the record names one.
    pub fn is_ipv4(&self) -> Option<bool> {
        match self {
            Address::Cidr { addr, .. } | Address::Netmask { addr, .. } => Some(addr.is_ipv4()),
            _ => None,
        }
    }

    /// Whether a numeric entry admits `client`. `None` for entries that need outside facts (`all` is
    /// `Some(true)`, host names and `samehost`/`samenet` are `None`).
    ///
    /// As in the server (`check_ip`), an IPv4 entry never matches an IPv6 client and vice versa, even in the
    /// IPv4-mapped range `::ffff:0:0/96`: PostgreSQL dropped its mapping special case in 9.0.
    pub fn admits(&self, client: IpAddr) -> Option<bool> {
        match self {
            Address::All => Some(true),
            Address::Cidr { addr, prefix, .. } => Some(in_net(client, *addr, prefix_mask(addr.is_ipv4(), *prefix))),
            Address::Netmask { addr, mask, .. } => Some(in_net(client, *addr, bits(*mask))),
            _ => None,
        }
    }

    /// A node as a DBA gives it on the command line: `ADDR` (one host: `/32` or `/128`) or `ADDR/PREFIX` (a
    /// subnet). Host names and the other ADDRESS forms are refused: a node is an address.
    pub fn parse_node(node: &str) -> Result<Address, AddressError> {
        if node.contains('/') {
            return match Address::parse(node)? {
                a @ Address::Cidr { .. } => Ok(a),
                _ => Err(AddressError(format!("{node:?} is not an IP address or ADDR/PREFIX"))),
            };
        }
        let ip: IpAddr = node.parse().map_err(|_| AddressError(format!("{node:?} is not an IP address")))?;
        Ok(Address::Cidr { addr: ip, prefix: if ip.is_ipv4() { 32 } else { 128 }, zone: None })
    }

    /// The first and last address of a CIDR entry (host bits masked away); `None` for the other forms.
    pub fn ends(&self) -> Option<[IpAddr; 2]> {
        let Address::Cidr { addr, prefix, .. } = self else { return None };
        Some(match addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from((*prefix).min(32))).unwrap_or(0);
                let first = u32::from(*v4) & mask;
                [IpAddr::V4(first.into()), IpAddr::V4((first | !mask).into())]
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from((*prefix).min(128))).unwrap_or(0);
                let first = u128::from(*v6) & mask;
                [IpAddr::V6(first.into()), IpAddr::V6((first | !mask).into())]
            }
        })
    }

    /// Whether two ADDRESS fields may admit a common client: `true` when it cannot be told without outside
    /// facts (host names, `samehost`, `samenet`). `None` stands for a local record (no address) and always
    /// overlaps. A CIDR range overlaps another entry when one of its ends is (possibly) admitted by it.
    pub fn may_overlap(a: Option<&Address>, b: Option<&Address>) -> bool {
        let (Some(a), Some(b)) = (a, b) else { return true };
        match (a.ends(), b.ends()) {
            (Some(ea), Some(eb)) => {
                ea.iter().any(|ip| b.admits(*ip) != Some(false)) || eb.iter().any(|ip| a.admits(*ip) != Some(false))
            }
            _ => true,
        }
    }

    /// The text for a new record: one field, or two for [`Address::Netmask`].
    pub(crate) fn fields(&self) -> Vec<String> {
        let zone = |z: &Option<String>| z.as_ref().map(|z| format!("%{z}")).unwrap_or_default();
        match self {
            Address::All => vec!["all".into()],
            Address::SameHost => vec!["samehost".into()],
            Address::SameNet => vec!["samenet".into()],
            Address::Cidr { addr, prefix, zone: z } => vec![format!("{addr}{}/{prefix}", zone(z))],
            Address::Netmask { addr, mask, zone: z } => vec![format!("{addr}{}", zone(z)), mask.to_string()],
            Address::Hostname { name } => vec![name.clone()],
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fields().join(" "))
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        Address::parse(s)
    }
}

/// Reads the first ADDRESS token. Errors are the server's messages.
pub(crate) fn parse_first_field(text: &str, quoted: bool) -> Result<FirstField, String> {
    if !quoted {
        match text {
            "all" => return Ok(FirstField::Done(Address::All)),
            "samehost" => return Ok(FirstField::Done(Address::SameHost)),
            "samenet" => return Ok(FirstField::Done(Address::SameNet)),
            _ => {}
        }
    }
    let (host, bits) = match text.split_once('/') {
        Some((h, b)) => (h, Some(b)),
        None => (text, None),
    };
    match (numeric_host(host), bits) {
        (Some((addr, zone)), Some(bits)) => match cidr_bits(bits, addr.is_ipv4()) {
            Some(prefix) => Ok(FirstField::Done(Address::Cidr { addr, prefix, zone })),
            None => Err(format!("invalid CIDR mask in address \"{text}\"")),
        },
        (Some((addr, zone)), None) => Ok(FirstField::NeedsMask(addr, zone)),
        // getaddrinfo says EAI_NONAME, so the server takes it for a host name.
        (None, Some(_)) => Err(format!("specifying both host name and CIDR mask is invalid: \"{text}\"")),
        (None, None) => Ok(FirstField::Done(Address::Hostname { name: host.to_string() })),
    }
}

pub(crate) fn with_netmask(addr: IpAddr, zone: Option<String>, mask_text: &str) -> Result<Address, String> {
    let Some((mask, _)) = numeric_host(mask_text) else {
        // glibc's gai_strerror(EAI_NONAME), which the server appends.
        return Err(format!("invalid IP mask \"{mask_text}\": Name or service not known"));
    };
    if mask.is_ipv4() != addr.is_ipv4() {
        return Err("IP address and mask do not match".to_string());
    }
    Ok(Address::Netmask { addr, mask, zone })
}

/// `getaddrinfo(AI_NUMERICHOST)` as glibc does it: IPv4 through `inet_aton` (so `127.1` and `0x7f000001`
/// are addresses), then IPv6 with an optional `%zone`.
pub(crate) fn numeric_host(s: &str) -> Option<(IpAddr, Option<String>)> {
    if let Some(v4) = inet_aton(s) {
        return Some((IpAddr::V4(v4), None));
    }
    let (addr, zone) = match s.split_once('%') {
        Some((a, z)) if !z.is_empty() => (a, Some(z.to_string())),
        Some(_) => return None,
        None => (s, None),
    };
    Ipv6Addr::from_str(addr).ok().map(|a| (IpAddr::V6(a), zone))
}

/// BSD `inet_aton`: one to four parts, each decimal, octal (leading 0) or hex (0x); the last part fills the
/// remaining bytes.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(4);
    for p in &parts {
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        // "0x" alone is 0 in inet_aton; an empty part is not.
        if p.is_empty() || (digits.is_empty() && radix != 16) {
            return None;
        }
        let v = if digits.is_empty() { 0 } else { u64::from_str_radix(digits, radix).ok()? };
        if !digits.chars().all(|c| c.is_digit(radix)) || v > u64::from(u32::MAX) {
            return None;
        }
        values.push(v as u32);
    }
    let (last, head) = values.split_last()?;
    if head.iter().any(|&v| v > 255) {
        return None;
    }
    let limit: u64 = 1 << (8 * (4 - head.len()));
    if u64::from(*last) >= limit && head.len() < 4 {
        return None;
    }
    let mut n: u32 = 0;
    for (k, v) in head.iter().enumerate() {
        n |= v << (24 - 8 * k);
    }
    Some(Ipv4Addr::from(n | last))
}

/// `pg_sockaddr_cidr_mask`: `strtol` semantics (leading blanks and a sign allowed, nothing after the digits).
fn cidr_bits(s: &str, ipv4: bool) -> Option<u8> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = digits.bytes().fold(0u64, |acc, b| acc.saturating_mul(10).saturating_add(u64::from(b - b'0')));
    let max = if ipv4 { 32 } else { 128 };
    if (negative && value != 0) || value > max {
        return None;
    }
    Some(value as u8)
}

fn prefix_mask(ipv4: bool, prefix: u8) -> u128 {
    let width = if ipv4 { 32 } else { 128 };
    let ones = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
    if width == 32 { ones >> 96 } else { ones }
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// `pg_range_sockaddr`: same family and equal under the mask.
pub(crate) fn in_net(client: IpAddr, net: IpAddr, mask: u128) -> bool {
    client.is_ipv4() == net.is_ipv4() && (bits(client) ^ bits(net)) & mask == 0
}

/// The mask of an interface with `prefix` bits, for samenet.
pub(crate) fn interface_mask(addr: IpAddr, prefix: u8) -> u128 {
    prefix_mask(addr.is_ipv4(), prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(s: &str) -> Result<Address, String> {
        match parse_first_field(s, false)? {
            FirstField::Done(a) => Ok(a),
            FirstField::NeedsMask(..) => Err("needs mask".into()),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_forms() {
        assert_eq!(first("127.0.0.1/32"), Ok(Address::Cidr { addr: ip("127.0.0.1"), prefix: 32, zone: None }));
        assert_eq!(first("::1/128"), Ok(Address::Cidr { addr: ip("::1"), prefix: 128, zone: None }));
        // strtol accepts a sign and leading zeros.
        assert_eq!(first("10.0.0.0/+08"), Ok(Address::Cidr { addr: ip("10.0.0.0"), prefix: 8, zone: None }));
        assert_eq!(first("10.0.0.0/-0"), Ok(Address::Cidr { addr: ip("10.0.0.0"), prefix: 0, zone: None }));
        assert_eq!(
            first("fe80::1%lo/64"),
            Ok(Address::Cidr { addr: ip("fe80::1"), prefix: 64, zone: Some("lo".into()) })
        );
        for bad in ["127.0.0.1/33", "::1/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "1.2.3.4/24/1"] {
            assert_eq!(first(bad), Err(format!("invalid CIDR mask in address \"{bad}\"")), "{bad}");
        }
        assert_eq!(
            first("999.1.1.1/32"),
            Err("specifying both host name and CIDR mask is invalid: \"999.1.1.1/32\"".into())
        );
        assert_eq!(
            first("samehost/24"),
            Err("specifying both host name and CIDR mask is invalid: \"samehost/24\"".into())
        );
    }

    #[test]
    fn names_and_keywords() {
        assert_eq!(first("all"), Ok(Address::All));
        assert_eq!(first("samehost"), Ok(Address::SameHost));
        assert_eq!(first("samenet"), Ok(Address::SameNet));
        assert_eq!(first("db.example.com"), Ok(Address::Hostname { name: "db.example.com".into() }));
        assert_eq!(first(".example.com"), Ok(Address::Hostname { name: ".example.com".into() }));
        // Not a valid dotted quad, so the server looks it up as a name.
        assert_eq!(first("999.1.1.1"), Ok(Address::Hostname { name: "999.1.1.1".into() }));
        assert!(matches!(parse_first_field("all", true), Ok(FirstField::Done(Address::Hostname { .. }))));
    }

    #[test]
    fn glibc_short_ipv4_forms_are_addresses() {
        assert_eq!(inet_aton("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("0x7f000001"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("10.1.256"), Some(Ipv4Addr::new(10, 1, 1, 0)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        for bad in ["256.0.0.1", "1..2", "1.2.3.4.5", "", "08", "1.2.3.256", "a.b.c.d", "1.2.65536"] {
            assert_eq!(inet_aton(bad), None, "{bad}");
        }
    }

    #[test]
    fn netmask_field() {
        assert_eq!(
            with_netmask(ip("127.0.0.1"), None, "255.0.0.0"),
            Ok(Address::Netmask { addr: ip("127.0.0.1"), mask: ip("255.0.0.0"), zone: None })
        );
        assert_eq!(with_netmask(ip("1.2.3.4"), None, "ffff::"), Err("IP address and mask do not match".into()));
        assert!(with_netmask(ip("1.2.3.4"), None, "trust").unwrap_err().starts_with("invalid IP mask \"trust\""));
    }

    #[test]
    fn matching_masks_host_bits_and_keeps_families_apart() {
        let net = first("10.0.0.1/24").unwrap();
        assert_eq!(net.admits(ip("10.0.0.200")), Some(true));
        assert_eq!(net.admits(ip("10.0.1.1")), Some(false));
        assert_eq!(net.admits(ip("::ffff:10.0.0.1")), Some(false));
        let mapped = first("::ffff:10.0.0.0/120").unwrap();
        assert_eq!(mapped.admits(ip("10.0.0.1")), Some(false));
        assert_eq!(first("0.0.0.0/0").unwrap().admits(ip("203.0.113.9")), Some(true));
        assert_eq!(first("::/0").unwrap().admits(ip("203.0.113.9")), Some(false));
        let odd = Address::Netmask { addr: ip("10.0.0.5"), mask: ip("255.0.255.255"), zone: None };
        assert_eq!(odd.admits(ip("10.99.0.5")), Some(true));
        assert_eq!(first("host.example").unwrap().admits(ip("10.0.0.1")), None);
    }

    #[test]
    fn public_parse_and_warnings() {
        assert_eq!(
            Address::parse("10.0.0.0  255.0.0.0"),
            Ok(Address::Netmask { addr: ip("10.0.0.0"), mask: ip("255.0.0.0"), zone: None })
        );
        assert!(Address::parse("10.0.0.1").unwrap_err().0.contains("10.0.0.1/32"));
        assert_eq!(
            Address::parse("1.2.3.4/40"),
            Err(AddressError("invalid CIDR mask in address \"1.2.3.4/40\"".into()))
        );
        for wide in ["all", "0.0.0.0/0", "::/0", "1.2.3.4 0.0.0.0"] {
            assert!(Address::parse(wide).unwrap().covers_everything(), "{wide}");
        }
        for narrow in ["127.0.0.1/32", "samenet", "samehost", ".example.com"] {
            assert!(!Address::parse(narrow).unwrap().covers_everything(), "{narrow}");
        }
        assert_eq!(Address::parse("fe80::1%eth0/64").unwrap().to_string(), "fe80::1%eth0/64");
    }
}
