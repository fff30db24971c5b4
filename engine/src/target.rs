//! Target URLs: `tcp://host:port`, `ws://host[:port][/path]`, `http://host[:port][/path]`.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::proto::{Target, Transport};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error(
        "target {url:?}: unknown scheme {scheme:?}; use tcp://host:port, ws://host:port/mcp/ws or http://host:port/mcp"
    )]
    Scheme { url: String, scheme: String },
    #[error(
        "target {url:?}: TLS ({scheme}) is not supported; point the engine at the plain-text port (http:// or ws://)"
    )]
    Tls { url: String, scheme: String },
    #[error(
        "target {url:?}: {what}; expected e.g. tcp://127.0.0.1:5555 or http://127.0.0.1:8080/mcp"
    )]
    Malformed { url: String, what: &'static str },
    #[error("target {url:?}: cannot resolve {host:?}: {reason}")]
    Resolve {
        url: String,
        host: String,
        reason: String,
    },
}

/// Parses and resolves one target URL (IPv4 preferred when a name has both families).
pub fn parse_target(url: &str) -> Result<Target, TargetError> {
    let malformed = |what| TargetError::Malformed {
        url: url.to_string(),
        what,
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| malformed("missing scheme://"))?;
    let (transport, default_port, default_path) = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => (Transport::Tcp, None, ""),
        "ws" => (Transport::WebSocket, Some(80), "/mcp/ws"),
        "http" => (Transport::Http, Some(80), "/mcp"),
        "https" | "wss" => {
            return Err(TargetError::Tls {
                url: url.to_string(),
                scheme: scheme.to_string(),
            });
        }
        _ => {
            return Err(TargetError::Scheme {
                url: url.to_string(),
                scheme: scheme.to_string(),
            });
        }
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(malformed("missing host"));
    }
    if authority.contains('@') {
        return Err(malformed("credentials in the URL are not supported"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| malformed("bad host:port"))?;
    let port = match (port, default_port) {
        (Some(p), _) => p,
        (None, Some(p)) => p,
        (None, None) => return Err(malformed("tcp:// needs a port")),
    };
    if transport == Transport::Tcp && !path.is_empty() && path != "/" {
        return Err(malformed("tcp:// takes no path"));
    }
    let path = if path.is_empty() || transport == Transport::Tcp {
        default_path
    } else {
        path
    };
    let addr = resolve(host, port).map_err(|reason| TargetError::Resolve {
        url: url.to_string(),
        host: host.to_string(),
        reason,
    })?;
    Ok(Target {
        transport,
        addr,
        host: authority.to_string(),
        path: path.to_string(),
        url: url.to_string(),
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some((host, port))
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| "no address".to_string())
}

/// Reads a targets file: one URL per line; blank lines and `#` comments ignored.
pub fn read_targets_file(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--targets-file {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_transport_defaults() {
        let t = parse_target("tcp://127.0.0.1:5555").unwrap();
        assert_eq!((t.transport, t.addr.port()), (Transport::Tcp, 5555));
        let t = parse_target("http://127.0.0.1").unwrap();
        assert_eq!(
            (t.transport, t.addr.port(), t.path.as_str()),
            (Transport::Http, 80, "/mcp")
        );
        let t = parse_target("ws://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.transport, t.path.as_str()),
            (Transport::WebSocket, "/mcp/ws")
        );
        let t = parse_target("http://127.0.0.1:8080/custom/path?x=1").unwrap();
        assert_eq!(
            (t.path.as_str(), t.host.as_str()),
            ("/custom/path?x=1", "127.0.0.1:8080")
        );
        let t = parse_target("http://[::1]:9000/mcp").unwrap();
        assert_eq!(t.addr, "[::1]:9000".parse().unwrap());
        let t = parse_target("tcp://localhost:5555").unwrap();
        assert!(t.addr.ip().is_loopback());
    }

    #[test]
    fn bad_urls_name_the_problem() {
        for (url, needle) in [
            ("127.0.0.1:5555", "missing scheme"),
            ("tcp://127.0.0.1", "needs a port"),
            ("tcp://127.0.0.1:5555/x", "takes no path"),
            ("http://:80/mcp", "bad host"),
            ("http://h:0/mcp", "bad host"),
            ("http://h:99999/mcp", "bad host"),
            ("ftp://h:1", "unknown scheme"),
            ("https://h/mcp", "TLS"),
            ("http://u:p@h/mcp", "credentials"),
            ("tcp://no-such-host.invalid:1", "cannot resolve"),
        ] {
            let e = parse_target(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }
}
