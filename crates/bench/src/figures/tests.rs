//! The figures of rounds and blocks: ratios, drift, spreads and keys.

use super::*;

fn round(side: Side, rps: f64, p99: f64, cpu: f64, requests: u64) -> RoundFigures {
    RoundFigures {
        block: 0,
        side,
        rps,
        p50_ms: p99 / 2.0,
        p99_ms: p99,
        requests,
        errors: 0,
        cpu_s: Some(cpu),
    }
}

#[test]
fn a_block_is_router_over_echo() {
    let rounds = [
        round(Side::Echo, 100.0, 1.0, 1.0, 1000),
        round(Side::Router, 80.0, 1.5, 1.6, 800),
        round(Side::Router, 60.0, 2.5, 1.2, 600),
        round(Side::Echo, 100.0, 1.0, 1.0, 1000),
    ];
    let block = BlockFigures::from_rounds(&rounds).expect("a block");
    assert!((block.throughput - 0.7).abs() < 1e-9);
    assert!((block.p99 - 2.0).abs() < 1e-9);
    // Router 2.8 s / 1400 requests = 2 ms; echo 2 s / 2000 = 1 ms.
    assert_eq!(block.cpu_per_request, Some(2.0));
    assert_eq!(block.echo_aa, 1.0);
    assert_eq!(rounds[1].cpu_us_per_request(), Some(2000.0));
}

#[test]
fn rounds_out_of_pattern_make_no_block() {
    let rounds = [
        round(Side::Router, 1.0, 1.0, 1.0, 1),
        round(Side::Echo, 1.0, 1.0, 1.0, 1),
        round(Side::Router, 1.0, 1.0, 1.0, 1),
        round(Side::Echo, 1.0, 1.0, 1.0, 1),
    ];
    assert!(BlockFigures::from_rounds(&rounds).is_none());
    assert!(BlockFigures::from_rounds(&rounds[..3]).is_none());
}

#[test]
fn a_linear_drift_cancels_within_a_block() {
    // The machine slows by 10 % per round; the router is 0.8 of the echo throughout.
    let speed = [1.0, 0.9, 0.8, 0.7];
    let rounds: Vec<RoundFigures> = BLOCK_PATTERN
        .iter()
        .zip(speed)
        .map(|(side, s)| {
            let base = if *side == Side::Router { 80.0 } else { 100.0 };
            round(*side, base * s, 1.0, 1.0, 100)
        })
        .collect();
    let block = BlockFigures::from_rounds(&rounds).expect("a block");
    assert!((block.throughput - 0.8).abs() < 1e-9, "{block:?}");
    assert!(
        (block.echo_aa - 0.7).abs() < 1e-9,
        "the A/A check sees the drift"
    );
}

#[test]
fn a_four_round_block_has_no_raw_echo_ratio() {
    let rounds = [
        round(Side::Echo, 100.0, 1.0, 1.0, 1000),
        round(Side::Router, 80.0, 1.0, 1.0, 800),
        round(Side::Router, 80.0, 1.0, 1.0, 800),
        round(Side::Echo, 100.0, 1.0, 1.0, 1000),
    ];
    let block = BlockFigures::from_rounds(&rounds).expect("a block");
    for ratio in Ratio::TO_RAW_ECHO {
        assert_eq!(ratio.of(&block), None, "{ratio:?}");
    }
    let json = serde_json::to_value(&block).expect("json");
    assert!(
        json.get("throughput_to_raw_echo").is_none(),
        "a four-round block reads as before: {json}"
    );
    let old = r#"{"throughput":0.8,"p50":1.0,"p99":1.0,"cpu_per_request":null,"echo_aa":1.0}"#;
    let back: BlockFigures = serde_json::from_str(old).expect("an old block reads");
    assert_eq!(back.throughput_to_raw_echo, None);
}

