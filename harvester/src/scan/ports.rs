//! Port specifications: lists and ranges (`22,80,443,8000-8100`), the most common ports
//! (`top100`, `top1000`, as nmap ranks them), or `all` (1-65535). Items mix: `top100,8443`.

use std::fmt;
use std::str::FromStr;

/// A sorted, de-duplicated set of TCP ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec(Vec<u16>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid port specification `{spec}`: {reason} (expected e.g. `22,80,8000-8100`, `top100`, `top1000` or `all`; ports 1-65535)"
)]
pub struct PortSpecError {
    spec: String,
    reason: String,
}

impl PortSpec {
    pub fn ports(&self) -> &[u16] {
        &self.0
    }
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| PortSpecError {
            spec: spec.to_string(),
            reason,
        };
        let port = |s: &str| match s.trim().parse::<u16>() {
            Ok(0) => Err(fail("port 0 cannot be scanned".into())),
            Ok(p) => Ok(p),
            Err(_) => Err(fail(format!("`{}` is not a port number", s.trim()))),
        };
        let mut ports = Vec::new();
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(fail("empty item".into()));
            }
            let named = |n: usize| super::top_ports::TOP_PORTS[..n].iter().copied();
            match item.split_once('-') {
                _ if item.eq_ignore_ascii_case("all") => ports.extend(1..=u16::MAX),
                _ if item.eq_ignore_ascii_case("top100") => ports.extend(named(100)),
                _ if item.eq_ignore_ascii_case("top1000") => ports.extend(named(1000)),
                Some((a, b)) => {
                    let (a, b) = (port(a)?, port(b)?);
                    if a > b {
                        return Err(fail(format!("range {a}-{b} is reversed")));
                    }
                    ports.extend(a..=b);
                }
                None => ports.push(port(item)?),
            }
        }
        ports.sort_unstable();
        ports.dedup();
        Ok(Self(ports))
    }
}

/// Canonical form: ranges collapsed, e.g. `22,80-82`.
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            while i + 1 < self.0.len() && self.0[i + 1] == self.0[i] + 1 {
                i += 1;
            }
            let sep = if start == self.0[0] { "" } else { "," };
            match self.0[i] {
                end if end == start => write!(f, "{sep}{start}")?,
                end => write!(f, "{sep}{start}-{end}")?,
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        let spec: PortSpec = "443, 22,80-82,81".parse().unwrap();
        assert_eq!(spec.ports(), &[22, 80, 81, 82, 443]);
        assert_eq!(spec.to_string(), "22,80-82,443");
        assert_eq!("1-65535".parse::<PortSpec>().unwrap().ports().len(), 65535);
        assert_eq!(
            "all".parse::<PortSpec>().unwrap(),
            "1-65535".parse::<PortSpec>().unwrap()
        );
        assert_eq!("ALL".parse::<PortSpec>().unwrap().to_string(), "1-65535");
    }

    #[test]
    fn named_lists_mix_with_numbers() {
        let top100: PortSpec = "top100".parse().unwrap();
        assert_eq!(top100.ports().len(), 100);
        assert!(
            [22, 80, 443, 3389]
                .iter()
                .all(|p| top100.ports().contains(p))
        );
        let top1000: PortSpec = "TOP1000".parse().unwrap();
        assert_eq!(top1000.ports().len(), 1000);
        assert!(top100.ports().iter().all(|p| top1000.ports().contains(p)));
        let mixed: PortSpec = "top100, 65000".parse().unwrap();
        assert_eq!(mixed.ports().len(), 101);
        assert_eq!("all,22".parse::<PortSpec>().unwrap().ports().len(), 65535);
    }

    proptest::proptest! {
        /// Any set of ports survives printing and parsing again, unchanged.
        #[test]
        fn display_round_trips(ports in proptest::collection::btree_set(1u16.., 0..300)) {
            proptest::prop_assume!(!ports.is_empty());
            let spec = PortSpec(ports.iter().copied().collect());
            let again: PortSpec = spec.to_string().parse().unwrap();
            proptest::prop_assert_eq!(again, spec);
        }

        /// A range parses to exactly its ports, whatever the spacing.
        #[test]
        fn ranges_are_inclusive(a in 1u16.., len in 0u16..2000) {
            let b = a.saturating_add(len);
            let spec: PortSpec = format!(" {a} - {b} ").parse().unwrap();
            proptest::prop_assert_eq!(spec.ports().len(), usize::from(b - a) + 1);
            proptest::prop_assert_eq!(spec.ports().first().copied(), Some(a));
            proptest::prop_assert_eq!(spec.ports().last().copied(), Some(b));
        }

        /// Garbage never panics; it either parses to valid ports or says why not.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
            match text.parse::<PortSpec>() {
                Ok(spec) => proptest::prop_assert!(spec.ports().iter().all(|&p| p > 0)),
                Err(e) => proptest::prop_assert!(e.to_string().contains("invalid port specification")),
            }
        }
    }

    #[test]
    fn refuses_nonsense_with_a_reason() {
        for (bad, reason) in [
            ("", "empty item"),
            ("22,,80", "empty item"),
            ("0", "port 0"),
            ("65536", "not a port number"),
            ("80-22", "reversed"),
            ("ssh", "not a port number"),
            ("1-2-3", "not a port number"),
        ] {
            let err = bad.parse::<PortSpec>().unwrap_err().to_string();
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }
}
