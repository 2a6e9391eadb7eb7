//! Command-line options of `router-bench` and their validation into a [`Plan`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use router_bin::transport::nats::ClientTls;

use crate::nats_args::NatsArgs;
use crate::process::ProcessProbe;

/// Upper bounds that keep every run finite and loopback-sized.
const MAX_CONCURRENCY: usize = 10_000;
const MAX_CONNECTIONS: usize = 64;
const MAX_DURATION: Duration = Duration::from_secs(3600);
const MAX_WARMUP: Duration = Duration::from_secs(600);
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_RATE: f64 = 10_000_000.0;
const MAX_BLOCKS: usize = 1000;

/// Load generator for the Beamline Router: real NATS request-reply, closed or open loop.
///
/// With `--echo-prefix`, it measures the router against an echo responder of the same
/// topology (`router --responder echo --subject-prefix <prefix>`) in interleaved rounds:
/// after one warm-up of each side, `--blocks` blocks of four rounds (echo, router, router,
/// echo) of `--round` each. Each block gives router ÷ echo ratios of throughput, latency and
/// CPU per request (with `--router-pid` and `--echo-pid`). With `--raw-echo-prefix` too, a
/// minimal responder (`raw-echo`) is measured as well, in blocks of six rounds (raw echo,
/// echo, router, router, echo, raw echo), and each block also gives router ÷ raw echo.
///
/// Exit status: 0 when the run was done (errors, if any, are in the report), 1 when it
/// could not be done (no server, TLS refused, no responders), 2 for bad options (missing
/// TLS files included; no candidate is written then).
#[derive(Debug, Clone, Parser)]
#[command(name = "router-bench", version)]
pub struct Args {
    /// Where NATS is and the TLS files to reach it with.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Subject prefix of the router; requests go to `<prefix>.v1.decide`.
    #[arg(long, default_value = "beamline.router")]
    pub subject_prefix: String,
    /// Concurrent requesters (closed loop), or the most requests in flight (open loop).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// NATS connections the requesters are spread over (one I/O task each).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Without --echo-prefix (or with --echo-only): length of the one measured window
    /// (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up of each side before anything is measured; its requests are not recorded.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Interleaved rounds: length of one measured round.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub round: Duration,
    /// Interleaved rounds: unrecorded settling time at the start of each round.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub round_warmup: Duration,
    /// Interleaved rounds: blocks of four rounds (echo, router, router, echo), or six with
    /// --raw-echo-prefix (raw echo, echo, router, router, echo, raw echo).
    #[arg(long, default_value_t = 8)]
    pub blocks: usize,
    /// Interleaved rounds, closed loop: concurrent callers of a second load shape, measured
    /// after the gated blocks (and after their memory and metrics are read) and reported
    /// beside them, never gated [default: 1000]; 0 measures no second shape. When given it
    /// must be above --concurrency; the default is left out when it is not.
    #[arg(long)]
    pub second_shape_concurrency: Option<usize>,
    /// Interleaved rounds: blocks of the second load shape (0: none) [default: 2].
    #[arg(long)]
    pub second_shape_blocks: Option<usize>,
    /// Open loop: send this many requests per second in total, on schedule, and measure
    /// latency from each request's intended send time. Without it the loop is closed.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long one request may wait for its reply before it counts as a timeout.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Subject prefix of the echo responder (`router --responder echo`); turns on the
    /// interleaved rounds of echo and router.
    #[arg(long)]
    pub echo_prefix: Option<String>,
    /// Measure only the echo responder named by --echo-prefix (no router needed).
    #[arg(long, requires = "echo_prefix")]
    pub echo_only: bool,
    /// Subject prefix of the raw echo (`raw-echo --subject-prefix <prefix>`); adds its rounds
    /// to the interleaved blocks (six rounds each) and the router ÷ raw echo ratios.
    #[arg(long, requires = "echo_prefix", conflicts_with = "echo_only")]
    pub raw_echo_prefix: Option<String>,
    /// Pid of the router process: its CPU per request and memory are measured.
    #[arg(long)]
    pub router_pid: Option<u32>,
    /// Pid of the echo responder process: its CPU per request and memory are measured.
    #[arg(long)]
    pub echo_pid: Option<u32>,
    /// Pid of the raw echo process: its CPU per request and memory are measured.
    #[arg(long, requires = "raw_echo_prefix")]
    pub raw_echo_pid: Option<u32>,
    /// Router Prometheus endpoint read after the run (backpressure counter, and peak RSS
    /// when --router-pid is not given).
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Write the candidate JSON here, and the Markdown summary beside it (`.md`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Sticky users per tenant in the request corpus (`u-0` .. `u-<n-1>`).
    #[arg(long, default_value_t = crate::corpus::DEFAULT_USERS)]
    pub users: u64,
    /// How long to wait for a responder on a subject before giving up the run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub wait_for_responders: Duration,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, short)]
    pub quiet: bool,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The router alone, one measured window.
    Router,
    /// The echo responder alone, one measured window.
    Echo,
    /// Interleaved rounds of echo and router.
    Interleaved,
}

impl Mode {
    /// Name written to the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Router => "router",
            Mode::Echo => "echo",
            Mode::Interleaved => "interleaved",
        }
    }

    /// True when the router is measured.
    pub fn runs_router(self) -> bool {
        matches!(self, Mode::Router | Mode::Interleaved)
    }

    /// True when the echo responder is measured.
    pub fn runs_echo(self) -> bool {
        matches!(self, Mode::Echo | Mode::Interleaved)
    }
}

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Each requester sends its next request when the previous reply arrives.
    Closed,
    /// Requests leave on a fixed schedule of `rate` per second in total.
    Open {
        /// Requests per second, all requesters together.
        rate: f64,
    },
}

