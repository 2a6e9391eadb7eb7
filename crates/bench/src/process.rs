//! CPU time and memory of a process on this machine (the router or the echo responder),
//! read from /proc.

use anyhow::Context;

/// A process the bench measures, by pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessProbe {
    pid: i32,
}

/// Memory of a process, in MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    /// Resident set size now.
    pub rss_mib: f64,
    /// Peak resident set size since the process started.
    pub peak_mib: f64,
}

impl ProcessProbe {
    /// Probes process `pid`; fails, naming it, when it does not exist or /proc cannot be read.
    pub fn new(pid: u32) -> anyhow::Result<Self> {
        let pid = i32::try_from(pid).with_context(|| format!("pid {pid} is out of range"))?;
        let probe = ProcessProbe { pid };
        probe
            .cpu_seconds()
            .with_context(|| format!("cannot read /proc/{pid}: is process {pid} running?"))?;
        Ok(probe)
    }

    /// User plus system CPU seconds the process (all its threads) has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = procfs::process::Process::new(self.pid)?.stat()?;
        Ok((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
    }

    /// Resident and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = procfs::process::Process::new(self.pid)?.status()?;
        let mib = |kib: Option<u64>| kib.map(|k| k as f64 / 1024.0).unwrap_or(0.0);
        Ok(Memory {
            rss_mib: mib(status.vmrss),
            peak_mib: mib(status.vmhwm),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let probe = ProcessProbe::new(std::process::id()).expect("this process");
        let before = probe.cpu_seconds().expect("cpu");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(probe.cpu_seconds().expect("cpu") >= before);
        let memory = probe.memory().expect("memory");
        assert!(memory.peak_mib >= memory.rss_mib && memory.rss_mib > 0.0);
    }

    #[test]
    fn a_missing_process_is_named() {
        let err = ProcessProbe::new(i32::MAX as u32).expect_err("no such pid");
        assert!(format!("{err:#}").contains("is process"), "{err:#}");
    }
}
