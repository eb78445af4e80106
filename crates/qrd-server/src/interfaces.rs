//! This machine's network interfaces, as the server enumerates them for pg_hba's `samehost` and `samenet`.

use std::net::IpAddr;

use qrd_conf::hba::Interface;

/// Each interface address with its prefix length; `None` when they cannot be listed (then an explanation
/// of pg_hba says what the answer would depend on instead of guessing).
pub fn interfaces() -> Option<Vec<Interface>> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    let mut out = Vec::new();
    for a in addrs {
        let (Some(addr), Some(mask)) = (a.address, a.netmask) else { continue };
        let (ip, prefix) = if let (Some(a4), Some(m4)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            (IpAddr::V4(a4.ip()), u32::from(m4.ip()).count_ones())
        } else if let (Some(a6), Some(m6)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            (IpAddr::V6(a6.ip()), u128::from(m6.ip()).count_ones())
        } else {
            continue;
        };
        out.push(Interface { addr: ip, prefix: prefix as u8 });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_among_them() {
        let all = super::interfaces().expect("getifaddrs works here");
        assert!(all.iter().any(|i| i.addr == std::net::IpAddr::from([127, 0, 0, 1]) && i.prefix == 8), "{all:?}");
    }
}
