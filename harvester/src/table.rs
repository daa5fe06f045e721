//! The human view of `harvester scan` (nmap style: open ports listed, the rest counted)
//! and of `harvester wan`.

use std::fmt::Write;

use shared::report::{Host, OsFamily, PortState, WanMeasurement};

/// One line per target: method, counts, loss and the round-trip statistics.
pub fn wan(measurements: &[WanMeasurement]) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let mut out = String::new();
    for m in measurements {
        let _ = writeln!(
            out,
            "{:<24} {:<4} sent {:>3} received {:>3} loss {:>5.1}%  min/median/avg/max/jitter {}/{}/{}/{}/{} ms{}",
            m.target,
            format!("{:?}", m.method).to_lowercase(),
            m.sent,
            m.received,
            m.loss_pct,
            ms(m.min_ms),
            ms(m.median_ms),
            ms(m.avg_ms),
            ms(m.max_ms),
            ms(m.jitter_ms),
            m.note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        );
    }
    out
}

pub fn render(hosts: &[Host]) -> String {
    let mut out = String::new();
    for host in hosts {
        let name = host
            .hostname
            .as_ref()
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let state = format!("{:?}", host.state).to_lowercase();
        let how = host.discovery.as_ref().map_or(String::new(), |d| {
            let method = format!("{:?}", d.method).to_lowercase();
            match d.rtt_ms {
                Some(rtt) => format!(" ({method} reply, {rtt:.2} ms)"),
                None => format!(" ({method} reply)"),
            }
        });
        let _ = writeln!(out, "{}{name}: host {state}{how}", host.address);
        if host.os.family != OsFamily::Unknown {
            let _ = writeln!(
                out,
                "  OS guess: {:?} ({}%): {}",
                host.os.family,
                host.os.confidence,
                host.os.evidence.join("; ")
            );
        }
        let shown: Vec<_> = host
            .ports
            .iter()
            .filter(|p| p.state == PortState::Open)
            .collect();
        let count = |s| host.ports.iter().filter(|p| p.state == s).count();
        let (closed, filtered) = (count(PortState::Closed), count(PortState::Filtered));
        if !shown.is_empty() {
            let _ = writeln!(out, "  {:<10} {:<9} BANNER", "PORT", "STATE");
            for p in shown {
                let port = format!("{}/tcp", p.port);
                let _ = writeln!(
                    out,
                    "  {port:<10} {:<9} {}",
                    "open",
                    p.banner.as_deref().unwrap_or("")
                );
            }
        }
        if closed + filtered > 0 {
            let _ = writeln!(out, "  not shown: {closed} closed, {filtered} filtered");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::report::{HostState, Port, Protocol};

    #[test]
    fn lists_open_ports_and_counts_the_rest() {
        let port = |port, state| Port {
            port,
            protocol: Protocol::Tcp,
            state,
            banner: None,
        };
        let host = Host {
            address: "127.0.0.1".parse().unwrap(),
            hostname: Some("localhost".into()),
            state: HostState::Up,
            discovery: None,
            os: shared::report::OsGuess {
                family: OsFamily::Linux,
                confidence: 85,
                evidence: vec!["port 22 banner mentions \"debian\"".into()],
            },
            ports: vec![
                port(22, PortState::Open),
                port(23, PortState::Closed),
                port(24, PortState::Filtered),
            ],
        };
        let text = render(&[host]);
        assert!(text.contains("127.0.0.1 (localhost): host up"), "{text}");
        assert!(text.contains("22/tcp"), "{text}");
        assert!(!text.contains("23/tcp"), "{text}");
        assert!(text.contains("1 closed, 1 filtered"), "{text}");
        assert!(text.contains("OS guess: Linux (85%)"), "{text}");
    }
}
