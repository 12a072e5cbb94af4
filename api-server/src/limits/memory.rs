//! Memory budgets: how many password hashes and uploads may be in memory at once, from the
//! container's memory limit rather than the node's CPUs.
//!
//! The limit is `MEMORY_LIMIT_BYTES` when set (the operator sets it from the container's limit),
//! else the cgroup's (`memory.max`, or `memory.limit_in_bytes` on cgroup v1). Password hashing may
//! take a quarter of it and uploads in progress half; without a known limit the defaults assume
//! 512 MiB.

/// The memory budget assumed when no limit is known.
pub const DEFAULT_LIMIT: u64 = 512 * 1024 * 1024;

/// The process's memory limit in bytes: the configured one (`MEMORY_LIMIT_BYTES`), else the
/// cgroup's, else [`DEFAULT_LIMIT`].
pub fn memory_limit(configured: Option<u64>) -> u64 {
    configured.or_else(cgroup_limit).unwrap_or(DEFAULT_LIMIT)
}

/// The cgroup's memory limit, if one is set.
fn cgroup_limit() -> Option<u64> {
    ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"].iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        // "max", or v1's "unlimited" (a huge number), mean no limit.
        text.trim().parse::<u64>().ok().filter(|limit| *limit < (1 << 50))
    })
}

/// Password hashes at once: twice the CPUs, but never more than a quarter of the memory limit
/// holds (each hash takes `hash_bytes`); at least one.
pub fn hash_slots(cpus: usize, limit: u64, hash_bytes: u64) -> usize {
    let by_memory = (limit / 4) / hash_bytes.max(1);
    (cpus * 2).min(usize::try_from(by_memory).unwrap_or(usize::MAX)).max(1)
}

/// Uploads in memory at once: at most 16, and no more than half the memory limit holds at the
/// largest upload size; at least one.
pub fn upload_slots(limit: u64, max_upload: usize) -> usize {
    let by_memory = (limit / 2) / (max_upload as u64).max(1);
    usize::try_from(by_memory).unwrap_or(usize::MAX).clamp(1, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn hashing_is_budgeted_from_the_memory_limit_not_the_node() {
        // A 16-core node and a 512 MiB container: 32 hashes of 19 MiB would take 608 MiB.
        let slots = hash_slots(16, 512 * MIB, 19 * MIB);
        assert_eq!(slots, 6);
        assert!(slots as u64 * 19 * MIB <= 512 * MIB / 4);
        assert_eq!(hash_slots(2, 24 * 1024 * MIB, 19 * MIB), 4, "CPUs bound it when memory is plenty");
        assert_eq!(hash_slots(8, 10 * MIB, 19 * MIB), 1, "always one");
    }

    #[test]
    fn uploads_are_budgeted_from_the_memory_limit() {
        assert_eq!(upload_slots(512 * MIB, 25 * MIB as usize), 10);
        assert_eq!(upload_slots(128 * MIB, 25 * MIB as usize), 2);
        assert_eq!(upload_slots(64 * 1024 * MIB, 25 * MIB as usize), 16);
        assert_eq!(upload_slots(MIB, 25 * MIB as usize), 1);
    }
}
