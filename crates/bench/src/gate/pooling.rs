//! Pooling runs until the gate can judge: [`pool_until_judged`] judges a pooled candidate
//! and, while its spread is too large and fewer runs than the cap are pooled, absorbs one
//! more run; [`Judged`] is the result, printed with how noisy the machine was.

use std::path::PathBuf;

use crate::gate::evaluate::{Outcome, Report};
use crate::gate::policy::LoadedPolicy;
use crate::gate::verdict;
use crate::report::Candidate;

/// A pooled candidate with the gate's judgement of it.
pub struct Judged {
    /// Where the pooled candidate was written.
    pub path: PathBuf,
    /// The pooled candidate.
    pub candidate: Candidate,
    /// Its judgement under the policies.
    pub report: Report,
    /// The runs pooled into it.
    pub runs: usize,
    /// Most runs that were allowed.
    pub max_runs: usize,
}

impl Judged {
    /// Prints the gate's notes and table, how noisy the machine was, what to do when even
    /// the pooled runs could not be judged, and the verdict line last.
    pub fn print(&self) {
        let verdict = verdict::conclude(&self.report);
        print!("{}", verdict.before_line());
        print!("{}", verdict::noise(&self.candidate, self.runs));
        if self.report.outcome() == Outcome::TooNoisy {
            println!(
                "bench: still too noisy to judge after {} run(s) ({}). The machine is too busy \
                 for these limits: stop other load and run again, pool more runs \
                 (--max-runs {}), or lengthen the rounds (--round 4s).",
                self.runs,
                verdict::noisy_rows(&self.report),
                self.max_runs.max(self.runs) * 2
            );
        } else if self.runs > 1 {
            println!(
                "bench: judged on {} block(s) pooled from {} run(s)",
                self.candidate.blocks.len(),
                self.runs
            );
        }
        println!("{}", verdict.line);
    }

    /// The gate's exit status.
    pub fn exit(&self) -> crate::gate::exit::GateExit {
        self.report.outcome().into()
    }
}

/// Judges `pooled` (from `runs` runs) and, while it is too noisy to judge and fewer than
/// `max_runs` runs are pooled, absorbs one more run from `more`.
pub fn pool_until_judged(
    policies: &[LoadedPolicy],
    mut pooled: Candidate,
    mut runs: usize,
    max_runs: usize,
    mut more: impl FnMut(&Candidate) -> anyhow::Result<Candidate>,
) -> anyhow::Result<Judged> {
    loop {
        let report = verdict::judge(policies, &pooled);
        if report.outcome() != Outcome::TooNoisy || runs >= max_runs {
            return Ok(Judged {
                path: PathBuf::new(),
                candidate: pooled,
                report,
                runs,
                max_runs,
            });
        }
        eprintln!(
            "bench: too noisy to judge after {runs} run(s) of {} block(s) ({}); adding run {} \
             of at most {max_runs} and pooling its blocks",
            pooled.blocks.len(),
            verdict::noisy_rows(&report),
            runs + 1
        );
        let next = more(&pooled)?;
        pooled = pooled.absorb(next);
        runs += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::Environment;
    use crate::figures::BlockFigures;
    use crate::gate::policy;
    use crate::report::Measured;

    fn shipped() -> Vec<LoadedPolicy> {
        let perf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../perf");
        policy::load_all(&perf).expect("the shipped policies")
    }

    /// A candidate at the shipped own baseline, one block per factor of `jitter` (every
    /// ratio of a block multiplied by it).
    fn candidate(jitter: &[f64]) -> Candidate {
        let own = &shipped()[1].baseline.metrics;
        let mut c = Candidate::new(Environment::default(), &Measured::default());
        c.rps = Some(40_000.0);
        c.latency_p95_ms = Some(2.0);
        c.latency_p99_ms = Some(3.0);
        c.mem_mb = Some(own["mem_mb"]);
        c.errors_total = Some(0);
        c.echo_errors_total = Some(0);
        c.backpressure_active_total = Some(0.0);
        let blocks: Vec<BlockFigures> = jitter
            .iter()
            .map(|j| BlockFigures {
                throughput: own["rps_ratio_to_echo"] * j,
                p50: own["latency_p50_ratio_to_echo"] * j,
                p99: own["latency_p99_ratio_to_echo"] * j,
                cpu_per_request: Some(own["cpu_per_request_ratio_to_echo"] * j),
                echo_aa: *j,
                throughput_to_raw_echo: None,
                p50_to_raw_echo: None,
                p99_to_raw_echo: None,
                cpu_per_request_to_raw_echo: None,
            })
            .collect();
        // Absorbing a copy that has the blocks computes the ratios from them.
        let mut with_blocks = c.clone();
        with_blocks.blocks = blocks;
        c.absorb(with_blocks)
    }

    const NOISY: [f64; 8] = [1.4, 0.6, 1.4, 0.6, 1.4, 0.6, 1.4, 0.6];
    const STEADY: [f64; 8] = [1.0; 8];

    #[test]
    fn a_noisy_run_is_pooled_with_more_until_it_can_be_judged() {
        let policies = shipped();
        assert_eq!(
            verdict::judge(&policies, &candidate(&NOISY)).outcome(),
            Outcome::TooNoisy
        );
        let mut asked = 0;
        let judged = pool_until_judged(&policies, candidate(&NOISY), 1, 4, |_| {
            asked += 1;
            Ok(candidate(&STEADY))
        })
        .expect("judged");
        assert_eq!(judged.report.outcome(), Outcome::Pass);
        assert!(judged.runs > 1 && judged.runs <= 4, "{}", judged.runs);
        assert_eq!(asked, judged.runs - 1);
        assert_eq!(judged.candidate.blocks.len(), 8 * judged.runs);
    }

    #[test]
    fn the_cap_ends_the_pooling_and_says_so() {
        let policies = shipped();
        let mut asked = 0;
        let judged = pool_until_judged(&policies, candidate(&NOISY), 1, 3, |_| {
            asked += 1;
            Ok(candidate(&NOISY))
        })
        .expect("judged");
        assert_eq!(judged.report.outcome(), Outcome::TooNoisy);
        assert_eq!((judged.runs, asked), (3, 2));
        assert!(!verdict::noisy_rows(&judged.report).is_empty());
    }

    #[test]
    fn a_verdict_needs_no_more_runs() {
        let policies = shipped();
        for first in [candidate(&STEADY), candidate(&[0.5; 8])] {
            let judged = pool_until_judged(&policies, first, 1, 4, |_| {
                anyhow::bail!("no second run is needed")
            })
            .expect("judged");
            assert_eq!(judged.runs, 1);
            assert_ne!(judged.report.outcome(), Outcome::TooNoisy);
        }
        // A failing extra run is an error, not a verdict.
        let failed = pool_until_judged(&policies, candidate(&NOISY), 1, 2, |_| {
            anyhow::bail!("nats-server did not start")
        });
        assert!(failed.is_err());
    }
}