#[test]
fn a_six_round_block_gives_both_ratio_sets() {
    let rounds = [
        round(Side::RawEcho, 200.0, 0.5, 0.5, 1000),
        round(Side::Echo, 100.0, 1.0, 1.0, 1000),
        round(Side::Router, 80.0, 1.5, 1.6, 800),
        round(Side::Router, 60.0, 2.5, 1.2, 600),
        round(Side::Echo, 100.0, 1.0, 1.0, 1000),
        round(Side::RawEcho, 200.0, 0.5, 0.5, 1000),
    ];
    let block = BlockFigures::from_rounds(&rounds).expect("a block");
    // Router ÷ echo exactly as in a four-round block.
    assert!((block.throughput - 0.7).abs() < 1e-9);
    assert!((block.p99 - 2.0).abs() < 1e-9);
    assert_eq!(block.cpu_per_request, Some(2.0));
    assert_eq!(block.echo_aa, 1.0);
    // Router ÷ raw echo: 140 / 400 rps, 4 / 1 ms p99, 2 ms / 0.5 ms CPU per request.
    let near =
        |value: Option<f64>, expected: f64| value.is_some_and(|v| (v - expected).abs() < 1e-9);
    assert!(near(block.throughput_to_raw_echo, 0.35), "{block:?}");
    assert!(near(block.p50_to_raw_echo, 4.0), "{block:?}");
    assert!(near(block.p99_to_raw_echo, 4.0), "{block:?}");
    assert!(near(block.cpu_per_request_to_raw_echo, 4.0), "{block:?}");
    assert_eq!(
        Ratio::ThroughputToRawEcho.of(&block),
        block.throughput_to_raw_echo
    );
    let json = serde_json::to_value(&block).expect("json");
    let back: BlockFigures = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, block);
}

#[test]
fn a_linear_drift_cancels_for_every_pair_of_a_six_round_block() {
    // The machine slows by 10 % per round; router 0.8 of echo, echo 0.5 of raw echo.
    let speed = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5];
    let rounds: Vec<RoundFigures> = RAW_BLOCK_PATTERN
        .iter()
        .zip(speed)
        .map(|(side, s)| {
            let base = match side {
                Side::RawEcho => 200.0,
                Side::Echo => 100.0,
                Side::Router => 80.0,
            };
            // Latency grows as the machine slows; CPU per request too.
            round(*side, base * s, 10.0 / (base * s), 100.0 / base / s, 100)
        })
        .collect();
    let block = BlockFigures::from_rounds(&rounds).expect("a block");
    assert!((block.throughput - 0.8).abs() < 1e-9, "{block:?}");
    let raw = block.throughput_to_raw_echo.expect("raw ratio");
    assert!((raw - 0.4).abs() < 1e-9, "{block:?}");
    assert!((block.echo_aa - 0.6 / 0.9).abs() < 1e-9, "{block:?}");
}

#[test]
fn six_rounds_out_of_pattern_make_no_block() {
    let sides = [
        [
            Side::Echo,
            Side::RawEcho,
            Side::Router,
            Side::Router,
            Side::RawEcho,
            Side::Echo,
        ],
        [
            Side::RawEcho,
            Side::Echo,
            Side::Router,
            Side::Router,
            Side::RawEcho,
            Side::Echo,
        ],
        [
            Side::RawEcho,
            Side::Router,
            Side::Echo,
            Side::Echo,
            Side::Router,
            Side::RawEcho,
        ],
    ];
    for pattern in sides {
        let rounds: Vec<RoundFigures> = pattern
            .iter()
            .map(|side| round(*side, 1.0, 1.0, 1.0, 1))
            .collect();
        assert!(BlockFigures::from_rounds(&rounds).is_none(), "{pattern:?}");
        assert!(BlockFigures::from_rounds(&rounds[..5]).is_none());
    }
    // A raw echo round inside a four-round block is no block either.
    let rounds: Vec<RoundFigures> = [Side::RawEcho, Side::Router, Side::Router, Side::Echo]
        .iter()
        .map(|side| round(*side, 1.0, 1.0, 1.0, 1))
        .collect();
    assert!(BlockFigures::from_rounds(&rounds).is_none());
}

