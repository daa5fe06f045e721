//! How a signed report is kept: losslessly, and small.
//!
//! A compact JWS is `header.payload.signature`, each part base64url. The header carries the
//! probe's certificate chain (about 1.5 KB that no compressor can shrink) and is the same for
//! every report a certificate signs; the payload is JSON that base64 hides from the compressor.
//! So a report is stored in parts ([`Encoding::Parts`]): the header once per certificate in
//! `jws_headers`, the payload decoded and LZ4-compressed, the signature as is. The exact bytes
//! received are rebuilt on read; a JWS that would not rebuild exactly (a trailing newline,
//! say) is kept whole instead ([`Encoding::Lz4`]). A 20-host report takes 1.5 KB instead of
//! 4.2 KB (the whole JWS compressed).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::{Connection, OptionalExtension, params};
use shared::jws::VerifiedReport;
use shared::report::Report;

use super::DbError;

/// A report ready to store: parsed, with its signer, the bytes received and the payload
/// decoded from them.
///
/// Only its constructors make one, so `payload` is always what the middle segment of `jws`
/// decodes to, by a strict decoder.
pub struct SignedReport {
    pub(super) report: Report,
    /// The signer certificate's SHA-256.
    pub(super) kid: String,
    /// The JWS exactly as received.
    pub(super) jws: Vec<u8>,
    /// The JWS payload, decoded (the verifier has it already).
    payload: Vec<u8>,
}

impl SignedReport {
    /// A report the verifier accepted, with the bytes it verified.
    pub fn verified(verified: VerifiedReport, jws: Vec<u8>) -> Self {
        Self {
            report: verified.report,
            kid: verified.kid,
            jws,
            payload: verified.payload,
        }
    }

    /// The JWS exactly as received.
    pub fn into_jws(self) -> Vec<u8> {
        self.jws
    }

    /// A report signed by the caller itself (tests, benchmarks): decodes the payload. The
    /// report is validated as the verifier would (history relies on its sorted lists).
    pub fn own(report: Report, kid: String, jws: Vec<u8>) -> Result<Self, shared::VerifyError> {
        report.validate()?;
        let payload = shared::jws::payload_unverified(&jws)?;
        Ok(Self {
            report,
            kid,
            jws,
            payload,
        })
    }
}

/// The `jws_encoding` of a stored report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The JWS as received (rows stored before compression existed).
    Identity,
    /// The whole JWS, LZ4-compressed with its size in front.
    Lz4,
    /// Header in `jws_headers`, payload decoded and LZ4-compressed in `jws`, signature in
    /// `jws_signature`.
    Parts,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Lz4 => "lz4",
            Self::Parts => "parts",
        }
    }

    fn parse(text: &str) -> Result<Self, DbError> {
        match text {
            "identity" => Ok(Self::Identity),
            "lz4" => Ok(Self::Lz4),
            "parts" => Ok(Self::Parts),
            other => Err(DbError::Corrupt(format!(
                "unknown report encoding `{other}`"
            ))),
        }
    }
}

/// A report in its stored form, computed on the caller's thread so the single writer only
/// copies bytes.
pub struct Stored {
    pub encoding: Encoding,
    /// `Parts`: the header segment and its SHA-256.
    pub header: Option<(String, [u8; 32])>,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

impl Stored {
    /// The parts of a report when they rebuild its JWS exactly, else the whole JWS.
    pub fn of(signed: &SignedReport) -> Self {
        Self::of_parts(&signed.jws, &signed.payload)
    }

    /// `payload` is what the middle segment of `jws` decodes to, as [`SignedReport`] keeps
    /// it.
    fn of_parts(jws: &[u8], payload: &[u8]) -> Self {
        match split(jws, payload) {
            Some((header, signature)) => Self {
                encoding: Encoding::Parts,
                header: Some((header.to_string(), sha256(header.as_bytes()))),
                signature: Some(signature.to_string()),
                body: lz4_flex::compress_prepend_size(payload),
            },
            None => Self {
                encoding: Encoding::Lz4,
                header: None,
                signature: None,
                body: lz4_flex::compress_prepend_size(jws),
            },
        }
    }

