//! WAN latency: one sample per target per report, rolled up per hour and then per day as it
//! ages (see `retention.rs`), and read back as one series whatever mix of the three holds it.
//! New samples are staged first (see `staging.rs`): reads take `wan_samples_staged` too.

use rusqlite::{Connection, params};
use serde::Serialize;
use shared::report::{Report, WanMethod};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, DbError, to_ms};

/// How finely a series is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Every sample as measured (parts that have aged into rollups come as rollups).
    Raw,
    Hour,
    Day,
}

impl Resolution {
    pub const HOUR_MS: i64 = 3_600_000;
    pub const DAY_MS: i64 = 86_400_000;

    /// The resolution that keeps a chart of `span` readable: raw up to 2 days, hourly up to
    /// 60 days, daily beyond.
    pub fn for_span(span: time::Duration) -> Self {
        if span <= time::Duration::days(2) {
            Self::Raw
        } else if span <= time::Duration::days(60) {
            Self::Hour
        } else {
            Self::Day
        }
    }

    fn bucket_ms(self) -> Option<i64> {
        match self {
            Self::Raw => None,
            Self::Hour => Some(Self::HOUR_MS),
            Self::Day => Some(Self::DAY_MS),
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Self::Raw),
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            other => Err(format!(
                "unknown resolution `{other}` (raw, hour, day or auto)"
            )),
        }
    }
}

/// One point of a latency series: a sample, or several merged.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WanPoint {
    pub target: String,
    /// Start of the bucket (or the sample's time).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Samples merged into this point.
    pub samples: u32,
    pub sent: u32,
    pub received: u32,
    /// Percent of probes lost, 0 to 100.
    pub loss_pct: f64,
    pub min_ms: Option<f64>,
    /// Median of the samples' medians.
    pub median_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// A row of any of the three sources, before bucketing.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub target: String,
    pub at_ms: i64,
    pub samples: u32,
    pub sent: u32,
    pub received: u32,
    pub min_ms: Option<f64>,
    pub median_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Sample {
    /// A row of `target, time, samples, sent, received, min, median, max`.
    pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            target: r.get(0)?,
            at_ms: r.get(1)?,
            samples: r.get(2)?,
            sent: r.get(3)?,
            received: r.get(4)?,
            min_ms: r.get(5)?,
            median_ms: r.get(6)?,
            max_ms: r.get(7)?,
        })
    }
}

