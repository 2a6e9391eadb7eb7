//! The gate's outcome as a process exit status.

use std::process::ExitCode;

use super::evaluate::Outcome;

/// The gate's outcome, mapped to the exit status of `cargo xtask perf-gate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateExit {
    /// Every rule passed.
    Pass = 0,
    /// At least one rule failed.
    Regression = 1,
    /// Nothing could be judged.
    CannotJudge = 2,
    /// The figures were too noisy to judge.
    TooNoisy = 3,
}

impl GateExit {
    /// The exit code of this outcome.
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }

    /// The graver of two outcomes: a regression over anything, then no verdict, then noise,
    /// then a pass.
    pub fn max_severity(self, other: GateExit) -> GateExit {
        let rank = |e: GateExit| match e {
            GateExit::Pass => 0,
            GateExit::TooNoisy => 1,
            GateExit::CannotJudge => 2,
            GateExit::Regression => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Outcome> for GateExit {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Pass => GateExit::Pass,
            Outcome::Regression => GateExit::Regression,
            Outcome::TooNoisy => GateExit::TooNoisy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regression_outranks_everything() {
        use GateExit::*;
        assert_eq!(Pass.max_severity(TooNoisy), TooNoisy);
        assert_eq!(TooNoisy.max_severity(CannotJudge), CannotJudge);
        assert_eq!(Regression.max_severity(CannotJudge), Regression);
        assert_eq!(CannotJudge.max_severity(Pass), CannotJudge);
        assert_eq!(GateExit::from(Outcome::TooNoisy) as i32, 3);
    }
}
