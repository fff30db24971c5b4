//! The source-address pool: `--source-ips 127.0.0.2-127.0.0.60`, `10.0.0.1,10.0.0.2`,
//! `127.0.0.0/26`, or any comma-separated mix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// More would only waste memory: 65,536 addresses already give billions of ports.
const MAX_POOL: u128 = 65_536;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--source-ips {spec:?}: {what}; expected a list, range or CIDR such as 127.0.0.2-127.0.0.60, 10.0.0.1,10.0.0.2 or 127.0.0.0/26"
)]
pub struct SourceIpError {
    spec: String,
    what: String,
}

pub fn parse_source_ips(spec: &str) -> Result<Vec<IpAddr>, SourceIpError> {
    let err = |what: String| SourceIpError {
        spec: spec.to_string(),
        what,
    };
    let mut pool = Vec::new();
    for item in spec.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(err("empty item".into()));
        }
        let (first, last) = if let Some((net, bits)) = item.split_once('/') {
            cidr_hosts(net, bits).ok_or_else(|| err(format!("bad CIDR {item:?}")))?
        } else if let Some((a, b)) = item.split_once('-') {
            let a: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| err(format!("bad address {a:?}")))?;
            let b: IpAddr = b
                .trim()
                .parse()
                .map_err(|_| err(format!("bad address {b:?}")))?;
            (a, b)
        } else {
            let a: IpAddr = item
                .parse()
                .map_err(|_| err(format!("bad address {item:?}")))?;
            (a, a)
        };
        let (lo, hi) = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return Err(err(format!("{item:?} mixes IPv4 and IPv6"))),
        };
        if hi < lo {
            return Err(err(format!("{item:?} ends before it starts")));
        }
        if pool.len() as u128 + (hi - lo + 1) > MAX_POOL {
            return Err(err(format!("more than {MAX_POOL} addresses")));
        }
        for n in lo..=hi {
            pool.push(match first {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = pool.iter().find(|ip| !seen.insert(**ip)) {
        return Err(err(format!("{dup} is listed twice")));
    }
    Ok(pool)
}

/// Host addresses of a network; IPv4 prefixes up to /30 leave out the network and broadcast
/// addresses.
fn cidr_hosts(net: &str, bits: &str) -> Option<(IpAddr, IpAddr)> {
    let net: IpAddr = net.trim().parse().ok()?;
    let bits: u32 = bits.trim().parse().ok()?;
    match net {
        IpAddr::V4(a) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            let lo = u32::from(a) & mask;
            let hi = lo | !mask;
            let (lo, hi) = if bits <= 30 {
                (lo + 1, hi - 1)
            } else {
                (lo, hi)
            };
            Some((Ipv4Addr::from(lo).into(), Ipv4Addr::from(hi).into()))
        }
        IpAddr::V6(a) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            let lo = u128::from(a) & mask;
            Some((Ipv6Addr::from(lo).into(), Ipv6Addr::from(lo | !mask).into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_lists_and_cidrs() {
        let p = parse_source_ips("127.0.0.2-127.0.0.60").unwrap();
        assert_eq!(
            (p.len(), p[0], p[58]),
            (59, v4("127.0.0.2"), v4("127.0.0.60"))
        );
        let p = parse_source_ips("10.0.0.1, 10.0.0.9").unwrap();
        assert_eq!(p, vec![v4("10.0.0.1"), v4("10.0.0.9")]);
        let p = parse_source_ips("127.0.0.0/30").unwrap();
        assert_eq!(p, vec![v4("127.0.0.1"), v4("127.0.0.2")]);
        let p = parse_source_ips("127.0.0.8/32,127.0.1.0/31").unwrap();
        assert_eq!(p, vec![v4("127.0.0.8"), v4("127.0.1.0"), v4("127.0.1.1")]);
        assert_eq!(
            parse_source_ips("::1").unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn bad_specs_are_explained() {
        for (spec, needle) in [
            ("", "empty item"),
            ("127.0.0.9-127.0.0.2", "ends before"),
            ("127.0.0.1-::1", "mixes"),
            ("10.0.0.0/33", "bad CIDR"),
            ("10.0.0.0/8", "more than"),
            ("127.0.0.1,127.0.0.1", "listed twice"),
            ("localhost", "bad address"),
        ] {
            let e = parse_source_ips(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}