/// Stages the report's WAN samples (`at` is its generation time), each once. `newest`: the
/// report is newer than every report of its probe stored before, so no sample of its time
/// can be in the large table (a sample is keyed by its report's time), and the lookup
/// there is spared.
pub(super) fn insert(
    conn: &Connection,
    report: &Report,
    at: i64,
    newest: bool,
) -> Result<(), DbError> {
    let mut stmt = conn.prepare_cached(if newest {
        "INSERT INTO wan_samples_staged
                (probe_id, target, at_ms, method, sent, received, min_ms, median_ms, max_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT DO NOTHING"
    } else {
        "INSERT INTO wan_samples_staged
                (probe_id, target, at_ms, method, sent, received, min_ms, median_ms, max_ms)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
          WHERE NOT EXISTS (SELECT 1 FROM wan_samples
                            WHERE probe_id = ?1 AND at_ms = ?3 AND target = ?2)
         ON CONFLICT DO NOTHING"
    })?;
    for m in &report.wan {
        let method = match m.method {
            WanMethod::Icmp => "icmp",
            WanMethod::Tcp => "tcp",
        };
        stmt.execute(params![
            report.probe_id.to_string(),
            m.target,
            at,
            method,
            m.sent,
            m.received,
            m.min_ms,
            m.median_ms,
            m.max_ms
        ])?;
    }
    Ok(())
}

/// Merges samples (all of one target and bucket) into one point at `at_ms`.
pub(super) fn merge(target: &str, at_ms: i64, group: &[Sample]) -> Sample {
    let fold = |f: fn(f64, f64) -> f64, pick: fn(&Sample) -> Option<f64>| {
        group.iter().filter_map(pick).reduce(f)
    };
    let mut medians: Vec<f64> = group.iter().filter_map(|s| s.median_ms).collect();
    medians.sort_by(f64::total_cmp);
    let median = match medians.len() {
        0 => None,
        n if n % 2 == 1 => Some(medians[n / 2]),
        n => Some((medians[n / 2 - 1] + medians[n / 2]) / 2.0),
    };
    Sample {
        target: target.to_string(),
        at_ms,
        samples: group.iter().map(|s| s.samples).sum(),
        sent: group.iter().map(|s| s.sent).sum(),
        received: group.iter().map(|s| s.received).sum(),
        min_ms: fold(f64::min, |s| s.min_ms),
        median_ms: median,
        max_ms: fold(f64::max, |s| s.max_ms),
    }
}

/// Groups time-ordered samples of one target into buckets of `bucket_ms`, merged.
pub(super) fn bucketed(samples: &[Sample], bucket_ms: i64) -> Vec<Sample> {
    samples
        .chunk_by(|a, b| {
            a.target == b.target && a.at_ms.div_euclid(bucket_ms) == b.at_ms.div_euclid(bucket_ms)
        })
        .map(|group| {
            let start = group[0].at_ms.div_euclid(bucket_ms) * bucket_ms;
            merge(&group[0].target, start, group)
        })
        .collect()
}

impl Db {
    /// A probe's latency series over `[from, to)`, by target then time; `None` for an unknown
    /// probe. Raw samples, hourly and daily rollups are read together (retention keeps them
    /// apart in time), then merged into buckets of `resolution`.
    pub async fn wan_series(
        &self,
        probe_id: Uuid,
        from: OffsetDateTime,
        to: OffsetDateTime,
        resolution: Resolution,
    ) -> Result<Option<Vec<WanPoint>>, DbError> {
        self.read(move |conn| {
            if !super::probe_exists(conn, probe_id)? {
                return Ok(None);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT target, at_ms, 1, sent, received, min_ms, median_ms, max_ms FROM wan_samples
                  WHERE probe_id = ?1 AND at_ms >= ?2 AND at_ms < ?3
                 UNION ALL
                 SELECT target, at_ms, 1, sent, received, min_ms, median_ms, max_ms
                  FROM wan_samples_staged WHERE probe_id = ?1 AND at_ms >= ?2 AND at_ms < ?3
                 UNION ALL
                 SELECT target, start_ms, samples, sent, received, min_ms, median_ms, max_ms
                  FROM wan_rollups WHERE probe_id = ?1 AND start_ms >= ?2 AND start_ms < ?3
                 ORDER BY 1, 2",
            )?;
            let rows: Vec<Sample> = stmt
                .query_map(
                    params![probe_id.to_string(), to_ms(from), to_ms(to)],
                    Sample::from_row,
                )?
                .collect::<Result<_, _>>()?;
            let rows = match resolution.bucket_ms() {
                Some(bucket) => bucketed(&rows, bucket),
                None => rows,
            };
            rows.into_iter()
                .map(point)
                .collect::<Result<_, _>>()
                .map(Some)
        })
        .await
    }
}

fn point(s: Sample) -> Result<WanPoint, DbError> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(s.at_ms) * 1_000_000)
        .map_err(|e| DbError::Corrupt(format!("WAN sample time: {e}")))?;
    Ok(WanPoint {
        loss_pct: loss_pct(s.sent, s.received),
        target: s.target,
        at,
        samples: s.samples,
        sent: s.sent,
        received: s.received,
        min_ms: s.min_ms,
        median_ms: s.median_ms,
        max_ms: s.max_ms,
    })
}

