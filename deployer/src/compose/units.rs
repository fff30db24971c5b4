//! Compose value units: Go-style durations (`1m30s`), byte sizes (`512M`), CPU counts (`0.5`).

use serde::{Deserialize, Deserializer};

use super::model::Scalar;

/// A duration in nanoseconds, as the Engine API wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub i64);

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub i64);

/// CPUs in units of 1e-9 CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NanoCpus(pub i64);

pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a duration (examples: 500ms, 10s, 1m30s)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Ok(total.round() as i64)
}

pub fn parse_bytes(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a size (examples: 512M, 1G, 1048576)");
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, scale) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = digits.parse().map_err(|_| bad())?;
    if n < 0.0 {
        return Err(bad());
    }
    Ok((n * scale as f64).round() as i64)
}

pub fn parse_cpus(text: &str) -> Result<i64, String> {
    let n: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a CPU count (examples: 0.5, 2)"))?;
    if n <= 0.0 {
        return Err(format!("`{text}`: a CPU count must be positive"));
    }
    Ok((n * 1e9).round() as i64)
}

macro_rules! scalar_unit {
    ($ty:ident, $parse:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let Scalar(text) = Scalar::deserialize(d)?;
                $parse(&text).map($ty).map_err(serde::de::Error::custom)
            }
        }
    };
}

scalar_unit!(Duration, parse_duration);
scalar_unit!(Bytes, parse_bytes);
scalar_unit!(NanoCpus, parse_cpus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go_syntax() {
        assert_eq!(parse_duration("10s").unwrap(), 10_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ten seconds").is_err());
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("64kb").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn cpus_become_nanocpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert!(parse_cpus("0").is_err());
    }
}
