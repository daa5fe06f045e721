//! Charts drawn on the server as SVG: WAN latency (Smokeping-style: the min–max band, the
//! median line, loss marked below) and timelines (when hosts were up and ports open).
//! No script, no library, nothing for the CSP to allow; colours come from the stylesheet.

use std::fmt::Write;

use time::OffsetDateTime;

use crate::clock::to_ms;
use crate::db::{Interval, WanPoint};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
/// Room under the plot for the loss strip and the time labels.
const BOTTOM: f64 = 40.0;
const LOSS_STRIP: f64 = 8.0;

/// The time axis shared by every chart of a page.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl Span {
    fn x(&self, t: i64, left: f64, width: f64) -> f64 {
        let (a, b) = (to_ms(self.from), to_ms(self.to));
        let share = (t - a) as f64 / (b - a).max(1) as f64;
        left + share.clamp(0.0, 1.0) * width
    }

    /// About `n` evenly spaced labelled instants.
    fn ticks(&self, n: i64) -> Vec<(i64, String)> {
        let (a, b) = (to_ms(self.from), to_ms(self.to));
        let long = b - a > 2 * 86_400_000;
        (0..=n)
            .map(|i| {
                let t = a + (b - a) * i / n;
                let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(t) * 1_000_000)
                    .unwrap_or(self.from);
                let label = if long {
                    format!("{:02}-{:02}", u8::from(at.month()), at.day())
                } else {
                    format!("{:02}:{:02}", at.hour(), at.minute())
                };
                (t, label)
            })
            .collect()
    }
}

/// A "nice" upper bound for the y axis: 1, 2 or 5 times a power of ten.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