/// Each target's points merged into one (at the first point's time): a summary of a range.
pub fn summary(points: &[WanPoint]) -> Vec<WanPoint> {
    let samples: Vec<Sample> = points
        .iter()
        .map(|p| Sample {
            target: p.target.clone(),
            at_ms: to_ms(p.at),
            samples: p.samples,
            sent: p.sent,
            received: p.received,
            min_ms: p.min_ms,
            median_ms: p.median_ms,
            max_ms: p.max_ms,
        })
        .collect();
    samples
        .chunk_by(|a, b| a.target == b.target)
        .filter_map(|group| point(merge(&group[0].target, group[0].at_ms, group)).ok())
        .collect()
}

pub(crate) fn loss_pct(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        return 100.0;
    }
    100.0 * f64::from(sent.saturating_sub(received)) / f64::from(sent)
}

/// The samples of a probe's latest report that measured anything.
pub(super) fn latest(conn: &Connection, probe: &str) -> Result<Vec<WanPoint>, DbError> {
    let mut stmt = conn.prepare_cached(
        "WITH latest (at_ms) AS (
           SELECT max(m) FROM (SELECT max(at_ms) AS m FROM wan_samples WHERE probe_id = ?1
                               UNION ALL
                               SELECT max(at_ms) FROM wan_samples_staged WHERE probe_id = ?1))
         SELECT target, at_ms, 1, sent, received, min_ms, median_ms, max_ms FROM wan_samples
          WHERE probe_id = ?1 AND at_ms = (SELECT at_ms FROM latest)
         UNION ALL
         SELECT target, at_ms, 1, sent, received, min_ms, median_ms, max_ms FROM wan_samples_staged
          WHERE probe_id = ?1 AND at_ms = (SELECT at_ms FROM latest)
         ORDER BY 1",
    )?;
    let rows = stmt
        .query_map([probe], Sample::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(point).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: i64, min: f64, median: f64, max: f64, sent: u32, received: u32) -> Sample {
        Sample {
            target: "t".into(),
            at_ms,
            samples: 1,
            sent,
            received,
            min_ms: Some(min),
            median_ms: Some(median),
            max_ms: Some(max),
        }
    }

    #[test]
    fn buckets_merge_min_median_max_and_loss() {
        let h = Resolution::HOUR_MS;
        let rows = vec![
            s(0, 5.0, 10.0, 20.0, 5, 5),
            s(h / 2, 4.0, 12.0, 30.0, 5, 4),
            s(h - 1, 6.0, 11.0, 15.0, 5, 5),
            s(h, 7.0, 8.0, 9.0, 5, 0),
        ];
        let out = bucketed(&rows, h);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].at_ms, 0);
        assert_eq!(out[0].samples, 3);
        assert_eq!(out[0].min_ms, Some(4.0));
        assert_eq!(out[0].median_ms, Some(11.0));
        assert_eq!(out[0].max_ms, Some(30.0));
        assert_eq!((out[0].sent, out[0].received), (15, 14));
        assert_eq!(out[1].at_ms, h);
        assert_eq!(loss_pct(out[1].sent, out[1].received), 100.0);
    }

    #[test]
    fn a_bucket_without_answers_has_no_latency() {
        let mut silent = s(0, 0.0, 0.0, 0.0, 5, 0);
        (silent.min_ms, silent.median_ms, silent.max_ms) = (None, None, None);
        let out = bucketed(&[silent.clone(), silent], Resolution::DAY_MS);
        assert_eq!(out[0].median_ms, None);
        assert_eq!(out[0].samples, 2);
    }

    #[test]
    fn resolution_follows_the_span() {
        assert_eq!(
            Resolution::for_span(time::Duration::hours(24)),
            Resolution::Raw
        );
        assert_eq!(
            Resolution::for_span(time::Duration::days(30)),
            Resolution::Hour
        );
        assert_eq!(
            Resolution::for_span(time::Duration::days(365)),
            Resolution::Day
        );
    }
}
