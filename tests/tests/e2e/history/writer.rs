//! History kept true when rows change behind the writer, and unreadable rows that leave ingest
//! running.

use seahawks_tests::synthetic::{SimHost, SimProbe};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::harness::{Probe, TestNester};

/// A nester and one probe that sees one host (10.0.0.1, port 22 open); `at(m)` is m
/// minutes after a start ten minutes ago.
async fn gateway_probe() -> (TestNester, Probe, SimProbe, impl Fn(i64) -> OffsetDateTime) {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let sim = SimProbe::new(
        probe.id,
        &probe.identity().site,
        vec![SimHost::new("10.0.0.1", Some("gw"), &[(22, None)])],
    );
    let start = ms(OffsetDateTime::now_utc() - Duration::minutes(10));
    (nester, probe, sim, move |minutes| {
        start + Duration::minutes(minutes)
    })
}

/// The writer remembers each probe's hosts and open ports between reports; what another
/// connection (the CLI, a repair by hand) or one of the nester's own exclusive writes changes
/// in the history tables, the next report sees.
#[tokio::test]
async fn history_follows_changes_made_behind_the_writer() {
    let (nester, probe, mut sim, at) = gateway_probe().await;
    // (open intervals, all intervals) of port 22.
    let intervals = |n: &TestNester| -> (i64, i64) {
        n.sqlite()
            .query_row(
                "SELECT count(*) FILTER (WHERE closed_ms IS NULL), count(*) FROM port_intervals
                 WHERE port = 22",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    for minutes in [0, 1] {
        nester
            .deliver(&probe, &sim.report(at(minutes), vec![]))
            .await;
    }
    assert_eq!(intervals(&nester), (1, 1));

    // Another connection closes the interval: the port, still open in the next report,
    // opens a new one.
    let other = nester.other_connection();
    other
        .execute(
            "UPDATE port_intervals SET closed_ms = ?1 WHERE closed_ms IS NULL",
            [nester::clock::to_ms(at(1))],
        )
        .unwrap();
    nester.deliver(&probe, &sim.report(at(2), vec![])).await;
    assert_eq!(intervals(&nester), (1, 2));

    // The same through the nester's own exclusive write.
    let closed = nester::clock::to_ms(at(2));
    nester
        .db()
        .write(move |c| {
            c.execute(
                "UPDATE port_intervals SET closed_ms = ?1 WHERE closed_ms IS NULL",
                [closed],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    nester.deliver(&probe, &sim.report(at(3), vec![])).await;
    assert_eq!(intervals(&nester), (1, 3));

    // Untouched, the memo and the tables agree: a fifth report changes nothing.
    nester.deliver(&probe, &sim.report(at(4), vec![])).await;
    assert_eq!(intervals(&nester), (1, 3));
}

/// Rows of the history tables that this build cannot read (written by hand, or by another
/// version) neither stop a probe's ingest nor get lost: they are left out and left alone,
/// and a guess that cannot be read is written again from the next report.
#[tokio::test]
async fn unreadable_history_rows_leave_ingest_running() {
    let (nester, probe, mut sim, at) = gateway_probe().await;
    nester.deliver(&probe, &sim.report(at(0), vec![])).await;

    let other = nester.other_connection();
    other
        .execute_batch(&format!(
            "UPDATE hosts SET os = 'not json';
             INSERT INTO port_intervals (host_id, protocol, port, opened_ms)
                 SELECT host_id, 'sctp', 9, 1 FROM hosts;
             INSERT INTO hosts (probe_id, address, os, first_seen_ms, up)
                 VALUES ('{id}', 'not-an-address', '{{}}', 1, 1),
                        ('{id}', '0:0::1', '{{}}', 1, 1);",
            id = probe.id
        ))
        .unwrap();
    // `deliver` asserts the report is accepted; debug builds also check the writer's memo
    // against the tables after it.
    nester.deliver(&probe, &sim.report(at(1), vec![])).await;
    nester.deliver(&probe, &sim.report(at(2), vec![])).await;

    let os: String = other
        .query_row("SELECT os FROM hosts WHERE address = '10.0.0.1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    serde_json::from_str::<shared::report::OsGuess>(&os).expect("the guess is written again");
    let untouched: (i64, i64) = other
        .query_row(
            "SELECT (SELECT count(*) FROM hosts WHERE up AND address IN ('not-an-address', '0:0::1')),
                    (SELECT count(*) FROM port_intervals WHERE protocol = 'sctp' AND closed_ms IS NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        untouched,
        (2, 1),
        "rows it cannot read are left as they were"
    );
    // The readable history went on: port 22 is still one open interval.
    let open_22: i64 = other
        .query_row(
            "SELECT count(*) FROM port_intervals WHERE port = 22 AND closed_ms IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open_22, 1);
}
