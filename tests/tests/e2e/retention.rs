//! Retention: reports pruned and WAN samples rolled up under a moved clock, the pass the
//! server schedules, and a policy it cannot apply.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use seahawks_tests::synthetic::{SimHost, SimProbe, wan};
use time::{Duration, OffsetDateTime};

use crate::api::{at, get_ok, store};
use crate::harness::TestNester;

/// 100 days of hourly reports; the policy keeps reports 14 days, raw WAN samples 7, hourly
/// rollups 30. Everything the policy keeps is still there, rollups add up to the samples they
/// replaced, and the file shrinks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_reports_and_rolls_up_wan_under_a_moved_clock() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let signer = probe.signer();
    let db = nester.db().clone();
    let mut sim = SimProbe::new(
        probe.id,
        &probe.identity().site,
        seahawks_tests::synthetic::site_hosts(1, 40, &mut seahawks_tests::synthetic::Rng::new(7)),
    );
    sim.interval_s = 3600;
    let hours = 100 * 24;
    let now = OffsetDateTime::now_utc()
        .replace_minute(30)
        .unwrap()
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap();
    let start = now - Duration::hours(hours);
    let mut stored = Vec::new();
    for h in 0..hours {
        let t = start + Duration::hours(h);
        // Median 20 + hour of day; 10 sent, one lost every fourth hour.
        let hour = f64::from(t.hour());
        let lost = u32::from(h % 4 == 0);
        let report = sim.report(
            t,
            vec![wan(
                "192.0.2.1",
                10,
                10 - lost,
                Some((10.0 + hour, 20.0 + hour, 40.0 + hour)),
            )],
        );
        let mut jws = signer.sign_report(&report).unwrap();
        if h == 0 {
            // As if signed under an earlier certificate: a header no later report shares.
            let rest = jws.split_once('.').unwrap().1.to_string();
            jws = format!(
                "{}.{rest}",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"old"}"#)
            );
        }
        stored.push((report.sequence, report.clone(), jws.clone()));
        let inserted = store(&db, report, jws).await;
        assert_eq!(inserted, nester::db::Inserted::Stored);
    }
    assert_eq!(nester.count("jws_headers"), 2);
    let file = nester.dir.database();
    let checkpoint = || {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        std::fs::metadata(&file).unwrap().len()
    };
    let size_before = checkpoint();
    // Samples not yet folded are staged (nester/src/db/staging.rs).
    let totals = |c: &rusqlite::Connection| -> (i64, i64) {
        c.query_row(
            "SELECT sum(sent), sum(received) FROM (
               SELECT sent, received FROM wan_samples
               UNION ALL SELECT sent, received FROM wan_samples_staged
               UNION ALL SELECT sent, received FROM wan_rollups)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let before = totals(&nester.sqlite());
    assert_eq!(before, (hours * 10, hours * 10 - hours / 4));

    let policy = nester::db::Policy {
        reports: Duration::days(14),
        wan_raw: Duration::days(7),
        wan_hourly: Duration::days(30),
    };
    nester.clock().advance(Duration::minutes(1));
    let now = nester.clock().now();
    let done = db.retain(policy, now).await.unwrap();
    let kept_from = now - Duration::days(14);
    let expected_kept = stored
        .iter()
        .filter(|(_, r, _)| r.generated_at >= kept_from)
        .count() as i64;
    assert_eq!(done.reports_deleted as i64, hours - expected_kept);
    assert_eq!(nester.count("reports"), expected_kept);
    // The first report's certificate header went with it; the current one stays.
    assert_eq!(nester.count("jws_headers"), 1);
    let (_, newest, jws) = stored.last().unwrap();
    let kept = nester
        .get(&format!("/api/v1/reports/{}/signed", newest.report_id))
        .await;
    assert_eq!(kept.body, jws.as_bytes(), "a kept report rebuilds exactly");
    let sql = nester.sqlite();
    let oldest_report: i64 = sql
        .query_row("SELECT min(generated_ms) FROM reports", [], |r| r.get(0))
        .unwrap();
    assert!(oldest_report >= nester::clock::to_ms(kept_from));

    // Raw samples from the last whole hour 7 days back; hourly rollups of one sample each
    // back to the day 30 days back; daily rollups before that.
    let raw_from = nester::clock::to_ms(now - Duration::days(7)) / 3_600_000 * 3_600_000;
    let hourly_from = nester::clock::to_ms(now - Duration::days(30)) / 86_400_000 * 86_400_000;
    let (raw_min, raw_n): (i64, i64) = sql
        .query_row("SELECT min(at_ms), count(*) FROM wan_samples", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(raw_min >= raw_from);
    assert_eq!(
        raw_n,
        stored
            .iter()
            .filter(|(_, r, _)| nester::clock::to_ms(r.generated_at) >= raw_from)
            .count() as i64
    );
    let (hour_min, hour_max, hour_n, hour_samples): (i64, i64, i64, i64) = sql
        .query_row("SELECT min(start_ms), max(start_ms), count(*), sum(samples) FROM wan_rollups WHERE span_s = 3600", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    assert!(hour_min >= hourly_from && hour_max < raw_from);
    assert_eq!(
        hour_n, hour_samples,
        "one report an hour: one sample per hourly rollup"
    );
    assert_eq!(hour_n, (raw_from - hourly_from) / 3_600_000);
    // A whole day in the daily rollups: 24 samples, medians 20..43 → 31.5, min 10, max 63,
    // 6 of 240 probes lost.
    let day: (i64, i64, i64, f64, f64, f64) = sql
        .query_row(
            "SELECT samples, sent, received, min_ms, median_ms, max_ms FROM wan_rollups
             WHERE span_s = 86400 AND start_ms = ?",
            [hourly_from - 10 * 86_400_000],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(day, (24, 240, 234, 10.0, 31.5, 63.0));
    assert_eq!(
        totals(&sql),
        before,
        "rollups add up to the samples they replaced"
    );

    // The API serves the same totals across the three kinds of storage.
    let series = get_ok(
        &nester,
        &format!(
            "/api/v1/probes/{}/wan?from={}&to={}&resolution=day",
            probe.id,
            at(start - Duration::days(1)),
            at(now)
        ),
    )
    .await;
    let points = series["points"].as_array().unwrap();
    let sent: i64 = points.iter().map(|p| p["sent"].as_i64().unwrap()).sum();
    let received: i64 = points.iter().map(|p| p["received"].as_i64().unwrap()).sum();
    assert_eq!((sent, received), before);
    assert!((100..=102).contains(&points.len()), "{}", points.len());

    // History is kept whole: the first host's first interval still starts at the first report.
    let first_seen: i64 = sql
        .query_row("SELECT min(first_seen_ms) FROM hosts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(first_seen, nester::clock::to_ms(start));

    let size_after = checkpoint();
    assert!(
        size_after * 2 < size_before,
        "file {size_before} → {size_after} bytes: it shrinks"
    );

    // A pruned report delivered again is a duplicate, not a new report.
    let (_, old, jws) = stored[0].clone();
    let again = store(&db, old, jws).await;
    assert_eq!(again, nester::db::Inserted::Duplicate);
    assert_eq!(nester.count("reports"), expected_kept);

    // A second pass has nothing left to do.
    let idle = db.retain(policy, now).await.unwrap();
    assert_eq!(
        (
            idle.reports_deleted,
            idle.samples_rolled_up,
            idle.hours_rolled_up
        ),
        (0, 0, 0)
    );
    assert_eq!(totals(&nester.sqlite()), before);
}

/// The scheduled pass: `nester serve` applies the retention policy as it starts (and then
/// every `retention.every`), and each probe's latest report stays, however old.
#[tokio::test]
async fn the_retention_pass_runs_at_start_and_keeps_each_probes_latest_report() {
    let mut nester = TestNester::start_with(|c| {
        c.retention.reports = std::time::Duration::from_secs(86_400);
    })
    .await;
    let (busy, quiet) = (nester.probe().await, nester.probe().await);
    let now = OffsetDateTime::now_utc();
    let mut latest = Vec::new();
    for (probe, hours_ago) in [(&busy, &[72, 48, 0][..]), (&quiet, &[72, 48][..])] {
        let hosts = vec![SimHost::new("10.0.0.1", None, &[(22, None)])];
        let mut sim = SimProbe::new(probe.id, &probe.identity().site, hosts);
        for h in hours_ago {
            let report = sim.report(now - Duration::hours(*h), Vec::new());
            let jws = probe.signer().sign_report(&report).unwrap();
            store(nester.db(), report.clone(), jws).await;
            latest.push((probe.id, report.report_id));
        }
    }
    assert_eq!(nester.count("reports"), 5);
    nester.restart().await;
    // The pass runs beside the listeners: wait for it, 10 s at most.
    for _ in 0..100 {
        if nester.count("reports") == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let kept: Vec<String> = {
        let sql = nester.sqlite();
        let mut stmt = sql
            .prepare("SELECT report_id FROM reports ORDER BY generated_ms")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    // Quiet's 48-hour-old report (its latest) and busy's newest: nothing else.
    let expected: Vec<String> = [latest[4].1, latest[2].1]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(kept, expected);
}

/// A policy the nester cannot apply stops it at start, with the section to fix; it never
/// runs for months pruning nothing.
#[tokio::test]
async fn an_unusable_retention_policy_refuses_to_start() {
    let temp = tempfile::tempdir().unwrap();
    let dir = nester::datadir::DataDir::new(temp.path().join("nester"));
    nester::cli::init::init(&dir, &[]).unwrap();
    let mut config = nester::config::Config::loopback(dir.root());
    config.retention.wan_raw = std::time::Duration::from_secs(u64::MAX);
    let err = nester::server::Server::open(&config)
        .err()
        .expect("a policy that cannot be applied must refuse to start");
    assert!(format!("{err:#}").contains("[retention]"), "{err:#}");
}
