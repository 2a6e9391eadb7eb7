//! Reading the end of a log file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The last `n` lines of `path` (reads at most the last 256 KiB). A missing or unreadable
/// file gives an empty list: this is used inside error messages.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    const MAX: u64 = 256 * 1024;
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX && file.seek(SeekFrom::Start(len - MAX)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| (*l).to_owned()).collect()
}

/// [`tail`] formatted for an error message: indented lines, or a note that the log is empty.
pub fn tail_for_error(path: &Path, n: usize) -> String {
    let lines = tail(path, n);
    if lines.is_empty() {
        return format!("(log {} is empty or missing)", path.display());
    }
    let mut out = format!("last {} lines of {}:", lines.len(), path.display());
    for line in lines {
        out.push_str("\n    ");
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_last_lines() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n")?;
        assert_eq!(tail(&path, 2), vec!["c", "d"]);
        assert_eq!(tail(&path, 10).len(), 4);
        assert!(tail(&dir.path().join("missing"), 3).is_empty());
        Ok(())
    }
}