/// One target's latency over `span`. `points` are that target's, in time order.
pub fn latency(target: &str, points: &[WanPoint], span: Span) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let top = points
        .iter()
        .filter_map(|p| p.max_ms.or(p.median_ms))
        .fold(0.0, f64::max);
    let ceiling = nice_ceiling(top * 1.05);
    let y = |ms: f64| TOP + plot_h - (ms / ceiling).clamp(0.0, 1.0) * plot_h;
    let x = |p: &WanPoint| span.x(to_ms(p.at), LEFT, plot_w);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart latency" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Latency to {t}" data-points="{n}" xmlns="http://www.w3.org/2000/svg"><title>Latency to {t}: median line, min–max band, loss below</title>"#,
        t = escape(target),
        n = points.len(),
    );
    // Grid and y labels.
    for i in 0..=4 {
        let v = ceiling * f64::from(i) / 4.0;
        let gy = y(v);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{gy:.1}" y2="{gy:.1}"/><text class="label" x="{}" y="{:.1}" text-anchor="end">{} ms</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            gy + 4.0,
            trim(v)
        );
    }
    axis(&mut svg, span, LEFT, plot_w, HEIGHT - 6.0);

    // Runs of consecutive points that have latency; a point without (all lost) breaks a run.
    let runs: Vec<&[WanPoint]> = points
        .split(|p| p.median_ms.is_none())
        .filter(|run| !run.is_empty())
        .collect();
    for run in &runs {
        let mut band = String::new();
        for p in run.iter() {
            let _ = write!(
                band,
                "{:.1},{:.1} ",
                x(p),
                y(p.max_ms.or(p.median_ms).unwrap_or(0.0))
            );
        }
        for p in run.iter().rev() {
            let _ = write!(
                band,
                "{:.1},{:.1} ",
                x(p),
                y(p.min_ms.or(p.median_ms).unwrap_or(0.0))
            );
        }
        let _ = write!(
            svg,
            r#"<polygon class="band" points="{}"/>"#,
            band.trim_end()
        );
    }
    for run in &runs {
        let mut line = String::new();
        for (i, p) in run.iter().enumerate() {
            let cmd = if i == 0 { 'M' } else { 'L' };
            let _ = write!(
                line,
                "{cmd}{:.1},{:.1}",
                x(p),
                y(p.median_ms.unwrap_or(0.0))
            );
        }
        if run.len() == 1 {
            let _ = write!(line, "h1");
        }
        let _ = write!(svg, r#"<path class="median" d="{line}"/>"#);
    }
    // Loss: a mark in the strip under the plot, taller and redder the more was lost.
    let strip = TOP + plot_h + 2.0;
    let slot = (plot_w / points.len().max(1) as f64).clamp(1.0, 6.0);
    for p in points.iter().filter(|p| p.loss_pct > 0.0) {
        let class = match p.loss_pct {
            l if l >= 100.0 => "loss total",
            l if l >= 10.0 => "loss high",
            _ => "loss low",
        };
        let _ = write!(
            svg,
            r#"<rect class="{class}" x="{:.1}" y="{strip:.1}" width="{slot:.1}" height="{LOSS_STRIP}"><title>{:.0}% lost</title></rect>"#,
            x(p) - slot / 2.0,
            p.loss_pct
        );
    }
    if points.is_empty() {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no measurements in this range</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One labelled row of a timeline.
pub struct Row {
    pub label: String,
    /// `up` for a host row, `open` for a port row.
    pub class: &'static str,
    pub intervals: Vec<Interval>,
}

/// Rows of intervals over `span`: a bar wherever something was up or open.
pub fn timeline(rows: &[Row], span: Span) -> String {
    const ROW: f64 = 20.0;
    const LABEL: f64 = 220.0;
    let plot_w = WIDTH - LABEL - RIGHT;
    let height = ROW * rows.len() as f64 + 28.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart timeline" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Port timeline" data-rows="{}" xmlns="http://www.w3.org/2000/svg"><title>When each host was up and each port open</title>"#,
        rows.len()
    );
    let (from, to) = (to_ms(span.from), to_ms(span.to));
    let mut bars = 0;
    for (i, row) in rows.iter().enumerate() {
        let top = ROW * i as f64 + 4.0;
        let label = escape(&row.label);
        let _ = write!(
            svg,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{label}</text><line class="grid" x1="{LABEL}" x2="{}" y1="{:.1}" y2="{:.1}"/>"#,
            LABEL - 8.0,
            top + 13.0,
            WIDTH - RIGHT,
            top + ROW - 2.0,
            top + ROW - 2.0,
        );
        for interval in &row.intervals {
            let start = to_ms(interval.from);
            let end = interval.until.map_or(to, to_ms);
            if end < from || start > to {
                continue;
            }
            let x0 = span.x(start, LABEL, plot_w);
            let x1 = span.x(end, LABEL, plot_w).max(x0 + 2.0);
            bars += 1;
            let _ = write!(
                svg,
                r#"<rect class="{}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{label}: {} – {}</title></rect>"#,
                row.class,
                top + 2.0,
                x1 - x0,
                ROW - 6.0,
                crate::clock::rfc3339(interval.from),
                interval
                    .until
                    .map_or("now".to_string(), crate::clock::rfc3339),
            );
        }
    }
    axis(&mut svg, span, LABEL, plot_w, height - 6.0);
    let _ = write!(svg, r#"<desc>{bars} bars</desc></svg>"#);
    svg
}

fn axis(svg: &mut String, span: Span, left: f64, width: f64, baseline: f64) {
    let ticks = span.ticks(6);
    let last = ticks.len() - 1;
    for (i, (t, label)) in ticks.into_iter().enumerate() {
        // The outer labels stay inside the picture.
        let anchor = match i {
            0 => "start",
            i if i == last => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r#"<text class="label" x="{:.1}" y="{baseline:.1}" text-anchor="{anchor}">{label}</text>"#,
            span.x(t, left, width)
        );
    }
}

/// Text for SVG markup.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn point(minute: i64, median: Option<f64>, loss: f64) -> WanPoint {
        WanPoint {
            target: "8.8.8.8".into(),
            at: datetime!(2026-11-21 00:00 UTC) + time::Duration::minutes(minute),
            samples: 1,
            sent: 10,
            received: 10 - (loss / 10.0) as u32,
            loss_pct: loss,
            min_ms: median.map(|m| m - 2.0),
            median_ms: median,
            max_ms: median.map(|m| m + 5.0),
        }
    }

    #[test]
    fn latency_draws_a_band_a_median_and_loss() {
        let span = Span {
            from: datetime!(2026-11-21 00:00 UTC),
            to: datetime!(2026-11-21 01:00 UTC),
        };
        let points = vec![
            point(0, Some(20.0), 0.0),
            point(10, Some(30.0), 0.0),
            point(20, None, 100.0),
            point(30, Some(25.0), 20.0),
            point(40, Some(22.0), 0.0),
        ];
        let svg = latency("8.8.8.8", &points, span);
        // The lost point splits the series into two runs: two bands, two lines.
        assert_eq!(svg.matches(r#"class="band""#).count(), 2, "{svg}");
        assert_eq!(svg.matches(r#"class="median""#).count(), 2);
        assert!(svg.contains(r#"class="loss total""#) && svg.contains(r#"class="loss high""#));
        // 35 ms (30 + 5) * 1.05 rounds up to 50 ms at the top of the axis.
        assert!(svg.contains(">50 ms<"), "{svg}");
        // The first median point sits at the left edge, 20 ms of 50 up the plot.
        assert!(svg.contains(r#"d="M56.0,"#), "{svg}");
    }

    #[test]
    fn an_empty_range_says_so() {
        let span = Span {
            from: datetime!(2026-11-21 00:00 UTC),
            to: datetime!(2026-11-22 00:00 UTC),
        };
        let svg = latency("<script>", &[], span);
        assert!(svg.contains("no measurements"));
        assert!(!svg.contains("<script>"), "the target is escaped");
    }

    #[test]
    fn timeline_bars_follow_the_intervals() {
        let span = Span {
            from: datetime!(2026-11-21 00:00 UTC),
            to: datetime!(2026-11-21 10:00 UTC),
        };
        let at = |h: i64| datetime!(2026-11-21 00:00 UTC) + time::Duration::hours(h);
        let rows = vec![Row {
            label: "10.0.0.1 tcp/22".into(),
            class: "open",
            intervals: vec![
                Interval {
                    from: at(1),
                    until: Some(at(3)),
                    last_seen_at: at(2),
                },
                Interval {
                    from: at(5),
                    until: None,
                    last_seen_at: at(9),
                },
                Interval {
                    from: at(-9),
                    until: Some(at(-5)),
                    last_seen_at: at(-6),
                },
            ],
        }];
        let svg = timeline(&rows, span);
        assert!(
            svg.contains("<desc>2 bars</desc>"),
            "the interval before the span is left out: {svg}"
        );
        // The open interval runs to the right edge.
        let plot_w = WIDTH - 220.0 - RIGHT;
        let x5 = 220.0 + plot_w * 0.5;
        assert!(svg.contains(&format!(r#"x="{x5:.1}""#)), "{svg}");
    }

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(42.0), 50.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
    }
}
