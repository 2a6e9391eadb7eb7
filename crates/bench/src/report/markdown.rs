//! The Markdown summary of a [`Candidate`]: status, side totals, ratios, rounds, errors and
//! the environment, written beside the JSON.

use std::fmt::Write as _;

use crate::figures::{block_pattern, Ratio, Side, Spread};
use crate::stats::Percentiles;

use super::candidate::{Candidate, Status};

impl Candidate {
    /// The Markdown summary: status, side totals, ratios, rounds, errors, environment.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# router-bench result\n");
        match (&self.status, &self.reason) {
            (Status::Ok, _) => {
                let _ = writeln!(md, "Status: **ok**\n");
            }
            (Status::Failed, reason) => {
                let _ = writeln!(
                    md,
                    "Status: **failed** — {}\n",
                    reason.as_deref().unwrap_or("no reason recorded")
                );
            }
        }
        self.totals_table(&mut md);
        self.ratio_table(&mut md);
        if let Some(shape) = &self.second_shape {
            md.push_str(&shape.to_markdown());
        }
        self.round_table(&mut md);
        for (name, phase) in &self.phases {
            if !phase.errors_by_kind.is_empty() {
                let _ = writeln!(md, "\nErrors by kind ({name}):\n");
                for (kind, count) in &phase.errors_by_kind {
                    let _ = writeln!(md, "- `{kind}`: {count}");
                }
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(md, "\nWarnings:\n");
            for warning in &self.warnings {
                let _ = writeln!(md, "- {warning}");
            }
        }
        self.environment_lines(&mut md);
        md
    }

    fn totals_table(&self, md: &mut String) {
        // The raw echo's column only when it was measured, so the other tables read as before.
        let raw = self.raw_echo_requests_total.is_some();
        if raw {
            let _ = writeln!(md, "| metric | router | echo | raw echo |");
            let _ = writeln!(md, "|---|---:|---:|---:|");
        } else {
            let _ = writeln!(md, "| metric | router | echo |");
            let _ = writeln!(md, "|---|---:|---:|");
        }
        let rows: [(&str, [Option<String>; 3]); 9] = [
            (
                "rps",
                [
                    fmt(self.rps, 1),
                    fmt(self.echo_rps, 1),
                    fmt(self.raw_echo_rps, 1),
                ],
            ),
            (
                "latency p50 (ms)",
                [
                    fmt(self.latency_p50_ms, 3),
                    fmt(self.echo_latency_p50_ms, 3),
                    fmt(self.raw_echo_latency_p50_ms, 3),
                ],
            ),
            (
                "latency p95 (ms)",
                [
                    fmt(self.latency_p95_ms, 3),
                    fmt(self.echo_latency_p95_ms, 3),
                    self.raw_echo_latency(|l| l.p95_ms),
                ],
            ),
            (
                "latency p99 (ms)",
                [
                    fmt(self.latency_p99_ms, 3),
                    fmt(self.echo_latency_p99_ms, 3),
                    fmt(self.raw_echo_latency_p99_ms, 3),
                ],
            ),
            (
                "latency p99.9 (ms)",
                [
                    fmt(self.latency_p999_ms, 3),
                    fmt(self.echo_latency_p999_ms, 3),
                    self.raw_echo_latency(|l| l.p999_ms),
                ],
            ),
            (
                "CPU per request (µs)",
                [
                    fmt(self.cpu_us_per_request, 2),
                    fmt(self.echo_cpu_us_per_request, 2),
                    fmt(self.raw_echo_cpu_us_per_request, 2),
                ],
            ),
            (
                "requests",
                [
                    self.requests_total.map(|v| v.to_string()),
                    self.echo_requests_total.map(|v| v.to_string()),
                    self.raw_echo_requests_total.map(|v| v.to_string()),
                ],
            ),
            (
                "errors",
                [
                    self.errors_total.map(|v| v.to_string()),
                    self.echo_errors_total.map(|v| v.to_string()),
                    self.raw_echo_errors_total.map(|v| v.to_string()),
                ],
            ),
            (
                "memory, peak RSS (MiB)",
                [
                    fmt(self.mem_mb, 1),
                    fmt(self.echo_mem_mb, 1),
                    fmt(self.raw_echo_mem_mb, 1),
                ],
            ),
        ];
        for (name, [router, echo, raw_echo]) in rows {
            let _ = write!(md, "| {name} | {} | {} |", dash(router), dash(echo));
            if raw {
                let _ = write!(md, " {} |", dash(raw_echo));
            }
            md.push('\n');
        }
        let _ = write!(
            md,
            "| backpressure active (transitions) | {} | — |",
            dash(fmt(self.backpressure_active_total, 0))
        );
        if raw {
            md.push_str(" — |");
        }
        md.push('\n');
    }

