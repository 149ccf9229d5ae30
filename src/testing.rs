//! Helpers of the unit tests.

/// A small, seeded pseudo-random generator: property tests that fail fail the same way again.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    /// A number below `below` (0 when `below` is 0).
    pub(crate) fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }

    /// True one time in `one_in`.
    pub(crate) fn chance(&mut self, one_in: u64) -> bool {
        self.next(one_in) == 0
    }
}