/// The second load shape of an interleaved run: more callers, fewer blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondShape {
    /// Concurrent callers.
    pub concurrency: usize,
    /// Blocks of interleaved rounds.
    pub blocks: usize,
}

/// The second load shape when the options name none.
pub const DEFAULT_SECOND_SHAPE: SecondShape = SecondShape {
    concurrency: 1000,
    blocks: 2,
};

/// Validated settings of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// NATS URL.
    pub nats_url: String,
    /// TLS files, already checked to exist, when TLS is on (the CA is always given).
    pub tls: Option<ClientTls>,
    /// Router decide subject.
    pub router_subject: String,
    /// Echo responder's decide subject, when one is measured.
    pub echo_subject: Option<String>,
    /// Raw echo's decide subject, when it is measured (interleaved mode only).
    pub raw_echo_subject: Option<String>,
    /// What is measured.
    pub mode: Mode,
    /// Closed or open loop.
    pub load: Load,
    /// Requesters / in-flight bound.
    pub concurrency: usize,
    /// Connections (never more than `concurrency`).
    pub connections: usize,
    /// Measured length of a single-side run.
    pub duration: Duration,
    /// Warm-up of each side.
    pub warmup: Duration,
    /// Measured length of one interleaved round.
    pub round: Duration,
    /// Settling time at the start of each round.
    pub round_warmup: Duration,
    /// Blocks of interleaved rounds (four each, six with the raw echo).
    pub blocks: usize,
    /// The second load shape, when one is measured (interleaved rounds, closed loop).
    pub second_shape: Option<SecondShape>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Sticky users per tenant.
    pub users: u64,
    /// Responder wait.
    pub wait_for_responders: Duration,
    /// Router metrics endpoint.
    pub metrics_url: Option<String>,
    /// Router process.
    pub router_pid: Option<u32>,
    /// Echo responder process.
    pub echo_pid: Option<u32>,
    /// Raw echo process.
    pub raw_echo_pid: Option<u32>,
    /// Show a progress bar.
    pub progress: bool,
}

