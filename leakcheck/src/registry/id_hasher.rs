//! The hasher of the registry's tables.

use std::hash::Hasher;

/// Task ids, thread keys and scope ids are sequential numbers, not attacker-chosen keys: a
/// multiply spreads them over shards and buckets for a fraction of SipHash's cost, on paths
/// taken several times per task and per thread spawn.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }

    fn finish(&self) -> u64 {
        // Fibonacci hashing: the high bits of the product depend on all bits of the id.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    const TASK_SHARDS: usize = super::super::tasks::TASK_SHARDS;

    #[test]
    fn sequential_ids_spread_over_shards() {
        let mut used = [0usize; TASK_SHARDS];
        for id in 1..=3200u64 {
            let mut hasher = IdHasher::default();
            id.hash(&mut hasher);
            used[hasher.finish() as usize % TASK_SHARDS] += 1;
        }
        // Even enough: no shard gets more than twice its share.
        assert!(used.iter().all(|&n| n > 0 && n <= 200), "{used:?}");
    }
}
