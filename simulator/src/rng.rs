//! A tiny seeded pseudo-random generator (splitmix64).
//!
//! Every generated object draws from its own generator, seeded from the tenant seed
//! and the object's coordinates (kind, organization, index). That makes each object
//! a pure function of its index: pages can be produced for any `skip` without
//! generating what comes before, and the same seed always gives the same tenant.

/// splitmix64: small, fast, and good enough for test data (not for cryptography).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one object, seeded from the tenant seed and the object's coordinates.
    pub(crate) fn for_object(seed: u64, parts: &[u64]) -> Self {
        let mut state = mix(seed);
        for part in parts {
            state = mix(state ^ mix(part.wrapping_add(0x9E37_79B9_7F4A_7C15)));
        }
        Rng(state)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0). The modulo bias is irrelevant for test data.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with a probability of `percent` in 100.
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty constant pool.
    pub(crate) fn pick<'a, T>(&mut self, pool: &'a [T]) -> &'a T {
        // Pools are non-empty constants; `below` keeps the index in range.
        &pool[self.below(pool.len() as u64) as usize]
    }
}

/// The splitmix64 finalizer: a bijective 64-bit mix.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_objects_differ() {
        let mut a = Rng::for_object(7, &[1, 2, 3]);
        let mut b = Rng::for_object(7, &[1, 2, 3]);
        let mut c = Rng::for_object(7, &[1, 2, 4]);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert_eq!(a.below(0), 0);
    }
}