impl Plan {
    /// Checks the options; the error says which option to fix.
    pub fn from_args(args: &Args, stderr_is_terminal: bool) -> anyhow::Result<Plan> {
        if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
            bail!("--concurrency must be between 1 and {MAX_CONCURRENCY}");
        }
        if args.connections == 0 || args.connections > MAX_CONNECTIONS {
            bail!("--connections must be between 1 and {MAX_CONNECTIONS}");
        }
        if args.duration.is_zero() || args.duration > MAX_DURATION {
            bail!("--duration must be more than 0 and at most 1h");
        }
        if args.warmup > MAX_WARMUP {
            bail!("--warmup must be at most 10m");
        }
        if args.request_timeout.is_zero() || args.request_timeout > MAX_REQUEST_TIMEOUT {
            bail!("--request-timeout must be more than 0 and at most 60s");
        }
        if args.wait_for_responders > MAX_REQUEST_TIMEOUT {
            bail!("--wait-for-responders must be at most 60s");
        }
        let load = match args.rate {
            None => Load::Closed,
            Some(rate) if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE => Load::Open { rate },
            Some(_) => bail!("--rate must be a number of requests per second above 0"),
        };
        if args.round.is_zero() || args.round > MAX_DURATION {
            bail!("--round must be more than 0 and at most 1h");
        }
        if args.round_warmup > MAX_WARMUP {
            bail!("--round-warmup must be at most 10m");
        }
        if !(1..=MAX_BLOCKS).contains(&args.blocks) {
            bail!("--blocks must be between 1 and {MAX_BLOCKS}");
        }
        let router_subject = decide_subject(&args.subject_prefix, "--subject-prefix")?;
        let echo_subject = args
            .echo_prefix
            .as_deref()
            .map(|prefix| decide_subject(prefix, "--echo-prefix"))
            .transpose()?;
        let raw_echo_subject = args
            .raw_echo_prefix
            .as_deref()
            .map(|prefix| decide_subject(prefix, "--raw-echo-prefix"))
            .transpose()?;

        let tls = args.nats.client_tls()?;
        for (pid, option) in [
            (args.router_pid, "--router-pid"),
            (args.echo_pid, "--echo-pid"),
            (args.raw_echo_pid, "--raw-echo-pid"),
        ] {
            if let Some(pid) = pid {
                ProcessProbe::new(pid).with_context(|| format!("{option} {pid}"))?;
            }
        }
        let mode = match (&echo_subject, args.echo_only) {
            (Some(_), true) => Mode::Echo,
            (Some(_), false) => Mode::Interleaved,
            (None, _) => Mode::Router,
        };
        Ok(Plan {
            nats_url: args.nats.nats_url.clone(),
            tls,
            router_subject,
            echo_subject,
            raw_echo_subject,
            mode,
            load,
            concurrency: args.concurrency,
            connections: args.connections.min(args.concurrency),
            duration: args.duration,
            warmup: args.warmup,
            round: args.round,
            round_warmup: args.round_warmup,
            blocks: args.blocks,
            second_shape: second_shape(args, mode, load)?,
            request_timeout: args.request_timeout,
            users: args.users,
            wait_for_responders: args.wait_for_responders,
            metrics_url: args.metrics_url.clone(),
            router_pid: args.router_pid,
            echo_pid: args.echo_pid,
            raw_echo_pid: args.raw_echo_pid,
            progress: !args.quiet && stderr_is_terminal,
        })
    }
}

/// The second load shape the options ask for: by default 2 blocks at 1,000 callers in an
/// interleaved closed-loop run, none otherwise; an explicit value the run cannot honour is
/// an error, not ignored.
fn second_shape(args: &Args, mode: Mode, load: Load) -> anyhow::Result<Option<SecondShape>> {
    let explicit = args.second_shape_concurrency.is_some() || args.second_shape_blocks.is_some();
    let concurrency = args
        .second_shape_concurrency
        .unwrap_or(DEFAULT_SECOND_SHAPE.concurrency);
    let blocks = args
        .second_shape_blocks
        .unwrap_or(DEFAULT_SECOND_SHAPE.blocks);
    if concurrency == 0 || blocks == 0 {
        return Ok(None);
    }
    if mode != Mode::Interleaved || load != Load::Closed {
        if explicit {
            bail!(
                "--second-shape-concurrency and --second-shape-blocks need interleaved rounds \
                 (--echo-prefix without --echo-only) in a closed loop (no --rate)"
            );
        }
        return Ok(None);
    }
    if concurrency > MAX_CONCURRENCY || blocks > MAX_BLOCKS {
        bail!(
            "--second-shape-concurrency must be at most {MAX_CONCURRENCY} and \
             --second-shape-blocks at most {MAX_BLOCKS} (0 turns the second shape off)"
        );
    }
    if concurrency <= args.concurrency {
        if !explicit {
            // The main shape already has as many callers: there is no second one to add.
            return Ok(None);
        }
        bail!(
            "--second-shape-concurrency ({concurrency}) must be above --concurrency ({}): it \
             is the shape with more callers",
            args.concurrency
        );
    }
    Ok(Some(SecondShape {
        concurrency,
        blocks,
    }))
}

