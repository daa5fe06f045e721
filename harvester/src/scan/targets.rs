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
    #[error(
        "target `{target}` includes {address}, outside the configured scope ({scope}); nothing was scanned"
    )]
    OutOfScope {
        target: String,
        address: IpAddr,
        scope: String,
    },
}

/// Every address in `addresses` must lie inside `scope`.
fn check_scope(
    target: &str,
    addresses: impl IntoIterator<Item = IpAddr>,
    scope: &[IpNet],
) -> Result<(), TargetError> {
    for address in addresses {
        if !scope.iter().any(|net| net.contains(&address)) {
            let scope = scope
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(TargetError::OutOfScope {
                target: target.to_string(),
                address,
                scope,
            });
        }
    }
    Ok(())
}

/// Checks the targets that need no name resolution, for config validation.
pub fn check_literal_scope(targets: &[String], scope: &[IpNet]) -> Result<(), TargetError> {
    for target in targets {
        let target = target.trim();
        if let Ok(ip) = target.parse::<IpAddr>() {
            check_scope(target, [ip], scope)?;
        } else if let Ok(net) = target.parse::<IpNet>() {
            check_scope(target, [net.network(), net.broadcast()], scope)?;
        }
    }
    Ok(())
}

/// Expands targets into a sorted address list; a name given as a target is kept as the host
/// name of the addresses it resolved to. With a `scope`, any address outside it fails the
/// whole expansion, before anything is scanned.
pub async fn expand(
    targets: &[String],
    scope: Option<&[IpNet]>,
) -> Result<BTreeMap<IpAddr, Option<String>>, TargetError> {
    let mut out = BTreeMap::new();
    for target in targets {
        let target = target.trim();
        if target.is_empty() {
            return Err(TargetError::Empty(target.to_string()));
        }
        if let Ok(ip) = target.parse::<IpAddr>() {
            if let Some(scope) = scope {
                check_scope(target, [ip], scope)?;
            }
            out.entry(ip).or_insert(None);
        } else if let Ok(net) = target.parse::<IpNet>() {
            if let Some(scope) = scope {
                check_scope(target, [net.network(), net.broadcast()], scope)?;
            }
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
            let addrs: Vec<_> = tokio::net::lookup_host((target, 0))
                .await
                .map_err(|source| TargetError::Resolve {
                    name: target.to_string(),
                    source,
                })?
                .collect();
            if let Some(scope) = scope {
                check_scope(target, addrs.iter().map(|a| a.ip()), scope)?;
            }
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
        let out = expand(&targets, None).await.unwrap();
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
        let err = expand(&["10.0.0.0/8".into()], None).await.unwrap_err();
        assert!(matches!(err, TargetError::TooLarge { .. }), "{err}");
        let err = expand(&["no-such-host.invalid".into()], None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }

    #[tokio::test]
    async fn nothing_outside_the_scope_is_touched() {
        // ::1 too: on some machines `localhost` resolves to both.
        let scope: Vec<IpNet> = vec![
            "192.0.2.0/24".parse().unwrap(),
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ];
        let ok = ["192.0.2.0/25", "127.0.0.1", "localhost"].map(String::from);
        let expanded = expand(&ok, Some(&scope)).await.unwrap();
        assert!(
            expanded
                .keys()
                .all(|ip| scope.iter().any(|n| n.contains(ip)))
        );
        for (target, outside) in [
            ("198.51.100.7", "198.51.100.7"),
            ("192.0.2.0/23", "192.0.3.255"),
        ] {
            let targets = vec!["127.0.0.1".to_string(), target.to_string()];
            let err = expand(&targets, Some(&scope)).await.unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, TargetError::OutOfScope { .. }), "{message}");
            assert!(
                message.contains(outside) && message.contains("192.0.2.0/24"),
                "{message}"
            );
            assert!(check_literal_scope(&targets, &scope).is_err());
        }
    }
}
