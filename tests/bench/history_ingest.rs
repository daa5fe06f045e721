//! The history benchmark's ingest rounds: the same reports into the year-old nester and an
//! empty one, in slices that take turns.

use anyhow::Context;
use nester::db::SignedReport;
use seahawks_tests::cpu::{self, Rate};
use seahawks_tests::fleet::{Fleet, IngestPath, Lane};
use time::OffsetDateTime;

use crate::Target;

/// The ingest of a round into one nester: the rate over the slices it took, and the CPU
/// time of its database writer per report, folds included (the steadiest figure on a noisy
/// machine).
#[derive(Clone, Copy)]
pub struct Run {
    pub rate: Rate,
    pub writer_us: f64,
}

/// Which nester takes each slice of a round, `true` for the year-old one: each goes first
/// as often as the other and takes turns in ABBA order, so a machine that speeds up or
/// slows down over the round favours neither.
const SLICE_ORDER: [bool; 8] = [true, false, false, true, false, true, true, false];

/// One round: `count` reports per probe into each of the two nesters (the same reports, as
/// the twin fleet signs them), in interleaved slices.
pub async fn compare(
    path: IngestPath,
    nesters: [&Target; 2],
    fleets: [&mut Fleet; 2],
    start: OffsetDateTime,
    count: usize,
) -> anyhow::Result<[Run; 2]> {
    let slices = SLICE_ORDER.len() / 2;
    let per_slice = count.div_ceil(slices);
    let mut sliced = Vec::new();
    let mut lanes = Vec::new();
    let mut writers = Vec::new();
    for (target, fleet) in nesters.iter().zip(fleets) {
        let mut batches = fleet.sign(start, count)?;
        // Slice k: each probe's reports k * per_slice.. in order.
        let mut own: Vec<Vec<Vec<SignedReport>>> = Vec::new();
        for _ in 0..slices {
            own.push(
                batches
                    .iter_mut()
                    .map(|b| b.drain(..per_slice.min(b.len())).collect())
                    .collect(),
            );
        }
        own.reverse();
        sliced.push(own);
        lanes.push(Lane::open(path, &target.db, target.ingest, fleet).await?);
        writers.push(cpu::thread_us(target.writer)?);
    }
    let (mut seconds, mut cpu_s, mut items) = ([0.0f64; 2], [0.0f64; 2], [0usize; 2]);
    for year_old in SLICE_ORDER {
        let t = usize::from(!year_old);
        let batches = sliced[t].pop().context("a slice for each turn")?;
        let n = batches.iter().map(Vec::len).sum::<usize>();
        let rate = lanes[t].deliver(batches).await?;
        seconds[t] += n as f64 / rate.per_s;
        cpu_s[t] += rate.cpu_us * n as f64 / 1e6;
        items[t] += n;
    }
    drop(lanes);
    // The writers fold what is still staged once writes pause: part of the round's cost.
    tokio::time::sleep(nester::db::FOLD_IDLE + std::time::Duration::from_millis(500)).await;
    let run = |t: usize| -> anyhow::Result<Run> {
        Ok(Run {
            rate: Rate {
                per_s: items[t] as f64 / seconds[t],
                cpu_us: cpu_s[t] * 1e6 / items[t] as f64,
            },
            writer_us: (cpu::thread_us(nesters[t].writer)? - writers[t]) / items[t] as f64,
        })
    };
    Ok([run(0)?, run(1)?])
}
