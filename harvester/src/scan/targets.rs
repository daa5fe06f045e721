//! Scan targets: single addresses, CIDR ranges and host names, expanded to addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Refuse to expand more than this many addresses in one scan: a typo such as `/8` must not
/// turn into a sixteen-million-host sweep.
pub const MAX_ADDRESSES: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target `{0}` is empty")]
    Empty(String),
    #[error("target `{target}` expands to more than {MAX_ADDRESSES} addresses; narrow the range")]
    TooLarge { target: String },
    #[error("cannot resolve host name `{name}`: {source}")]
    Resolve {
        name: String,
        source: std::io::Error,
    },
}

/// Expands targets into a sorted address list; a name given as a target is kept as the host
/// name of the addresses it resolved to.
pub async fn expand(targets: &[String]) -> Result<BTreeMap<IpAddr, Option<String>>, TargetError> {
    let mut out = BTreeMap::new();
    for target in targets {
        let target = target.trim();
        if target.is_empty() {
            return Err(TargetError::Empty(target.to_string()));
        }
        if let Ok(ip) = target.parse::<IpAddr>() {
            out.entry(ip).or_insert(None);
        } else if let Ok(net) = target.parse::<IpNet>() {
            let count = net.hosts().take(MAX_ADDRESSES + 1).count();
            if count > MAX_ADDRESSES || out.len() + count > MAX_ADDRESSES {
                return Err(TargetError::TooLarge {
                    target: target.to_string(),
                });
            }
            for ip in net.hosts() {
                out.entry(ip).or_insert(None);
            }
        } else {
            let addrs = tokio::net::lookup_host((target, 0))
                .await
                .map_err(|source| TargetError::Resolve {
                    name: target.to_string(),
                    source,
                })?;
            for addr in addrs {
                out.insert(addr.ip(), Some(target.to_string()));
            }
        }
    }
    if out.len() > MAX_ADDRESSES {
        return Err(TargetError::TooLarge {
            target: targets.join(","),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expands_addresses_ranges_and_names() {
        let targets = ["127.0.0.1", "192.0.2.0/30", "localhost"].map(String::from);
        let out = expand(&targets).await.unwrap();
        let v4: Vec<_> = out
            .keys()
            .filter(|ip| ip.is_ipv4())
            .map(ToString::to_string)
            .collect();
        assert_eq!(v4, ["127.0.0.1", "192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            out[&"127.0.0.1".parse::<IpAddr>().unwrap()].as_deref(),
            Some("localhost")
        );
    }

    #[tokio::test]
    async fn refuses_huge_ranges_and_unknown_names() {
        let err = expand(&["10.0.0.0/8".into()]).await.unwrap_err();
        assert!(matches!(err, TargetError::TooLarge { .. }), "{err}");
        let err = expand(&["no-such-host.invalid".into()]).await.unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }
}
