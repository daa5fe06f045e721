//! Operating-system guesses from evidence the scan really has: the TTL of an ICMP echo reply
//! (systems start from 64, 128 or 255) and what services say about themselves in their
//! banners. No evidence gives `unknown`; a value is never invented.

use std::collections::HashMap;

use shared::report::{OsFamily, OsGuess};

/// Words in a banner that name a system, strongest first. Matched case-insensitively.
const BANNER_RULES: &[(&str, OsFamily, u8)] = &[
    ("openssh_for_windows", OsFamily::Windows, 90),
    ("microsoft-iis", OsFamily::Windows, 85),
    ("microsoft esmtp", OsFamily::Windows, 85),
    ("microsoft ftp", OsFamily::Windows, 85),
    ("microsoft-httpapi", OsFamily::Windows, 80),
    ("(win64)", OsFamily::Windows, 70),
    ("(win32)", OsFamily::Windows, 70),
    ("ubuntu", OsFamily::Linux, 85),
    ("debian", OsFamily::Linux, 85),
    ("raspbian", OsFamily::Linux, 85),
    ("(centos)", OsFamily::Linux, 80),
    ("(red hat)", OsFamily::Linux, 80),
    ("(fedora)", OsFamily::Linux, 80),
    ("(rocky linux)", OsFamily::Linux, 80),
    ("alpine", OsFamily::Linux, 60),
    ("freebsd", OsFamily::Bsd, 85),
    ("openbsd", OsFamily::Bsd, 85),
    ("netbsd", OsFamily::Bsd, 85),
    ("darwin", OsFamily::MacOs, 70),
    ("cisco", OsFamily::NetworkDevice, 80),
    ("mikrotik", OsFamily::NetworkDevice, 85),
    ("routeros", OsFamily::NetworkDevice, 85),
];

/// The initial TTL a reply most likely started from, and what that suggests.
fn ttl_rule(ttl: u8) -> (u8, OsFamily, u8) {
    match ttl {
        0..=64 => (64, OsFamily::Unix, 40),
        65..=128 => (128, OsFamily::Windows, 50),
        129..=255 => (255, OsFamily::NetworkDevice, 40),
    }
}

/// Families that a more specific one confirms: a Debian banner agrees with a TTL of 64.
fn agrees(general: OsFamily, specific: OsFamily) -> bool {
    general == specific
        || (general == OsFamily::Unix
            && matches!(specific, OsFamily::Linux | OsFamily::Bsd | OsFamily::MacOs))
}

/// Guesses from an ICMP reply TTL (if any) and the banners of open ports.
pub fn guess<'a>(ttl: Option<u8>, banners: impl IntoIterator<Item = (u16, &'a str)>) -> OsGuess {
    // (family, weight, evidence), one per observation that says something.
    let mut clues: Vec<(OsFamily, u8, String)> = Vec::new();
    if let Some(ttl) = ttl {
        let (initial, family, weight) = ttl_rule(ttl);
        clues.push((
            family,
            weight,
            format!("ICMP reply TTL {ttl} (initial {initial})"),
        ));
    }
    for (port, banner) in banners {
        let lower = banner.to_ascii_lowercase();
        if let Some(&(word, family, weight)) =
            BANNER_RULES.iter().find(|(word, ..)| lower.contains(word))
        {
            clues.push((
                family,
                weight,
                format!("port {port} banner mentions {word:?}: {banner}"),
            ));
        }
    }
    if clues.is_empty() {
        return OsGuess::unknown();
    }
    // Each family scores its own clues and the general ones it refines; the best wins.
    let families: Vec<OsFamily> = clues.iter().map(|c| c.0).collect();
    let score = |family: OsFamily| -> u32 {
        clues
            .iter()
            .filter(|c| agrees(c.0, family))
            .map(|c| u32::from(c.1))
            .sum()
    };
    let mut scores: HashMap<OsFamily, u32> = HashMap::new();
    for family in families {
        scores.insert(family, score(family));
    }
    let (&family, &best) = scores
        .iter()
        .max_by_key(|(family, score)| (**score, !matches!(family, OsFamily::Unix)))
        .expect("at least one clue");
    // Evidence against the winner lowers the confidence; agreement raises it, never to 100.
    let against: u32 = clues
        .iter()
        .filter(|c| !agrees(c.0, family))
        .map(|c| u32::from(c.1))
        .sum();
    let confidence = best.saturating_sub(against).clamp(10, 95);
    OsGuess {
        family,
        confidence: u8::try_from(confidence).unwrap_or(95),
        evidence: clues
            .into_iter()
            .map(|c| c.2)
            .take(shared::report::MAX_EVIDENCE)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_evidence_is_unknown() {
        let g = guess(None, [(80, "HTTP/1.1 200 OK | Server: nginx")]);
        assert_eq!(g, OsGuess::unknown());
    }

    #[test]
    fn ttl_buckets() {
        assert_eq!(guess(Some(64), []).family, OsFamily::Unix);
        assert_eq!(guess(Some(57), []).family, OsFamily::Unix);
        assert_eq!(guess(Some(128), []).family, OsFamily::Windows);
        assert_eq!(guess(Some(117), []).family, OsFamily::Windows);
        assert_eq!(guess(Some(255), []).family, OsFamily::NetworkDevice);
        let g = guess(Some(63), []);
        assert_eq!(g.evidence, ["ICMP reply TTL 63 (initial 64)"]);
        assert!(g.confidence < 50, "{}", g.confidence);
    }

    #[test]
    fn a_banner_refines_a_ttl_and_agreement_raises_confidence() {
        let ssh = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3";
        let banner_only = guess(None, [(22, ssh)]);
        assert_eq!(banner_only.family, OsFamily::Linux);
        let both = guess(Some(64), [(22, ssh)]);
        assert_eq!(both.family, OsFamily::Linux);
        assert!(both.confidence > banner_only.confidence);
        assert_eq!(both.evidence.len(), 2);
        assert!(both.evidence[1].contains("port 22"), "{:?}", both.evidence);
        let bsd = guess(Some(64), [(22, "SSH-2.0-OpenSSH_9.6 FreeBSD-20240104")]);
        assert_eq!(bsd.family, OsFamily::Bsd);
    }

    #[test]
    fn windows_evidence() {
        let g = guess(
            Some(128),
            [(80, "HTTP/1.1 200 OK | Server: Microsoft-IIS/10.0")],
        );
        assert_eq!(g.family, OsFamily::Windows);
        assert!(g.confidence >= 90, "{}", g.confidence);
        let g = guess(None, [(22, "SSH-2.0-OpenSSH_for_Windows_8.1")]);
        assert_eq!(g.family, OsFamily::Windows);
    }

    #[test]
    fn conflicting_evidence_lowers_confidence_and_keeps_all_evidence() {
        let clean = guess(None, [(22, "SSH-2.0-OpenSSH_9.2p1 Debian-2")]);
        let odd = guess(Some(128), [(22, "SSH-2.0-OpenSSH_9.2p1 Debian-2")]);
        assert_eq!(odd.family, OsFamily::Linux);
        assert!(odd.confidence < clean.confidence);
        assert_eq!(odd.evidence.len(), 2);
    }
}
