//! `router top`: the fleet table redrawn every interval, with decisions per second and the
//! breakers that are not closed.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use async_nats::Client;

use super::commands::TopArgs;
use super::fleet::{fleet_stats, table};

/// Clears the terminal and moves the cursor home.
const CLEAR: &str = "\x1b[2J\x1b[H";

/// Redraws until Ctrl-C (or `--count` screens).
pub async fn run(client: &Client, args: &TopArgs) -> ExitCode {
    let terminal = std::io::stdout().is_terminal();
    let mut last: HashMap<String, (u64, Instant)> = HashMap::new();
    let mut screens = 0;
    let wait = args.interval.min(std::time::Duration::from_secs(1)) / 2;
    loop {
        let routers = match fleet_stats(client, wait).await {
            Ok(routers) => routers,
            Err(err) => {
                eprintln!("router: cannot ask the fleet: {err:#}");
                return ExitCode::from(2);
            }
        };
        let now = Instant::now();
        let rates: Vec<Option<f64>> = routers
            .iter()
            .map(|r| {
                let (before, at) = last.get(r.id())?;
                let seconds = now.duration_since(*at).as_secs_f64();
                (seconds > 0.0).then(|| r.decisions().saturating_sub(*before) as f64 / seconds)
            })
            .collect();
        last = routers
            .iter()
            .map(|r| (r.id().to_owned(), (r.decisions(), now)))
            .collect();
        let mut screen = String::new();
        if terminal {
            screen.push_str(CLEAR);
        }
        screen.push_str(&format!(
            "router top: {} router(s), every {:?} (Ctrl-C to quit)\n\n",
            routers.len(),
            args.interval
        ));
        screen.push_str(&table(&routers, Some(&rates)));
        // The first screen has no rate yet (and an empty float sum is -0).
        let known: Vec<f64> = rates.iter().flatten().copied().collect();
        let total = if known.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.0}", known.iter().fold(0.0, |sum, r| sum + r))
        };
        screen.push_str(&format!("\nfleet: {total} decisions/s\n"));
        screen.push_str(&breakers(&routers));
        if !terminal {
            screen.push_str("---\n");
        }
        print!("{screen}");
        screens += 1;
        if args.count.is_some_and(|count| screens >= count) {
            return ExitCode::SUCCESS;
        }
        tokio::select! {
            _ = tokio::time::sleep(args.interval.saturating_sub(wait)) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}

/// One line per breaker that is not closed, per router.
fn breakers(routers: &[super::RouterStats]) -> String {
    let mut lines = String::new();
    for router in routers {
        for breaker in router.data()["breakers"].as_array().into_iter().flatten() {
            lines.push_str(&format!(
                "  {}  breaker {}/{}/{} {}\n",
                router.id(),
                breaker["tenant"].as_str().unwrap_or("?"),
                breaker["policy"].as_str().unwrap_or("?"),
                breaker["provider"].as_str().unwrap_or("?"),
                breaker["state"].as_str().unwrap_or("?"),
            ));
        }
    }
    if lines.is_empty() {
        "breakers: all closed\n".to_owned()
    } else {
        format!("breakers not closed:\n{lines}")
    }
}
