//! The nester's own certificates: the CA, the ingest and web listeners' (and an operator's
//! web certificate), alerted on with under a quarter of their lifetime left.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::clock::human;
use crate::datadir::{DataDir, Listener};
use crate::db::alerts::{Raise, Severity};

use super::Verdicts;

pub const RULE: &str = "nester.certificate_expiring";

pub fn judge(dir: &DataDir, web_cert: Option<&Path>, now: i64, v: &mut Verdicts) {
    let mut files = vec![
        ("ca", dir.ca_cert()),
        ("ingest", dir.listener_cert(Listener::Ingest)),
    ];
    files.push((
        "web",
        web_cert.map_or_else(|| dir.listener_cert(Listener::Web), Path::to_path_buf),
    ));
    for (name, path) in files {
        let Some((start, end)) = CertificateDer::from_pem_file(&path)
            .ok()
            .and_then(|der| shared::identity::validity(&der))
        else {
            tracing::warn!(certificate = name, path = %path.display(), "cannot read a certificate's validity");
            continue;
        };
        let (start, end) = (start as i64 * 1000, end as i64 * 1000);
        if end - now >= (end - start) / 4 {
            continue;
        }
        let (severity, when) = if end <= now {
            (
                Severity::Critical,
                format!("expired {} ago", human(now - end)),
            )
        } else {
            (
                Severity::Warning,
                format!("expires in {}", human(end - now)),
            )
        };
        v.raise.push(Raise {
            rule: RULE,
            subject: format!("certificate:{name}"),
            site: None,
            probe_id: None,
            severity,
            summary: format!(
                "the nester's {name} certificate {when} ({})",
                path.display()
            ),
            details: serde_json::json!({"path": path, "not_after_ms": end}),
            count: 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid from `start` for `days`, PEM.
    fn cert(start: time::OffsetDateTime, days: i64) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = start;
        params.not_after = start + time::Duration::days(days);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_certificate_past_three_quarters_of_its_life_is_an_alert() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path());
        std::fs::create_dir_all(dir.ca_cert().parent().unwrap()).unwrap();
        let now = time::OffsetDateTime::now_utc();
        // The CA a tenth into its life, ingest at 80 %, web expired.
        std::fs::write(dir.ca_cert(), cert(now - time::Duration::days(10), 100)).unwrap();
        std::fs::write(
            dir.listener_cert(Listener::Ingest),
            cert(now - time::Duration::days(80), 100),
        )
        .unwrap();
        std::fs::write(
            dir.listener_cert(Listener::Web),
            cert(now - time::Duration::days(100), 90),
        )
        .unwrap();
        let mut v = Verdicts::default();
        judge(&dir, None, crate::clock::to_ms(now), &mut v);
        let found: Vec<_> = v
            .raise
            .iter()
            .map(|r| (r.subject.as_str(), r.severity))
            .collect();
        assert_eq!(
            found,
            [
                ("certificate:ingest", Severity::Warning),
                ("certificate:web", Severity::Critical)
            ]
        );
        // An operator's own web certificate is the one judged instead.
        let own = temp.path().join("own.pem");
        std::fs::write(&own, cert(now - time::Duration::days(1), 90)).unwrap();
        let mut v = Verdicts::default();
        judge(&dir, Some(&own), crate::clock::to_ms(now), &mut v);
        assert_eq!(v.raise.len(), 1, "only ingest now");
    }
}
