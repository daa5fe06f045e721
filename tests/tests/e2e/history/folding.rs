//! Staged keys folded into the history: every read answers the same before and after.

use seahawks_tests::synthetic::{SimProbe, wan};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::harness::{Probe, TestNester};

async fn get_all(nester: &TestNester, paths: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for path in paths {
        all.push(get_ok(nester, path).await);
    }
    all
}

/// Whether this report key is still staged. A fold is one transaction and only ever moves
/// keys out, so if it is, every step since the report was stored saw the staged tables.
fn still_staged(nester: &TestNester, probe: &Probe, sequence: u64) -> bool {
    nester.scalar(&format!(
        "SELECT count(*) FROM report_sequences_staged
          WHERE probe_id = '{}' AND sequence = {sequence}",
        probe.id
    )) == 1
}

/// The writer folds after a pause of [`nester::db::FOLD_IDLE`], and a loaded machine can
/// pause a test that long between two steps. A step that must see staged keys checks
/// [`still_staged`] after it and is tried again, this many times in all.
const STAGED_ATTEMPTS: usize = 4;

fn history_reads(probe: &Probe, times: &[OffsetDateTime]) -> Vec<String> {
    vec![
        format!("/api/v1/probes/{}/reports?limit=3", probe.id),
        format!(
            "/api/v1/probes/{}/reports?from={}&to={}",
            probe.id,
            at(times[1]),
            at(times[3])
        ),
        format!(
            "/api/v1/probes/{}/wan?from={}&to={}",
            probe.id,
            at(times[0] - Duration::hours(1)),
            at(times[3] + Duration::hours(1))
        ),
        format!("/api/v1/probes/{}", probe.id),
    ]
}

/// New report keys and WAN samples are staged in small tables and folded into the large
/// ones (nester/src/db/staging.rs): every read answers the same from either, a sequence is
/// refused when taken in either, and a pause in ingest folds.
#[tokio::test]
async fn reads_are_the_same_before_and_after_keys_are_folded() {
    let staged = |n: &TestNester| {
        (
            n.count("report_sequences_staged"),
            n.count("wan_samples_staged"),
        )
    };
    let folded = |n: &TestNester| (n.count("report_sequences"), n.count("wan_samples"));

    // Reads while all four reports' keys are staged.
    let mut attempt = 0;
    let (mut nester, probe, mut sim, times, before) = loop {
        attempt += 1;
        let nester = TestNester::start().await;
        let probe = nester.probe().await;
        let (sim, times) = four_reports(&nester, &probe).await;
        assert_eq!(folded(&nester).0 + staged(&nester).0, 4);
        let before = get_all(&nester, &history_reads(&probe, &times)).await;
        if staged(&nester) == (4, 4) {
            break (nester, probe, sim, times, before);
        }
        assert!(
            attempt < STAGED_ATTEMPTS,
            "ingest writes staged keys, which stay until a pause (or a pause came in every attempt)"
        );
    };
    let reads = history_reads(&probe, &times);
    assert_eq!(folded(&nester), (0, 0));
    assert_eq!(before[0]["items"].as_array().unwrap().len(), 3);
    assert_eq!(before[2]["points"].as_array().unwrap().len(), 4);

    nester.restart().await;
    assert_eq!(staged(&nester), (0, 0), "opening the database folds");
    assert_eq!(folded(&nester), (4, 4));
    let after = get_all(&nester, &reads).await;
    for (path, (b, a)) in reads.iter().zip(before.iter().zip(&after)) {
        assert_eq!(b, a, "{path}");
    }

    // A sequence is taken whether its key is folded (2) or staged (the newest report's).
    let refused = |sim: &mut SimProbe, sequence: u64| {
        let mut again = sim.report(ms(OffsetDateTime::now_utc()), vec![]);
        again.sequence = sequence;
        let jws = probe.signer().sign_report(&again).unwrap();
        let db = nester.db();
        async move {
            let outcome = store(db, again, jws).await;
            assert_eq!(
                outcome,
                nester::db::Inserted::ConflictingSequence,
                "sequence {sequence}"
            );
        }
    };
    refused(&mut sim, 2).await;
    let sample = || vec![wan("192.0.2.1", 10, 10, Some((20.0, 21.0, 22.0)))];
    let mut newest = 0;
    for attempt in 1..=STAGED_ATTEMPTS {
        let fresh = sim.report(ms(OffsetDateTime::now_utc()), sample());
        newest = fresh.sequence;
        nester.deliver(&probe, &fresh).await;
        refused(&mut sim, newest).await;
        if still_staged(&nester, &probe, newest) {
            break;
        }
        assert!(attempt < STAGED_ATTEMPTS, "a pause came in every attempt");
    }
    let latest = get_ok(&nester, &format!("/api/v1/probes/{}/reports", probe.id)).await;
    assert_eq!(latest["items"][0]["sequence"], newest);

    // A late report with the time of the second: stored, but its WAN sample is one the
    // folded table has, so it stays out of the staged one.
    let late_sample = || {
        nester.scalar(&format!(
            "SELECT count(*) FROM wan_samples_staged WHERE at_ms = {}",
            times[1].unix_timestamp_nanos() / 1_000_000
        ))
    };
    let mut lates = 0;
    for attempt in 1..=STAGED_ATTEMPTS {
        let late = sim.report(times[1], sample());
        nester.deliver(&probe, &late).await;
        lates += 1;
        if still_staged(&nester, &probe, late.sequence) {
            assert_eq!(
                late_sample(),
                0,
                "the late report's WAN sample is already kept"
            );
            break;
        }
        assert!(attempt < STAGED_ATTEMPTS, "a pause came in every attempt");
    }

    // Nothing more arrives: the writer folds on its own within a few seconds.
    crate::harness::within(std::time::Duration::from_secs(10), "a pause folds", || {
        std::future::ready((staged(&nester) == (0, 0)).then_some(()))
    })
    .await;
    assert_eq!(late_sample(), 0);
    let (sequences, samples) = folded(&nester);
    assert_eq!(
        samples,
        sequences - lates,
        "one WAN sample per report but the {lates} late ones"
    );
}
