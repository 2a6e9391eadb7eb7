//! nats-server versions: parsing `nats-server --version` and the minimum we accept.

use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

/// The oldest nats-server accepted (JetStream API and `server_2_10` client features).
pub const MIN_VERSION: Version = Version {
    major: 2,
    minor: 10,
    patch: 0,
};

impl Version {
    /// Parses the output of `nats-server --version` (`nats-server: v2.14.6`) or a bare
    /// version (`2.14.6`, `v2.10.0-beta.1`).
    pub fn parse(text: &str) -> Option<Self> {
        let word = text.split_whitespace().find(|w| {
            w.trim_start_matches('v')
                .starts_with(|c: char| c.is_ascii_digit())
        })?;
        let core = word.trim_start_matches('v');
        let core = core.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let patch = parts.next().unwrap_or(Ok(0)).ok()?;
        Some(Self {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Runs `<binary> --version` and parses the answer.
pub fn version_of(binary: &Path) -> anyhow::Result<Version> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("could not run {} --version", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "{} --version failed ({}): {}",
            binary.display(),
            output.status,
            text.trim()
        );
    }
    Version::parse(&text).with_context(|| {
        format!(
            "could not read a version from `{} --version`: {:?}",
            binary.display(),
            text.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_output_and_bare_versions() {
        let v = Version::parse("nats-server: v2.14.6\n");
        assert_eq!(
            v,
            Some(Version {
                major: 2,
                minor: 14,
                patch: 6
            })
        );
        assert_eq!(Version::parse("2.9.10").map(|v| v.minor), Some(9));
        assert_eq!(Version::parse("v2.10.0-beta.1").map(|v| v.minor), Some(10));
        assert_eq!(Version::parse("nats-server: unknown"), None);
    }

    #[test]
    fn minimum_is_enforced_by_ordering() {
        let old = Version::parse("2.9.25");
        let new = Version::parse("2.10.0");
        assert!(old.is_some_and(|v| v < MIN_VERSION));
        assert!(new.is_some_and(|v| v >= MIN_VERSION));
    }
}
