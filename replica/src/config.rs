//! What one replica process is told to do: parsed flag values, checked once at startup.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::mcp::Version;

/// The whole configuration of one serving process.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: String,
    pub tcp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub reuseport: bool,
    pub threads: usize,
    pub behaviour: Behaviour,
}

/// How requests are answered, independent of where the process listens.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub sse: bool,
    pub chunked: bool,
    pub delay: Delay,
    pub error_rate: f64,
    pub drop_rate: f64,
    pub max_conns: Option<usize>,
    pub max_message: usize,
    pub versions: AcceptVersions,
    pub seed: Option<u64>,
    /// An HTTP head must complete, and a body must make progress, within this time.
    pub read_timeout: Duration,
    /// A connection whose unsent output makes no progress for this long is closed.
    pub write_timeout: Duration,
    /// Reading stops while this many reply bytes wait to be sent.
    pub output_cap: usize,
    /// HTTP sessions unused for this long are forgotten (`None`: kept until DELETE).
    pub session_ttl: Option<Duration>,
    /// Answer Streamable HTTP requests that carry no `Mcp-Session-Id` without a session, as a
    /// stateless server does (no `initialize` needed).
    pub stateless: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            sse: false,
            chunked: false,
            delay: Delay::None,
            error_rate: 0.0,
            drop_rate: 0.0,
            max_conns: None,
            max_message: 16 * 1024 * 1024,
            versions: AcceptVersions::Erlmcp,
            seed: None,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            output_cap: 1024 * 1024,
            session_ttl: Some(Duration::from_secs(3600)),
            stateless: false,
        }
    }
}

/// Which `protocolVersion`s `initialize` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AcceptVersions {
    /// 2024-11-05 and 2025-11-25, as erlmcp.
    Erlmcp,
    /// Every published handshake version (adds 2025-03-26 and 2025-06-18).
    All,
}

impl AcceptVersions {
    pub fn accepts(self, v: Version) -> bool {
        match self {
            AcceptVersions::Erlmcp => matches!(v, Version::V2024_11_05 | Version::V2025_11_25),
            AcceptVersions::All => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AcceptVersions::Erlmcp => "erlmcp",
            AcceptVersions::All => "all",
        }
    }
}

/// Extra time before each request's reply is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    None,
    Fixed(Duration),
    /// Exponentially distributed with this mean.
    Exp(Duration),
    Uniform(Duration, Duration),
}

impl Delay {
    /// One delay drawn from the distribution; `unit` is uniform in [0, 1).
    pub fn sample(&self, unit: impl FnOnce() -> f64) -> Duration {
        match *self {
            Delay::None => Duration::ZERO,
            Delay::Fixed(d) => d,
            Delay::Exp(mean) => mean.mul_f64(-(1.0 - unit()).ln()),
            Delay::Uniform(lo, hi) => lo + (hi - lo).mul_f64(unit()),
        }
    }
}

impl FromStr for Delay {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let duration = |text: &str| {
            humantime::parse_duration(text.trim()).map_err(|e| {
                format!("bad duration {text:?} in --delay ({e}); write e.g. 5ms, exp:5ms or uniform:1ms..10ms")
            })
        };
        if s == "0" || s == "off" || s == "none" {
            return Ok(Delay::None);
        }
        if let Some(mean) = s.strip_prefix("exp:") {
            return Ok(Delay::Exp(duration(mean)?));
        }
        if let Some(range) = s.strip_prefix("uniform:") {
            let (lo, hi) = range.split_once("..").ok_or_else(|| {
                format!("--delay {s:?}: a uniform delay needs a range like uniform:1ms..10ms")
            })?;
            let (lo, hi) = (duration(lo)?, duration(hi)?);
            if lo > hi {
                return Err(format!(
                    "--delay {s:?}: the range's low end is above its high end; swap them"
                ));
            }
            return Ok(Delay::Uniform(lo, hi));
        }
        let fixed = duration(s)?;
        Ok(if fixed.is_zero() {
            Delay::None
        } else {
            Delay::Fixed(fixed)
        })
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = humantime::format_duration;
        match *self {
            Delay::None => f.write_str("0"),
            Delay::Fixed(d) => write!(f, "{}", h(d)),
            Delay::Exp(d) => write!(f, "exp:{}", h(d)),
            Delay::Uniform(lo, hi) => write!(f, "uniform:{}..{}", h(lo), h(hi)),
        }
    }
}

/// A probability flag value in [0, 1].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number; give a fraction between 0 and 1, e.g. 0.1"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!(
            "{rate} is outside [0, 1]; give a fraction, e.g. 0.1 for 10%"
        ));
    }
    Ok(rate)
}

/// A byte count: `16777216`, `64KiB`, `16MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count; write e.g. 65536, 64KiB or 16MiB"))?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KiB" | "k" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    let bytes = n
        .checked_mul(scale)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{s:?}: the size must be above zero"));
    }
    Ok(bytes)
}

/// A listener address, or `off`.
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    s.parse::<SocketAddr>()
        .map(|a| Listen(Some(a)))
        .map_err(|_| {
            format!("{s:?} is not an address; write IP:PORT (e.g. 127.0.0.1:5555, [::1]:0) or off")
        })
}

/// A parsed `--tcp` / `--http` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

/// A replica id goes into HTTP headers and metric labels: keep it to a safe alphabet.
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "replica id {id:?} must be 1-128 characters of letters, digits, '-', '_', '.', ':'; pass --id or set REPLICA_ID"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_and_print_back() {
        for text in ["5ms", "exp:5ms", "uniform:1ms..10ms"] {
            let d: Delay = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(d.to_string().parse::<Delay>().unwrap(), d);
        }
        assert_eq!("0".parse::<Delay>().unwrap(), Delay::None);
        assert_eq!("0ms".parse::<Delay>().unwrap(), Delay::None);
        assert!("uniform:10ms..1ms".parse::<Delay>().is_err());
        assert!("exp:fast".parse::<Delay>().is_err());
        assert!("uniform:1ms".parse::<Delay>().is_err());
    }

    #[test]
    fn delay_samples_stay_in_their_distribution() {
        let u = Delay::Uniform(Duration::from_millis(1), Duration::from_millis(10));
        assert_eq!(u.sample(|| 0.0), Duration::from_millis(1));
        assert_eq!(u.sample(|| 0.5), Duration::from_micros(5500));
        let e = Delay::Exp(Duration::from_millis(5));
        assert_eq!(e.sample(|| 0.0), Duration::ZERO);
        let median = e.sample(|| 0.5).as_secs_f64();
        assert!((median - 0.005 * std::f64::consts::LN_2).abs() < 1e-9);
    }

    #[test]
    fn byte_sizes_and_rates() {
        assert_eq!(parse_bytes("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("64KiB").unwrap(), 64 << 10);
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("12XB").is_err());
        assert_eq!(parse_rate("0.25").unwrap(), 0.25);
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("x").is_err());
    }

    #[test]
    fn ids_are_header_safe() {
        assert!(check_id("r1").is_ok());
        assert!(check_id("node-3.example:7").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("bad id").is_err());
        assert!(check_id("evil\r\nX: y").is_err());
    }

    #[test]
    fn listen_values() {
        assert_eq!(parse_listen("off").unwrap(), Listen(None));
        assert_eq!(
            parse_listen("127.0.0.1:0").unwrap(),
            Listen(Some("127.0.0.1:0".parse().unwrap()))
        );
        assert!(parse_listen("localhost:80").is_err());
    }
}
