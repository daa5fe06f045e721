//! Walking the audit chain: every entry's hash recomputed from the one before, sequence
//! numbers without a gap, and the chain held against every signed checkpoint. The answer
//! names the first entry that is not what was written.

use super::checkpoint::{Checkpoint, hex};
use crate::db::audit::{GENESIS, RawEntry, chain_hash};

/// The chain holds: `entries` entries, checked against the checkpoint at `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: i64,
    /// The last checkpoint's sequence number and time, if there is one yet.
    pub checkpoint: Option<(i64, String)>,
}

/// The chain does not hold from entry `seq` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the audit log is broken at seq {}: {}",
            self.seq, self.reason
        )
    }
}

/// Checks `entries` (in `seq` order, as stored) against `checkpoints` (in file order), all of
/// which must be signed by `key` (hex). Read the checkpoints before the entries: a
/// checkpoint is only ever written of entries already committed.
pub fn verify(
    entries: &[RawEntry],
    checkpoints: &[Checkpoint],
    key: &str,
) -> Result<Verified, Broken> {
    let broken = |seq, reason: String| Err(Broken { seq, reason });
    for c in checkpoints {
        if !c.signed_by(key) {
            return broken(
                c.seq.max(1),
                format!(
                    "the checkpoint of {} (seq {}) is not signed by this nester's audit key {key}",
                    c.time, c.seq
                ),
            );
        }
    }
    let mut hashes = Vec::with_capacity(entries.len());
    let mut prev = GENESIS.to_vec();
    for (i, e) in entries.iter().enumerate() {
        let expected = i as i64 + 1;
        if e.seq != expected {
            return broken(
                expected,
                format!(
                    "entry {expected} is missing (the next one stored is {})",
                    e.seq
                ),
            );
        }
        let hash = chain_hash(&prev, &e.canonical());
        if hash.as_slice() != e.hash.as_slice() {
            return broken(
                e.seq,
                "its hash does not match its content and the entry before it: it was changed, \
                 or an entry before it was removed, inserted or moved"
                    .into(),
            );
        }
        prev = e.hash.clone();
        hashes.push(hash);
    }
    let last = entries.len() as i64;
    let mut matched = 0;
    for c in checkpoints {
        if c.seq > last {
            return broken(
                last + 1,
                format!(
                    "the log ends at seq {last} but the checkpoint of {} says it reached seq {}: \
                     entries {}..={} were removed",
                    c.time,
                    c.seq,
                    last + 1,
                    c.seq
                ),
            );
        }
        let at = match c.seq {
            0 => hex(&GENESIS),
            n => hex(&hashes[(n - 1) as usize]),
        };
        if at != c.head {
            return broken(
                matched + 1,
                format!(
                    "the chain differs from the checkpoint of {} at seq {} (it matched the one at \
                     seq {matched}): it was rebuilt somewhere in {}..={}",
                    c.time,
                    c.seq,
                    matched + 1,
                    c.seq
                ),
            );
        }
        matched = c.seq;
    }
    Ok(Verified {
        entries: last,
        checkpoint: checkpoints.last().map(|c| (c.seq, c.time.clone())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::CheckpointKey;
    use crate::db::audit::canonical;

    fn chain(n: i64) -> Vec<RawEntry> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let mut e = RawEntry {
                    seq,
                    at_ms: 1_000 * seq,
                    actor: "user:ana".into(),
                    action: "user.add".into(),
                    target: format!("user:u{seq}"),
                    source_ip: Some("192.0.2.1".into()),
                    details: "{}".into(),
                    hash: Vec::new(),
                };
                e.hash = chain_hash(&prev, &e.canonical()).to_vec();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn key() -> CheckpointKey {
        let temp = tempfile::tempdir().unwrap();
        let dir = crate::datadir::DataDir::new(temp.path());
        std::fs::create_dir_all(temp.path().join("pki")).unwrap();
        CheckpointKey::load_or_create(&dir).unwrap()
    }

    fn checkpoint(key: &CheckpointKey, entries: &[RawEntry], seq: i64) -> Checkpoint {
        let head = match seq {
            0 => GENESIS.to_vec(),
            n => entries[(n - 1) as usize].hash.clone(),
        };
        key.sign(seq, &head, &format!("t{seq}"))
    }

    fn first_bad(entries: &[RawEntry], cps: &[Checkpoint], key: &CheckpointKey) -> i64 {
        verify(entries, cps, &key.public()).unwrap_err().seq
    }

    #[test]
    fn an_intact_chain_verifies() {
        let k = key();
        let entries = chain(250);
        let cps = [checkpoint(&k, &entries, 100), checkpoint(&k, &entries, 250)];
        let ok = verify(&entries, &cps, &k.public()).unwrap();
        assert_eq!(ok.entries, 250);
        assert_eq!(ok.checkpoint, Some((250, "t250".into())));
        // Entries after the last checkpoint are fine: it is older than they are.
        assert!(verify(&chain(260), &cps, &k.public()).is_ok());
        assert!(verify(&[], &[], &k.public()).is_ok());
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_entry() {
        let k = key();
        let good = chain(300);
        let cps = [checkpoint(&k, &good, 100), checkpoint(&k, &good, 300)];

        // A flipped byte in a field.
        let mut flipped = good.clone();
        flipped[41].target.push('x');
        assert_eq!(first_bad(&flipped, &cps, &k), 42);
        let mut flipped = good.clone();
        flipped[9].hash[3] ^= 1;
        assert_eq!(first_bad(&flipped, &cps, &k), 10);

        // Deleted in the middle: a gap.
        let mut deleted = good.clone();
        deleted.remove(57);
        assert_eq!(first_bad(&deleted, &cps, &k), 58);
        // Deleted and renumbered to hide the gap: the hash breaks there.
        for (i, e) in deleted.iter_mut().enumerate().skip(57) {
            e.seq = i as i64 + 1;
        }
        assert_eq!(first_bad(&deleted, &cps, &k), 58);

        // Inserted, renumbering what follows.
        let mut inserted = good.clone();
        let mut extra = good[70].clone();
        extra.target = "user:mallory".into();
        inserted.insert(70, extra);
        for (i, e) in inserted.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert_eq!(first_bad(&inserted, &cps, &k), 71);

        // Two entries swapped (contents moved, numbers kept).
        let mut swapped = good.clone();
        swapped.swap(120, 121);
        swapped[120].seq = 121;
        swapped[121].seq = 122;
        assert_eq!(first_bad(&swapped, &cps, &k), 121);

        // A tail cut by k entries, for every k: shorter than the last checkpoint.
        for cut in 1..=300 {
            let tail_cut = &good[..300 - cut];
            assert_eq!(first_bad(tail_cut, &cps, &k), 301 - cut as i64, "cut {cut}");
        }
        // The whole table emptied.
        assert_eq!(first_bad(&[], &cps, &k), 1);

        // Rebuilt from genesis, consistently, with one entry changed: the checkpoints disagree.
        let mut rebuilt = good.clone();
        rebuilt[149].actor = "user:nobody".into();
        let mut prev = GENESIS.to_vec();
        for e in &mut rebuilt {
            e.hash = chain_hash(&prev, &e.canonical()).to_vec();
            prev = e.hash.clone();
        }
        let broken = verify(&rebuilt, &cps, &k.public()).unwrap_err();
        assert_eq!(broken.seq, 101, "{broken}");
        assert!(broken.reason.contains("101..=300"), "{broken}");
        // ...and re-signed with another key: refused for the signature.
        let other = key();
        let forged = [
            checkpoint(&other, &rebuilt, 100),
            checkpoint(&other, &rebuilt, 300),
        ];
        let broken = verify(&rebuilt, &forged, &k.public()).unwrap_err();
        assert!(broken.reason.contains("not signed"), "{broken}");
        // A checkpoint edited after signing.
        let mut edited = cps;
        edited[1].seq = 299;
        assert!(
            verify(&good, &edited, &k.public())
                .unwrap_err()
                .reason
                .contains("not signed")
        );
    }

    #[test]
    fn the_canonical_form_is_fixed() {
        // Changing it would break every stored chain: this is the format, byte for byte.
        assert_eq!(
            String::from_utf8(canonical(
                7,
                1_000,
                "user:ana",
                "user.add",
                "user:bo",
                None,
                "{\"role\":\"noc\"}"
            ))
            .unwrap(),
            r#"[7,1000,"user:ana","user.add","user:bo",null,"{\"role\":\"noc\"}"]"#
        );
    }
}
