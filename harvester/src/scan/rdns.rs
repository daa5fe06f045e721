//! Host names by reverse DNS, through the system's resolver configuration (`getnameinfo`:
//! nsswitch, so `/etc/hosts`, and under `ip netns exec` the namespace's own
//! `/etc/netns/NAME/hosts`, count as they do for every other program). Each lookup is bounded
//! by a timeout; answers, including "no name", are cached for a while, so a site's scan every
//! few minutes does not ask its DNS server the same questions again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};

/// How long an answer is reused.
const CACHE_FOR: Duration = Duration::from_secs(600);
/// Lookups in flight at once: each one holds a blocking thread while the resolver works.
const PARALLEL: usize = 16;

/// An answer (a name or none) and when it was received.
type Cache = HashMap<IpAddr, (Option<String>, Instant)>;

#[derive(Clone, Default)]
pub struct ReverseDns {
    cache: Arc<Mutex<Cache>>,
}

impl ReverseDns {
    /// Names for `addresses`, in order; `None` where there is no name or no answer in time.
    pub async fn lookup_all(&self, addresses: &[IpAddr], timeout: Duration) -> Vec<Option<String>> {
        stream::iter(addresses.iter().copied())
            .map(|ip| self.lookup(ip, timeout))
            .buffered(PARALLEL)
            .collect()
            .await
    }

    pub async fn lookup(&self, ip: IpAddr, timeout: Duration) -> Option<String> {
        if let Some((name, at)) = self.cached(ip)
            && at.elapsed() < CACHE_FOR
        {
            return name;
        }
        let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip));
        let name = match tokio::time::timeout(timeout, lookup).await {
            Ok(Ok(Ok(name))) => sanitize(&name),
            Ok(Ok(Err(_))) => None,
            // A timeout is not cached: the next scan asks again.
            Ok(Err(_)) | Err(_) => return None,
        };
        self.lock().insert(ip, (name.clone(), Instant::now()));
        name
    }

    fn cached(&self, ip: IpAddr) -> Option<(Option<String>, Instant)> {
        self.lock().get(&ip).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A name as DNS may spell it, or nothing: a hostile PTR record must not smuggle control
/// characters or a megabyte into the report.
fn sanitize(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.');
    let ok = !name.is_empty()
        && name.len() <= shared::report::MAX_HOSTNAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_has_a_name_and_it_is_cached() {
        let dns = ReverseDns::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let name = dns.lookup(ip, Duration::from_secs(2)).await;
        assert!(
            name.is_some(),
            "/etc/hosts names 127.0.0.1 on every Debian system"
        );
        assert_eq!(dns.cached(ip).map(|c| c.0), Some(name));
    }

    #[test]
    fn hostile_names_are_dropped() {
        assert_eq!(sanitize("Gw.Example.NET."), Some("gw.example.net".into()));
        assert_eq!(sanitize("evil\u{1b}[31m.example"), None);
        assert_eq!(sanitize(&"a".repeat(300)), None);
        assert_eq!(sanitize(""), None);
    }
}
