//! How a plan is divided: processes (each within its file-descriptor budget) and pinned worker
//! threads. Worker `w` of `W` owns the global connections `i` with `i % W == w`, so the round
//! robin over targets and source addresses holds globally whatever the division.

use serde::{Deserialize, Serialize};

use crate::plan::UsageError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub total_workers: u32,
    pub processes: Vec<Vec<WorkerShare>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerShare {
    pub id: u32,
    /// CPU the worker pins itself to.
    pub core: Option<usize>,
}

impl Layout {
    /// `fd_budget`: connections one process can hold. The process count is the larger of what
    /// was asked and what the budget needs; workers are rounded up to a multiple of it so every
    /// process gets an equal share.
    pub fn new(
        conns: u64,
        fd_budget: u64,
        workers: Option<u32>,
        processes: Option<u32>,
        cores: &[usize],
    ) -> Result<Layout, UsageError> {
        if fd_budget == 0 {
            return Err(UsageError(
                "no file descriptors left for connections: raise RLIMIT_NOFILE (ulimit -n)".into(),
            ));
        }
        if workers == Some(0) || processes == Some(0) {
            return Err(UsageError(
                "--workers and --processes must be at least 1".into(),
            ));
        }
        let needed = conns.div_ceil(fd_budget);
        let p = u64::from(processes.unwrap_or(1)).max(needed);
        if p > 1024 {
            return Err(UsageError(format!(
                "{conns} connections need {p} processes at {fd_budget} descriptors each; raise the hard RLIMIT_NOFILE (`deployer tune verify` shows it) or use fewer connections per load host"
            )));
        }
        let p = p as u32;
        let asked = workers.unwrap_or(cores.len().max(1) as u32);
        let total_workers = asked.max(p).div_ceil(p) * p;
        let per_process = total_workers / p;
        let processes = (0..p)
            .map(|pi| {
                (0..per_process)
                    .map(|k| {
                        let id = pi * per_process + k;
                        WorkerShare {
                            id,
                            core: (!cores.is_empty()).then(|| cores[id as usize % cores.len()]),
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(Layout {
            total_workers,
            processes,
        })
    }

    /// How many of `conns` global connections worker `id` owns.
    pub fn conns_of_worker(&self, conns: u64, id: u32) -> u64 {
        round_robin_share(conns, u64::from(self.total_workers), u64::from(id))
    }

    /// The largest share of one process.
    pub fn max_conns_per_process(&self, conns: u64) -> u64 {
        self.processes
            .iter()
            .map(|ws| ws.iter().map(|w| self.conns_of_worker(conns, w.id)).sum())
            .max()
            .unwrap_or(0)
    }
}

/// How many of `total` items dealt round robin over `parts` land on part `index`.
pub fn round_robin_share(total: u64, parts: u64, index: u64) -> u64 {
    total / parts + u64::from(index < total % parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_when_the_budget_holds_the_plan() {
        let l = Layout::new(2000, 19_000, None, None, &[0, 1]).unwrap();
        assert_eq!(l.processes.len(), 1);
        assert_eq!(l.total_workers, 2);
        assert_eq!(
            l.processes[0][1],
            WorkerShare {
                id: 1,
                core: Some(1)
            }
        );
    }

    #[test]
    fn shards_past_the_fd_budget_with_equal_shares() {
        let l = Layout::new(100_000, 19_000, None, None, &[0, 1]).unwrap();
        assert_eq!(l.processes.len(), 6);
        assert_eq!(l.total_workers, 6);
        assert!(l.max_conns_per_process(100_000) <= 19_000);
        let total: u64 = (0..6).map(|w| l.conns_of_worker(100_000, w)).sum();
        assert_eq!(total, 100_000);
        let l = Layout::new(25_000, 19_000, Some(3), None, &[0, 1]).unwrap();
        assert_eq!((l.processes.len(), l.total_workers), (2, 4));
        assert_eq!(l.processes[1][0].core, Some(0));
    }

    #[test]
    fn impossible_layouts_are_refused() {
        assert!(Layout::new(10, 0, None, None, &[0]).is_err());
        assert!(Layout::new(10, 10, Some(0), None, &[0]).is_err());
        let e = Layout::new(10_000_000, 100, None, None, &[0]).unwrap_err();
        assert!(e.0.contains("RLIMIT_NOFILE"), "{}", e.0);
    }
}
