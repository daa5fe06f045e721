//! nmap as the reference: runs `nmap -oX -` (in a namespace) and reads every host's state
//! and every port's state, including the ports nmap folds into `extraports`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;

use shared::report::PortState;

/// What nmap found: per address, `None` when down, else each scanned port's state.
#[derive(Debug, Default)]
pub struct NmapScan {
    pub hosts: BTreeMap<IpAddr, Option<BTreeMap<u16, PortState>>>,
    /// The ports nmap says it scanned (`scaninfo`), in order.
    pub scanned: Vec<u16>,
}

/// Runs `command` (an nmap invocation; `-oX -` is added) and parses what it prints.
pub fn run(mut command: Command) -> NmapScan {
    let out = command
        .args(["-v", "-oX", "-"])
        .output()
        .expect("nmap runs (Debian package nmap; tests/run installs it)");
    assert!(
        out.status.success(),
        "nmap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&String::from_utf8_lossy(&out.stdout)).expect("nmap XML parses")
}

fn state(text: &str) -> Result<PortState, String> {
    match text {
        "open" => Ok(PortState::Open),
        "closed" => Ok(PortState::Closed),
        "filtered" => Ok(PortState::Filtered),
        other => Err(format!(
            "nmap port state `{other}` has no connect-scan meaning"
        )),
    }
}

/// `1-3,7` → [1, 2, 3, 7].
fn port_list(text: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for item in text.split(',').filter(|i| !i.is_empty()) {
        let number = |s: &str| s.parse::<u16>().map_err(|e| format!("`{s}`: {e}"));
        match item.split_once('-') {
            Some((a, b)) => out.extend(number(a)?..=number(b)?),
            None => out.push(number(item)?),
        }
    }
    Ok(out)
}

pub fn parse(xml: &str) -> Result<NmapScan, String> {
    // nmap's output names its DTD; nothing in it is expanded.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).map_err(|e| e.to_string())?;
    let mut scan = NmapScan::default();
    for node in doc.descendants() {
        match node.tag_name().name() {
            "scaninfo" => scan.scanned = port_list(node.attribute("services").unwrap_or(""))?,
            "host" => {
                let address = node
                    .children()
                    .find(|n| n.has_tag_name("address") && n.attribute("addrtype") != Some("mac"))
                    .and_then(|n| n.attribute("addr"))
                    .ok_or("host without address")?;
                let address: IpAddr = address.parse().map_err(|e| format!("{address}: {e}"))?;
                let up = node
                    .children()
                    .find(|n| n.has_tag_name("status"))
                    .and_then(|n| n.attribute("state"))
                    == Some("up");
                if !up {
                    scan.hosts.insert(address, None);
                    continue;
                }
                let mut ports = BTreeMap::new();
                for p in node.descendants() {
                    if p.has_tag_name("port") {
                        let number = p.attribute("portid").ok_or("port without id")?;
                        let number = number.parse().map_err(|_| "bad port id")?;
                        let s = p
                            .children()
                            .find(|n| n.has_tag_name("state"))
                            .and_then(|n| n.attribute("state"))
                            .ok_or("port without state")?;
                        ports.insert(number, state(s)?);
                    } else if p.has_tag_name("extrareasons") {
                        let s = p
                            .parent()
                            .and_then(|e| e.attribute("state"))
                            .ok_or("extraports without state")?;
                        for number in port_list(p.attribute("ports").unwrap_or(""))? {
                            ports.insert(number, state(s)?);
                        }
                    }
                }
                scan.hosts.insert(address, Some(ports));
            }
            _ => {}
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ports_and_folded_ports() {
        let xml = r#"<?xml version="1.0"?><nmaprun>
<scaninfo type="connect" protocol="tcp" numservices="4" services="22,80-82"/>
<host><status state="up" reason="arp-response"/><address addr="10.0.0.2" addrtype="ipv4"/>
<address addr="AA:BB:CC:DD:EE:FF" addrtype="mac"/>
<ports><extraports state="closed" count="2"><extrareasons reason="conn-refused" count="2" proto="tcp" ports="80-81"/></extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/></port>
<port protocol="tcp" portid="82"><state state="filtered" reason="no-response"/></port></ports></host>
<host><status state="down" reason="no-response"/><address addr="10.0.0.3" addrtype="ipv4"/></host>
</nmaprun>"#;
        let scan = parse(xml).unwrap();
        assert_eq!(scan.scanned, [22, 80, 81, 82]);
        let up = scan.hosts[&"10.0.0.2".parse::<IpAddr>().unwrap()]
            .as_ref()
            .unwrap();
        assert_eq!(
            up.iter().map(|(p, s)| (*p, *s)).collect::<Vec<_>>(),
            [
                (22, PortState::Open),
                (80, PortState::Closed),
                (81, PortState::Closed),
                (82, PortState::Filtered)
            ]
        );
        assert!(scan.hosts[&"10.0.0.3".parse::<IpAddr>().unwrap()].is_none());
        assert!(parse("<nmaprun><host><status state=\"up\"/></host></nmaprun>").is_err());
    }
}