    /// Looks up the stored header of the probe's report (a read only); [`Header::id`] then
    /// adds it if new.
    pub fn header(&self, conn: &Connection, probe: &str) -> Result<Header<'_>, DbError> {
        let Some((header, digest)) = &self.header else {
            return Ok(Header::Whole);
        };
        let known = conn
            .prepare_cached(
                "SELECT header_id, first_sequence FROM jws_headers
                 WHERE probe_id = ?1 AND digest = ?2",
            )?
            .query_row(params![probe, &digest[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match known {
            Some((id, first_sequence)) => Header::Known { id, first_sequence },
            None => Header::New { header, digest },
        })
    }
}

/// Where a report's header is kept, as [`Stored::header`] found it.
pub enum Header<'a> {
    /// Not kept apart (`Encoding::Lz4`).
    Whole,
    Known {
        id: i64,
        first_sequence: i64,
    },
    /// The first report of a certificate.
    New {
        header: &'a str,
        digest: &'a [u8; 32],
    },
}

impl Header<'_> {
    /// Whether [`Header::id`] writes for a report of this sequence.
    pub fn writes(&self, sequence: i64) -> bool {
        match self {
            Self::Whole => false,
            Self::Known { first_sequence, .. } => sequence < *first_sequence,
            Self::New { .. } => true,
        }
    }

    /// The `jws_header_id` of the probe's report `sequence`: adds the header when it is new,
    /// and widens its range of sequences when `sequence` is below it. Every report but the
    /// first of a certificate leaves the header rows out of the commit.
    pub fn id(
        &self,
        conn: &Connection,
        probe: &str,
        sequence: i64,
    ) -> Result<Option<i64>, DbError> {
        match *self {
            Self::Whole => Ok(None),
            Self::Known { id, first_sequence } => {
                if sequence < first_sequence {
                    conn.prepare_cached(
                        "UPDATE jws_headers SET first_sequence = ?2 WHERE header_id = ?1",
                    )?
                    .execute(params![id, sequence])?;
                }
                Ok(Some(id))
            }
            Self::New { header, digest } => {
                conn.prepare_cached(
                    "INSERT INTO jws_headers (probe_id, digest, header, first_sequence)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![probe, &digest[..], header, sequence])?;
                Ok(Some(conn.last_insert_rowid()))
            }
        }
    }
}

/// Deletes the probe's headers that none of its reports uses any more.
pub fn forget_unused_headers(conn: &Connection, probe: &str) -> Result<(), DbError> {
    conn.prepare_cached(
        "DELETE FROM jws_headers AS h WHERE h.probe_id = ?1 AND NOT EXISTS
           (SELECT 1 FROM (SELECT id FROM report_sequences
                           WHERE probe_id = ?1 AND sequence >= h.first_sequence
                           UNION ALL
                           SELECT id FROM report_sequences_staged
                           WHERE probe_id = ?1 AND sequence >= h.first_sequence) s
              JOIN reports r ON r.id = s.id
            WHERE r.jws_header_id = h.header_id)",
    )?
    .execute([probe])?;
    Ok(())
}

/// `(header, signature)` when `jws` is exactly `header.base64url(payload).signature`.
///
/// `payload` came from a decoder that only accepts canonical base64url (no padding, no stray
/// trailing bits), so encoding it again gives back the middle segment: that is not done
/// (10 µs on a 26 KB report) but in debug builds.
fn split<'a>(jws: &'a [u8], payload: &[u8]) -> Option<(&'a str, &'a str)> {
    let (header, encoded, signature) = shared::jws::compact_parts(jws)?;
    let (header, signature) = (
        std::str::from_utf8(header).ok()?,
        std::str::from_utf8(signature).ok()?,
    );
    debug_assert_eq!(URL_SAFE_NO_PAD.encode(payload).as_bytes(), encoded);
    let canonical = encoded.len() == base64::encoded_len(payload.len(), false)?
        && !signature.contains(char::is_whitespace);
    canonical.then_some((header, signature))
}

/// The columns a stored report is read from, for a query over `reports r` joined to
/// `jws_headers h`.
pub const COLUMNS: &str = "r.jws_encoding, r.jws, h.header, r.jws_signature";
pub const JOIN: &str = "LEFT JOIN jws_headers h ON h.header_id = r.jws_header_id";

