//! A small reader for the Prometheus text exposition format, enough to pick a few samples.
//!
//! Only sample lines are read (`name{labels} value [timestamp]`); `# HELP` / `# TYPE` and
//! other comments are skipped. Label values may contain escaped quotes, spaces and braces.
//! No crate is used: the few well-known parsers pull in regex engines or are unmaintained,
//! and the router's `/metrics` output is plain.

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// The raw label set between the braces (empty when there is none).
    pub labels: String,
    /// The value (`NaN`, `+Inf` and `-Inf` included).
    pub value: f64,
}

/// Parses every sample line of `text`; lines that are not valid samples are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// The sum of all samples named `name` across label sets, or `None` when there is none.
pub fn sum(samples: &[Sample], name: &str) -> Option<f64> {
    let mut found = samples.iter().filter(|s| s.name == name).peekable();
    found.peek()?;
    Some(found.map(|s| s.value).sum())
}

/// The largest sample named `name` across label sets, or `None` when there is none.
pub fn max(samples: &[Sample], name: &str) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .reduce(f64::max)
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let rest = &line[name_end..];
    let (labels, rest) = if let Some(inner) = rest.strip_prefix('{') {
        let close = closing_brace(inner)?;
        (&inner[..close], &inner[close + 1..])
    } else {
        ("", rest)
    };
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next()?)?;
    // An optional timestamp may follow; anything more is not a sample line.
    if fields.nth(1).is_some() {
        return None;
    }
    Some(Sample {
        name: name.to_owned(),
        labels: labels.to_owned(),
        value,
    })
}

/// Index of the `}` closing a label set, skipping braces inside quoted values.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP router_backpressure_active_total Transitions into active.
# TYPE router_backpressure_active_total counter
router_backpressure_active_total{subject="beamline.router.v1.decide"} 2
router_backpressure_active_total{subject="other \"quoted\" {brace}"} 1 1700000000000
# TYPE router_process_peak_rss_bytes gauge
router_process_peak_rss_bytes 52428800
router_process_rss_bytes 4.1943e7
weird_value +Inf
not a sample line at all
"#;

    #[test]
    fn reads_samples_with_and_without_labels() {
        let samples = parse(TEXT);
        assert_eq!(samples.len(), 5);
        assert_eq!(sum(&samples, "router_backpressure_active_total"), Some(3.0));
        assert_eq!(
            max(&samples, "router_process_peak_rss_bytes"),
            Some(52_428_800.0)
        );
        assert_eq!(
            sum(&samples, "router_process_rss_bytes"),
            Some(41_943_000.0)
        );
        assert_eq!(sum(&samples, "weird_value"), Some(f64::INFINITY));
        assert_eq!(samples[1].labels, r#"subject="other \"quoted\" {brace}""#);
    }

    #[test]
    fn absent_metric_is_none_not_zero() {
        let samples = parse(TEXT);
        assert_eq!(sum(&samples, "router_missing"), None);
        assert_eq!(max(&samples, "router_missing"), None);
        assert_eq!(sum(&parse(""), "x"), None);
    }

    #[test]
    fn prefix_names_do_not_match() {
        let samples = parse("router_process_rss_bytes_total 5\n");
        assert_eq!(sum(&samples, "router_process_rss_bytes"), None);
    }

    #[test]
    fn broken_lines_are_skipped() {
        let samples = parse("a{x=\"1\" 3\nb notanumber\nc 1 2 3\n9bad 1\nd 4\n");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].name, "d");
    }
}