    /// A latency percentile of the raw echo, from its totals over its rounds.
    fn raw_echo_latency(&self, pick: impl Fn(&Percentiles) -> Option<f64>) -> Option<String> {
        fmt(pick(&self.phases.get(Side::RawEcho.as_str())?.latency), 3)
    }

    fn ratio_table(&self, md: &mut String) {
        if self.ratios.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\nRatios over {} block(s) (median, and the ~90 % confidence interval of the median):\n",
            self.blocks.len()
        );
        let _ = writeln!(md, "| ratio | median | interval | ± |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let raw = Ratio::TO_RAW_ECHO
            .iter()
            .any(|r| self.ratios.contains_key(r.key()));
        let sets: [(&str, Vec<Ratio>); 2] = [
            (
                "router ÷ raw echo: against the physical limit",
                Ratio::ALL
                    .into_iter()
                    .filter(|r| r.is_to_raw_echo())
                    .collect(),
            ),
            (
                "router ÷ echo: the decision alone",
                Ratio::ALL
                    .into_iter()
                    .filter(|r| !r.is_to_raw_echo())
                    .collect(),
            ),
        ];
        for (title, ratios) in sets {
            if raw {
                let _ = writeln!(md, "| *{title}* | | | |");
            }
            for ratio in ratios {
                if let Some(spread) = self.ratios.get(ratio.key()) {
                    ratio_row(md, ratio, spread);
                }
            }
        }
    }

    fn round_table(&self, md: &mut String) {
        if self.rounds.len() < 2 {
            return;
        }
        let _ = writeln!(md, "\nRounds:\n");
        let _ = writeln!(
            md,
            "| # | block | side | rps | p50 (ms) | p99 (ms) | requests | errors | CPU µs/req |"
        );
        let _ = writeln!(md, "|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        for (i, r) in self.rounds.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} |",
                i + 1,
                r.block + 1,
                r.side.as_str(),
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.requests,
                r.errors,
                dash(fmt(r.cpu_us_per_request(), 2))
            );
        }
    }

    fn environment_lines(&self, md: &mut String) {
        let env = &self.environment;
        let load = match env.rate {
            Some(rate) => format!("open loop at {rate} req/s"),
            None => "closed loop".to_owned(),
        };
        let schedule = match (env.blocks, env.round_s) {
            (Some(blocks), Some(round)) => format!(
                "{blocks} blocks of {} rounds of {round} s after {} s warm-up per side",
                block_pattern(env.raw_echo_subject.is_some()).len(),
                env.warmup_s
            ),
            _ => format!(
                "{} s measured after {} s warm-up",
                env.duration_s, env.warmup_s
            ),
        };
        let _ = writeln!(
            md,
            "\nMode `{}`, {load}, concurrency {} over {} connection(s), {schedule}, TLS {}.  ",
            env.mode,
            env.concurrency,
            env.connections,
            if env.tls { "on" } else { "off" },
        );
        let _ = writeln!(
            md,
            "nats-server {}, {} CPU(s), kernel {}, commit {}{}, bench build {}, {}.",
            env.nats_server_version.as_deref().unwrap_or("unknown"),
            env.cpu_count,
            env.kernel.as_deref().unwrap_or("unknown"),
            env.git_commit.as_deref().unwrap_or("unknown"),
            if env.git_dirty == Some(true) {
                " (dirty)"
            } else {
                ""
            },
            env.bench_build,
            env.timestamp,
        );
    }
}

/// One row of a ratio table: the ratio, its median, interval and relative half-width.
pub(super) fn ratio_row(md: &mut String, ratio: Ratio, s: &Spread) {
    let _ = writeln!(
        md,
        "| {} | {:.3} | {:.3} – {:.3} | {:.1} % |",
        ratio.key(),
        s.median,
        s.low,
        s.high,
        s.relative_half_width * 100.0
    );
}

fn fmt(value: Option<f64>, decimals: usize) -> Option<String> {
    value.map(|v| format!("{v:.decimals$}"))
}

fn dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".to_owned())
}