/// A stored report read back by [`COLUMNS`].
pub struct Row {
    encoding: Encoding,
    body: Vec<u8>,
    header: Option<String>,
    signature: Option<String>,
}

impl Row {
    pub fn read(row: &rusqlite::Row<'_>, at: usize) -> Result<Self, DbError> {
        Ok(Self {
            encoding: Encoding::parse(&row.get::<_, String>(at)?)?,
            body: row.get(at + 1)?,
            header: row.get(at + 2)?,
            signature: row.get(at + 3)?,
        })
    }

    /// The JWS exactly as received.
    pub fn jws(self) -> Result<Vec<u8>, DbError> {
        match self.encoding {
            Encoding::Identity => Ok(self.body),
            Encoding::Lz4 => decompress(&self.body),
            Encoding::Parts => {
                let (Some(header), Some(signature)) = (&self.header, &self.signature) else {
                    return Err(DbError::Corrupt(
                        "stored report has lost its header or signature".into(),
                    ));
                };
                let payload = decompress(&self.body)?;
                let mut jws = String::with_capacity(
                    header.len() + payload.len() * 4 / 3 + signature.len() + 4,
                );
                jws.push_str(header);
                jws.push('.');
                URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
                jws.push('.');
                jws.push_str(signature);
                Ok(jws.into_bytes())
            }
        }
    }

    /// The signed payload (the report's JSON), without rebuilding the JWS.
    pub fn payload(self) -> Result<Vec<u8>, DbError> {
        match self.encoding {
            Encoding::Parts => decompress(&self.body),
            _ => shared::jws::payload_unverified(&self.jws()?)
                .map_err(|e| DbError::Corrupt(format!("stored report: {e}"))),
        }
    }
}

fn decompress(body: &[u8]) -> Result<Vec<u8>, DbError> {
    lz4_flex::decompress_size_prepended(body)
        .map_err(|e| DbError::Corrupt(format!("stored report does not decompress: {e}")))
}

/// The key a header is stored under.
#[allow(clippy::expect_used, reason = "a SHA-256 digest is always 32 bytes")]
fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes long")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stored: &Stored) -> Row {
        Row {
            encoding: stored.encoding,
            body: stored.body.clone(),
            header: stored.header.as_ref().map(|(h, _)| h.clone()),
            signature: stored.signature.clone(),
        }
    }

    fn jws_of(payload: &[u8]) -> String {
        format!(
            "eyJhbGciOiJFZERTQSJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn a_canonical_jws_is_kept_in_parts_and_rebuilt_exactly() {
        let payload = br#"{"hosts":[{"address":"10.0.0.1"},{"address":"10.0.0.2"}]}"#;
        let jws = jws_of(payload);
        let stored = Stored::of_parts(jws.as_bytes(), payload);
        assert_eq!(stored.encoding, Encoding::Parts);
        assert_eq!(stored.header.as_ref().unwrap().0, "eyJhbGciOiJFZERTQSJ9");
        assert_eq!(row(&stored).jws().unwrap(), jws.as_bytes());
        assert_eq!(row(&stored).payload().unwrap(), payload);
    }

    /// Anything that would not come back byte for byte is kept whole.
    #[test]
    fn other_bytes_are_kept_whole() {
        let payload = br#"{"a":1}"#;
        let exact = jws_of(payload);
        for jws in [
            format!("{exact}\n"),
            format!("{exact}.extra"),
            "only.two".to_string(),
        ] {
            let stored = Stored::of_parts(jws.as_bytes(), payload);
            assert_eq!(stored.encoding, Encoding::Lz4, "{jws:?}");
            assert_eq!(row(&stored).jws().unwrap(), jws.as_bytes(), "{jws:?}");
        }
        let bytes = [0xff, b'.', b'a', b'.', b'b'];
        let stored = Stored::of_parts(&bytes, b"");
        assert_eq!(row(&stored).jws().unwrap(), bytes);
    }

    #[test]
    fn damage_is_reported_not_returned() {
        let mut stored = Stored::of_parts(jws_of(b"{}").as_bytes(), b"{}");
        stored.signature = None;
        assert!(matches!(row(&stored).jws(), Err(DbError::Corrupt(_))));
        assert!(Encoding::parse("gzip").is_err());
    }
}