#[test]
fn all_rounds_are_grouped_by_block_number() {
    let mut rounds = Vec::new();
    for (block, pattern) in [(0, &RAW_BLOCK_PATTERN[..]), (1, &RAW_BLOCK_PATTERN[..])] {
        for side in pattern {
            let mut r = round(*side, 100.0, 1.0, 1.0, 100);
            r.block = block;
            rounds.push(r);
        }
    }
    // A block cut short (a failed run) is left out, the others stay.
    let mut partial = round(Side::RawEcho, 100.0, 1.0, 1.0, 100);
    partial.block = 2;
    rounds.push(partial);
    let blocks = BlockFigures::from_all_rounds(&rounds);
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|b| b.throughput_to_raw_echo == Some(1.0)));
    let four: Vec<RoundFigures> = (0..3)
        .flat_map(|block| {
            BLOCK_PATTERN.iter().map(move |side| RoundFigures {
                block,
                ..round(*side, 1.0, 1.0, 1.0, 1)
            })
        })
        .collect();
    assert_eq!(BlockFigures::from_all_rounds(&four).len(), 3);
    assert_eq!(block_pattern(false), &BLOCK_PATTERN[..]);
    assert_eq!(block_pattern(true), &RAW_BLOCK_PATTERN[..]);
}

#[test]
fn sides_have_their_wire_names() {
    for side in [Side::RawEcho, Side::Echo, Side::Router] {
        let json = serde_json::to_value(side).expect("json");
        assert_eq!(json, side.as_str());
        let back: Side = serde_json::from_value(json).expect("back");
        assert_eq!(back, side);
    }
    assert_eq!(Side::RawEcho.as_str(), "raw_echo");
}

#[test]
fn interval_ranks_follow_the_binomial() {
    // n = 5: (x0, x4) covers the median with 93.75 %; (x1, x3) only 62.5 %.
    assert_eq!(interval_rank(5, 0.90), 0);
    assert_eq!(interval_rank(8, 0.90), 1);
    assert_eq!(interval_rank(10, 0.90), 1);
    assert_eq!(interval_rank(20, 0.90), 5);
    assert_eq!(interval_rank(1, 0.90), 0);
}

#[test]
fn spread_of_a_sample() {
    let mut values = [0.9, 1.1, 1.0, 0.95, 1.05];
    let spread = Spread::from_values(&mut values).expect("spread");
    assert_eq!(spread.median, 1.0);
    assert_eq!((spread.low, spread.high), (0.9, 1.1));
    assert!((spread.relative_half_width - 0.1).abs() < 1e-9);
    assert!(Spread::from_values(&mut []).is_none());
}

#[test]
fn keys_round_trip() {
    for ratio in Ratio::ALL {
        assert_eq!(Ratio::from_key(ratio.key()), Some(ratio));
        assert_eq!(
            ratio.is_to_raw_echo(),
            ratio.key().ends_with("_to_raw_echo")
        );
    }
    assert_eq!(Ratio::from_key("rps"), None);
    // The keys of the gate's policies and of old candidates are unchanged.
    let old: Vec<&str> = Ratio::ALL
        .iter()
        .filter(|r| !r.is_to_raw_echo())
        .map(|r| r.key())
        .collect();
    assert_eq!(
        old,
        [
            "rps_ratio_to_echo",
            "latency_p50_ratio_to_echo",
            "latency_p99_ratio_to_echo",
            "cpu_per_request_ratio_to_echo",
            "echo_aa_ratio"
        ]
    );
    assert_eq!(
        Ratio::TO_RAW_ECHO.map(Ratio::key),
        [
            "rps_ratio_to_raw_echo",
            "latency_p50_ratio_to_raw_echo",
            "latency_p99_ratio_to_raw_echo",
            "cpu_per_request_ratio_to_raw_echo"
        ]
    );
}
