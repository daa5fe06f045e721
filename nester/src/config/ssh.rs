//! `[ssh]` in `nester.toml`: the certificates the nester's SSH CAs issue. User certificates
//! for support engineers: which account names (principals) each role's certificates carry,
//! how long they last, whether they allow forwarding; and how long harvester boxes' host
//! certificates last.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};
use crate::db::Role;

/// The longest a user certificate may be asked for.
pub const MAX_VALIDITY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshConfig {
    /// Principals by role (`support`, `admin`): the accounts on harvester boxes a
    /// certificate opens (through `AuthorizedPrincipalsFile`). A role left out gets no
    /// certificates; `noc` never does.
    pub principals: BTreeMap<String, Vec<String>>,
    /// A certificate's lifetime unless the request asks for less or more (humantime).
    #[serde(deserialize_with = "duration")]
    pub validity: Duration,
    /// The most a request may ask for (at most 24 h).
    #[serde(deserialize_with = "duration")]
    pub max_validity: Duration,
    /// Agent and port forwarding allowed by user certificates.
    pub forwarding: bool,
    /// A harvester box's host certificate's lifetime (renewed by its harvester at two
    /// thirds).
    #[serde(deserialize_with = "duration")]
    pub host_validity: Duration,
    /// The hosts the host CA vouches for, as `known_hosts` patterns (`*` and `?`; e.g.
    /// `"*.boxes.example.net"`, `"10.20.*"`, `"[10.20.*]:2222"`): a box is certified only
    /// for its names and addresses that match, and support engineers' `@cert-authority` line
    /// trusts the CA for these alone (never `*`: a harvester could then be certified as any
    /// host on the internet). None: no host certificates.
    pub host_patterns: Vec<String>,
}

impl Default for SshConfig {
    fn default() -> Self {
        Self {
            principals: BTreeMap::from([
                ("support".into(), vec!["support".into()]),
                ("admin".into(), vec!["support".into(), "root".into()]),
            ]),
            validity: Duration::from_secs(3600),
            max_validity: Duration::from_secs(8 * 3600),
            forwarding: false,
            host_validity: Duration::from_secs(30 * 86_400),
            host_patterns: Vec::new(),
        }
    }
}

impl SshConfig {
    /// Whether the host CA vouches for `principal` (a bare name or address): a pattern
    /// matches it, its `[host]:port` form by its host part.
    pub fn vouches_for(&self, principal: &str) -> bool {
        self.host_patterns.iter().any(|pattern| {
            let host = pattern
                .strip_prefix('[')
                .and_then(|p| p.split_once("]:"))
                .map_or(pattern.as_str(), |(host, _)| host);
            glob(host.as_bytes(), principal.as_bytes())
        })
    }

