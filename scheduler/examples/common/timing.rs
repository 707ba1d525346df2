//! What the ratio reports (`hub_ratios`, `cross_hub`) share: the sides of a
//! scenario run in turns, and each side's median and minimum.

use std::time::Duration;

/// Timed runs per side, after one warm-up.
pub const RUNS: usize = 7;

/// Median and minimum of one side of a scenario, in ns per operation.
#[derive(Clone, Copy)]
pub struct Timing {
    pub median: f64,
    pub min: f64,
}

impl Timing {
    /// From [`RUNS`] samples.
    pub fn of(mut ns: Vec<f64>) -> Timing {
        ns.sort_by(f64::total_cmp);
        Timing { median: ns[RUNS / 2], min: ns[0] }
    }
}

/// Runs each of `N` sides [`RUNS`] times after a warm-up (a tenth of
/// `count`), alternating the sides run by run so that a disturbance of the
/// machine hits all alike. `run(side, count)` performs `count` of `side`'s
/// rounds and returns the time they took, which is divided by `ops`, the
/// operations `count` stands for.
pub fn alternate<const N: usize>(count: u64, ops: u64, mut run: impl FnMut(usize, u64) -> Duration) -> [Timing; N] {
    for side in 0..N {
        run(side, count.div_ceil(10));
    }
    let mut ns: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(RUNS));
    for _ in 0..RUNS {
        for (side, samples) in ns.iter_mut().enumerate() {
            samples.push(run(side, count).as_nanos() as f64 / ops as f64);
        }
    }
    ns.map(Timing::of)
}
