//! Port specifications: `22,80,443,8000-8100`, or `all` (1-65535).

use std::fmt;
use std::str::FromStr;

/// A sorted, de-duplicated set of TCP ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec(Vec<u16>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid port specification `{spec}`: {reason} (expected e.g. `22,80,8000-8100`, ports 1-65535)"
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
        if spec.trim().eq_ignore_ascii_case("all") {
            return Ok(Self((1..=u16::MAX).collect()));
        }
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
            if item.trim().is_empty() {
                return Err(fail("empty item".into()));
            }
            match item.split_once('-') {
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
