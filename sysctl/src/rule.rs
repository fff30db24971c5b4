//! How a current sysctl value is compared with the wanted one, and what `apply` writes.
//!
//! Values are compared field by field after splitting on whitespace, so `32768\t60999` equals
//! `32768 60999`. Each key has a [`Rule`]; [`Rule::default_for`] holds the built-in table and a
//! profile may override it with a `#% compare KEY RULE` directive.

use serde::Serialize;

use crate::key::Key;

/// The comparison applied to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Every field equal.
    Exact,
    /// Every field at least the wanted one (a larger limit is fine); apply writes the field-wise maximum.
    AtLeast,
    /// Every field at most the wanted one (a shorter timeout is fine); apply writes the field-wise minimum.
    AtMost,
    /// A `low high` range that must contain the wanted range; apply writes the union.
    Covers,
}

/// The outcome of comparing a current value with a wanted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// True when the current value satisfies the rule.
    pub ok: bool,
    /// Why the current value does not satisfy the rule.
    pub why_not: Option<String>,
    /// The value apply writes: never narrower than the current value where the rule allows.
    pub target: String,
}

impl Rule {
    /// The built-in rule for a key: limits and queue sizes are "at least", timeouts "at most",
    /// the port range "covers", everything else exact.
    pub fn default_for(key: &Key) -> Rule {
        match key.to_string().as_str() {
            "net.ipv4.ip_local_port_range" => Rule::Covers,
            "net.ipv4.tcp_fin_timeout" => Rule::AtMost,
            "net.core.somaxconn"
            | "net.ipv4.tcp_max_syn_backlog"
            | "net.core.netdev_max_backlog"
            | "fs.file-max"
            | "fs.nr_open"
            | "net.ipv4.tcp_rmem"
            | "net.ipv4.tcp_wmem"
            | "net.core.rmem_max"
            | "net.core.wmem_max"
            | "net.core.rmem_default"
            | "net.core.wmem_default"
            | "net.ipv4.tcp_max_tw_buckets"
            | "net.netfilter.nf_conntrack_max"
            | "net.nf_conntrack_max" => Rule::AtLeast,
            _ => Rule::Exact,
        }
    }

    const NAMES: [(Rule, &'static str); 4] = [
        (Rule::Exact, "exact"),
        (Rule::AtLeast, "at-least"),
        (Rule::AtMost, "at-most"),
        (Rule::Covers, "covers"),
    ];

    /// Parses a rule name as written in a profile directive.
    pub fn parse(text: &str) -> Option<Rule> {
        Rule::NAMES
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(rule, _)| *rule)
    }

    /// The name used in profile directives.
    pub fn name(self) -> &'static str {
        Rule::NAMES
            .iter()
            .find(|(rule, _)| *rule == self)
            .map_or("exact", |(_, name)| name)
    }

    /// The wanted value as shown in tables, e.g. `>= 65535` or `covers 10240-65535`.
    pub fn describe(self, wanted: &str) -> String {
        let fields = normalize(wanted);
        match self {
            Rule::Exact => fields,
            Rule::AtLeast => format!(">= {fields}"),
            Rule::AtMost => format!("<= {fields}"),
            Rule::Covers => format!("covers {}", fields.replace(' ', "-")),
        }
    }

    /// Compares `current` (as read, whitespace in any form) with `wanted`.
    pub fn compare(self, current: &str, wanted: &str) -> Comparison {
        let have: Vec<&str> = current.split_whitespace().collect();
        let want: Vec<&str> = wanted.split_whitespace().collect();
        let exact = || Comparison::exact(&have, &want);
        if self == Rule::Exact {
            return exact();
        }
        if have.len() != want.len() {
            return Comparison::not_ok(
                format!("has {} field(s), wanted {}", have.len(), want.len()),
                &want,
            );
        }
        let (Some(have_n), Some(want_n)) = (numbers(&have), numbers(&want)) else {
            return exact();
        };
        match self {
            Rule::Exact => unreachable!("handled above"),
            Rule::AtLeast => fieldwise(&have_n, &want_n, |h, w| h >= w, "below", i128::max),
            Rule::AtMost => fieldwise(&have_n, &want_n, |h, w| h <= w, "above", i128::min),
            Rule::Covers => covers(&have_n, &want_n),
        }
    }
}

impl Comparison {
    fn exact(have: &[&str], want: &[&str]) -> Comparison {
        if have == want {
            Comparison::ok(want.join("\t"))
        } else {
            Comparison::not_ok(
                format!("is {}, wanted {}", have.join(" "), want.join(" ")),
                want,
            )
        }
    }

    fn ok(target: String) -> Comparison {
        Comparison {
            ok: true,
            why_not: None,
            target,
        }
    }

    fn not_ok(why: String, target: &[impl ToString]) -> Comparison {
        Comparison {
            ok: false,
            why_not: Some(why),
            target: join(target),
        }
    }
}