/// `<prefix>.v1.decide`, when `prefix` is a plain subject.
fn decide_subject(prefix: &str, option: &str) -> anyhow::Result<String> {
    let prefix = prefix.trim_end_matches('.');
    if prefix.is_empty() || prefix.contains(|c: char| c.is_whitespace() || c == '*' || c == '>') {
        bail!("{option} must be a plain subject such as beamline.router");
    }
    Ok(format!("{prefix}.v1.decide"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["router-bench"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("valid arguments")
    }

    #[test]
    fn defaults() {
        let plan = Plan::from_args(&args(&[]), true).expect("plan");
        assert_eq!(plan.router_subject, "beamline.router.v1.decide");
        assert_eq!(plan.mode, Mode::Router);
        assert_eq!(plan.load, Load::Closed);
        assert_eq!(plan.concurrency, 64);
        assert_eq!(plan.connections, 4);
        assert_eq!(plan.duration, Duration::from_secs(10));
        assert_eq!(plan.warmup, Duration::from_secs(2));
        assert!(plan.tls.is_none());
        assert!(plan.progress);
    }

    #[test]
    fn modes_and_loads() {
        let plan = Plan::from_args(&args(&["--echo-prefix", "beamline.echo"]), true).expect("plan");
        assert_eq!(plan.mode, Mode::Interleaved);
        assert_eq!(
            plan.echo_subject.as_deref(),
            Some("beamline.echo.v1.decide")
        );
        assert_eq!((plan.blocks, plan.round), (8, Duration::from_secs(2)));
        assert_eq!(
            plan.second_shape,
            Some(SecondShape {
                concurrency: 1000,
                blocks: 2
            }),
            "interleaved closed-loop runs measure 1,000 callers too"
        );
        let off = ["--echo-prefix", "e", "--second-shape-blocks", "0"];
        assert_eq!(
            Plan::from_args(&args(&off), true)
                .expect("plan")
                .second_shape,
            None
        );
        let open = ["--echo-prefix", "e", "--rate", "500"];
        assert_eq!(
            Plan::from_args(&args(&open), true)
                .expect("plan")
                .second_shape,
            None
        );
        let wide = ["--echo-prefix", "e", "--concurrency", "1000"];
        let wide = Plan::from_args(&args(&wide), true).expect("plan");
        assert_eq!(
            wide.second_shape, None,
            "the main shape has the callers already"
        );
        let router_only = Plan::from_args(&args(&[]), true).expect("plan");
        assert_eq!(
            router_only.second_shape, None,
            "no echo, no interleaved rounds"
        );
        let plan = Plan::from_args(
            &args(&["--echo-prefix", "e", "--echo-only", "--rate", "500", "-q"]),
            true,
        )
        .expect("plan");
        assert_eq!(plan.mode, Mode::Echo);
        assert_eq!(plan.load, Load::Open { rate: 500.0 });
        assert!(!plan.progress);
        assert!(
            Args::try_parse_from(["router-bench", "--echo-only"]).is_err(),
            "--echo-only needs the echo's prefix"
        );
    }

    #[test]
    fn raw_echo_joins_the_interleaved_rounds() {
        let plan = Plan::from_args(&args(&["--echo-prefix", "beamline.echo"]), true).expect("plan");
        assert_eq!(plan.raw_echo_subject, None);
        let pid = std::process::id().to_string();
        let plan = Plan::from_args(
            &args(&[
                "--echo-prefix",
                "beamline.echo",
                "--raw-echo-prefix",
                "beamline.raw",
                "--raw-echo-pid",
                &pid,
            ]),
            true,
        )
        .expect("plan");
        assert_eq!(plan.mode, Mode::Interleaved);
        assert_eq!(
            plan.raw_echo_subject.as_deref(),
            Some("beamline.raw.v1.decide")
        );
        assert_eq!(plan.raw_echo_pid, Some(std::process::id()));
        for argv in [
            vec!["router-bench", "--raw-echo-prefix", "beamline.raw"],
            vec![
                "router-bench",
                "--echo-prefix",
                "e",
                "--echo-only",
                "--raw-echo-prefix",
                "r",
            ],
            vec!["router-bench", "--echo-prefix", "e", "--raw-echo-pid", "1"],
        ] {
            assert!(Args::try_parse_from(&argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn prefix_and_connections() {
        let plan = Plan::from_args(
            &args(&["--subject-prefix", "acme.router.", "--concurrency", "2"]),
            false,
        )
        .expect("plan");
        assert_eq!(plan.router_subject, "acme.router.v1.decide");
        assert_eq!(
            plan.connections, 2,
            "never more connections than requesters"
        );
        assert!(!plan.progress, "no bar when stderr is not a terminal");
    }

    #[test]
    fn rejects_bad_values_with_the_option_name() {
        for (argv, needle) in [
            (vec!["--concurrency", "0"], "--concurrency"),
            (vec!["--connections", "0"], "--connections"),
            (vec!["--duration", "0s"], "--duration"),
            (vec!["--rate", "0"], "--rate"),
            (vec!["--rate", "NaN"], "--rate"),
            (vec!["--subject-prefix", "a b"], "--subject-prefix"),
            (vec!["--echo-prefix", "a.>"], "--echo-prefix"),
            (
                vec!["--echo-prefix", "e", "--raw-echo-prefix", "r *"],
                "--raw-echo-prefix",
            ),
            (vec!["--blocks", "0"], "--blocks"),
            (
                vec!["--echo-prefix", "e", "--second-shape-concurrency", "10001"],
                "--second-shape-concurrency",
            ),
            (
                vec!["--echo-prefix", "e", "--second-shape-concurrency", "64"],
                "must be above --concurrency",
            ),
            (
                vec![
                    "--echo-prefix",
                    "e",
                    "--rate",
                    "10",
                    "--second-shape-blocks",
                    "3",
                ],
                "closed loop",
            ),
            (
                vec!["--second-shape-concurrency", "500"],
                "interleaved rounds",
            ),
            (vec!["--round", "0s"], "--round"),
            (
                vec!["--tls-ca", "/definitely/not/here.pem"],
                "cargo xtask certs",
            ),
        ] {
            let err = Plan::from_args(&args(&argv), true).expect_err(needle);
            assert!(format!("{err:#}").contains(needle), "{err:#}");
        }
    }

    #[test]
    fn client_cert_needs_key_and_ca() {
        assert!(Args::try_parse_from(["router-bench", "--tls-cert", "c.pem"]).is_err());
        let err = Plan::from_args(&args(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]), true)
            .expect_err("no CA");
        assert!(err.to_string().contains("--tls-ca"));
    }

    #[test]
    fn tls_files_are_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").expect("write");
        let ca_arg = ca.to_string_lossy().into_owned();
        let plan = Plan::from_args(&args(&["--tls-ca", &ca_arg]), true).expect("plan");
        assert_eq!(plan.tls.map(|t| t.client), Some(None));
        let err = Plan::from_args(
            &args(&[
                "--tls-ca",
                &ca_arg,
                "--tls-cert",
                &ca_arg,
                "--tls-key",
                "/nope.key",
            ]),
            true,
        )
        .expect_err("missing key");
        assert!(format!("{err:#}").contains("--tls-key"));
    }
}
