//! How many CPUs strata's own worker threads may use: the machine's cores, cut to the
//! cgroup's CPU quota (a pod limited to 400m gets one worker, not one per host core), which
//! `std::thread::available_parallelism` reads on Linux (cgroup v1 `cpu.cfs_quota_us` and v2
//! `cpu.max`), and at most `cap`.

/// Worker threads worth running for CPU-bound work, between 1 and `cap`.
pub fn cpu_budget(cap: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, cap.max(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_budget_is_at_least_one_and_at_most_the_cap() {
        assert!(super::cpu_budget(0) == 1);
        let b = super::cpu_budget(4);
        assert!((1..=4).contains(&b));
    }
}