    /// The principals `role` gets; none means no certificate.
    pub fn principals_of(&self, role: Role) -> &[String] {
        match role {
            Role::Noc => &[],
            other => self
                .principals
                .get(other.as_str())
                .map_or(&[], Vec::as_slice),
        }
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if self.max_validity > MAX_VALIDITY || self.max_validity < Duration::from_secs(60) {
            return Err(ConfigError::bound(
                "ssh.max_validity",
                "must be between 1m and 24h",
            ));
        }
        if self.validity < Duration::from_secs(60) || self.validity > self.max_validity {
            return Err(ConfigError::bound(
                "ssh.validity",
                "must be at least 1m and at most `ssh.max_validity`",
            ));
        }
        if self.host_validity < Duration::from_secs(3600)
            || self.host_validity > Duration::from_secs(366 * 86_400)
        {
            return Err(ConfigError::bound(
                "ssh.host_validity",
                "must be between 1h and 366d",
            ));
        }
        for pattern in &self.host_patterns {
            let ok = !pattern.is_empty()
                && pattern.len() <= 255
                && pattern.bytes().any(|b| b.is_ascii_alphanumeric())
                && pattern
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"*?.-:[]".contains(&b));
            if !ok {
                return Err(ConfigError::new(
                    "ssh.host_patterns",
                    format!(
                        "`ssh.host_patterns`: {pattern:?} is not a host pattern: write e.g. \
                     \"*.boxes.example.net\" or \"10.20.*\" (`*` alone would vouch for every host)"
                    ),
                ));
            }
        }
        for (role, names) in &self.principals {
            match role.as_str() {
                "support" | "admin" => {}
                "noc" => {
                    return Err(ConfigError::new(
                        "ssh.principals.noc",
                        "`ssh.principals`: the noc role gets no SSH certificates",
                    ));
                }
                other => {
                    return Err(ConfigError::new(
                        format!("ssh.principals.{other}"),
                        format!("`ssh.principals`: unknown role {other:?} (support or admin)"),
                    ));
                }
            }
            for name in names {
                let ok = !name.is_empty()
                    && name.len() <= 32
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !ok {
                    return Err(ConfigError::new(
                        format!("ssh.principals.{role}"),
                        format!(
                            "`ssh.principals.{role}`: {name:?} is not an account name \
                             (letters, digits, '.', '_', '-'; at most 32)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `*` (any run) and `?` (any one byte) against `text`, case-blind, as OpenSSH's
/// `match_pattern` does.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob(rest, text) || text.split_first().is_some_and(|(_, t)| glob(pattern, t))
        }
        (Some((b'?', rest)), Some((_, t))) => glob(rest, t),
        (Some((p, rest)), Some((c, t))) => p.eq_ignore_ascii_case(c) && glob(rest, t),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_and_noc_gets_nothing() {
        let config = SshConfig::default();
        config.check().unwrap();
        assert_eq!(config.principals_of(Role::Support), ["support"]);
        assert_eq!(config.principals_of(Role::Admin), ["support", "root"]);
        assert!(config.principals_of(Role::Noc).is_empty());
    }

    #[test]
    fn bad_settings_are_refused_saying_which() {
        let parse = |text: &str| -> Result<SshConfig, String> {
            let config: SshConfig = toml::from_str(text).map_err(|e| e.to_string())?;
            config.check().map(|()| config).map_err(|e| e.to_string())
        };
        assert!(
            parse("max_validity = \"25h\"")
                .unwrap_err()
                .contains("max_validity")
        );
        assert!(
            parse("validity = \"9h\"")
                .unwrap_err()
                .contains("ssh.validity")
        );
        assert!(
            parse("[principals]\nnoc = [\"x\"]")
                .unwrap_err()
                .contains("noc")
        );
        assert!(
            parse("[principals]\nguest = [\"x\"]")
                .unwrap_err()
                .contains("guest")
        );
        assert!(
            parse("[principals]\nsupport = [\"root,other\"]")
                .unwrap_err()
                .contains("account name")
        );
        for bad in [
            "host_patterns = [\"*\"]",
            "host_patterns = [\"a b\"]",
            "host_patterns = [\"\"]",
        ] {
            assert!(parse(bad).unwrap_err().contains("host_patterns"), "{bad}");
        }
        for bad in ["host_validity = \"30m\"", "host_validity = \"400d\""] {
            assert!(parse(bad).unwrap_err().contains("host_validity"), "{bad}");
        }
        let ok = parse("validity = \"30m\"\n[principals]\nsupport = [\"ops\"]").unwrap();
        assert_eq!(ok.principals_of(Role::Support), ["ops"]);
        assert!(ok.principals_of(Role::Admin).is_empty(), "left out: none");
    }

    #[test]
    fn the_host_ca_vouches_for_what_the_patterns_match_and_nothing_by_default() {
        assert!(!SshConfig::default().vouches_for("box.example.net"));
        let config = SshConfig {
            host_patterns: vec!["*.boxes.example.net".into(), "[10.20.?.*]:2222".into()],
            ..SshConfig::default()
        };
        config.check().unwrap();
        for yes in [
            "pos1.boxes.example.net",
            "A.Boxes.Example.NET",
            "10.20.3.44",
        ] {
            assert!(config.vouches_for(yes), "{yes}");
        }
        for no in [
            "boxes.example.net",
            "github.com",
            "10.20.33.1",
            "10.2.3.4",
            "x.boxes.example.net.evil",
        ] {
            assert!(!config.vouches_for(no), "{no}");
        }
    }
}