/// Collapses any whitespace between fields into one space.
pub fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn join(fields: &[impl ToString]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\t")
}

fn numbers(fields: &[&str]) -> Option<Vec<i128>> {
    fields.iter().map(|f| f.parse().ok()).collect()
}

fn fieldwise(
    have: &[i128],
    want: &[i128],
    satisfied: fn(i128, i128) -> bool,
    word: &str,
    merge: fn(i128, i128) -> i128,
) -> Comparison {
    let merged: Vec<i128> = have.iter().zip(want).map(|(h, w)| merge(*h, *w)).collect();
    let failing: Vec<String> = have
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (h, w))| !satisfied(**h, **w))
        .map(|(i, (h, w))| match have.len() {
            1 => format!("{h} is {word} {w}"),
            _ => format!("field {} ({h}) is {word} {w}", i + 1),
        })
        .collect();
    if failing.is_empty() {
        Comparison::ok(join(have))
    } else {
        Comparison::not_ok(failing.join(", "), &merged)
    }
}

fn covers(have: &[i128], want: &[i128]) -> Comparison {
    let [h_low, h_high, w_low, w_high] = [have, want].concat()[..] else {
        return Comparison::not_ok("a range needs exactly two fields: low high".into(), want);
    };
    if h_low <= w_low && h_high >= w_high {
        Comparison::ok(join(have))
    } else {
        Comparison::not_ok(
            format!("{h_low}-{h_high} does not cover {w_low}-{w_high}"),
            &[h_low.min(w_low), h_high.max(w_high)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_accepts_a_larger_value_and_never_lowers_it() {
        let larger = Rule::AtLeast.compare("2466186\n", "2097152");
        assert!(larger.ok);
        assert_eq!(larger.target, "2466186");
        let smaller = Rule::AtLeast.compare("4096\n", "65535");
        assert!(!smaller.ok);
        assert_eq!(smaller.target, "65535");
        assert_eq!(smaller.why_not.as_deref(), Some("4096 is below 65535"));
    }

    #[test]
    fn at_least_is_field_wise_for_multi_value_keys() {
        let c = Rule::AtLeast.compare("4096\t131072\t33554432\n", "4096 87380 16777216");
        assert!(c.ok, "{c:?}");
        let c = Rule::AtLeast.compare("4096\t16384\t4194304\n", "4096 16384 16777216");
        assert!(!c.ok);
        assert_eq!(c.target, "4096\t16384\t16777216");
        assert_eq!(
            c.why_not.as_deref(),
            Some("field 3 (4194304) is below 16777216")
        );
    }

    #[test]
    fn at_most_accepts_a_shorter_timeout() {
        assert!(Rule::AtMost.compare("10", "15").ok);
        let c = Rule::AtMost.compare("60\n", "15");
        assert!(!c.ok);
        assert_eq!(c.target, "15");
    }

    #[test]
    fn covers_compares_ranges_and_writes_the_union() {
        assert!(Rule::Covers.compare("1024\t65535\n", "10240 65535").ok);
        let c = Rule::Covers.compare("32768\t60999\n", "10240 65535");
        assert!(!c.ok);
        assert_eq!(c.target, "10240\t65535");
        let c = Rule::Covers.compare("20000\t65535", "10240 60999");
        assert_eq!(c.target, "10240\t65535");
    }

    #[test]
    fn exact_ignores_whitespace_form_only() {
        assert!(Rule::Exact.compare("1\n", "1").ok);
        assert!(Rule::Exact.compare("a \t b\n", "a b").ok);
        let c = Rule::Exact.compare("2\n", "1");
        assert!(!c.ok);
        assert_eq!(c.target, "1");
    }

    #[test]
    fn field_count_mismatch_is_not_ok() {
        let c = Rule::AtLeast.compare("4096 87380", "4096 87380 16777216");
        assert!(!c.ok);
        assert_eq!(c.why_not.as_deref(), Some("has 2 field(s), wanted 3"));
        assert_eq!(c.target, "4096\t87380\t16777216");
    }

    #[test]
    fn non_numeric_values_fall_back_to_exact() {
        assert!(!Rule::AtLeast.compare("abc", "5").ok);
    }

    #[test]
    fn describe_shows_the_rule() {
        assert_eq!(Rule::AtLeast.describe("65535"), ">= 65535");
        assert_eq!(Rule::Covers.describe("10240\t65535"), "covers 10240-65535");
        assert_eq!(Rule::AtMost.describe("15"), "<= 15");
        assert_eq!(Rule::Exact.describe("1"), "1");
        for rule in [Rule::Exact, Rule::AtLeast, Rule::AtMost, Rule::Covers] {
            assert_eq!(Rule::parse(rule.name()), Some(rule));
        }
    }
}
