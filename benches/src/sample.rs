//! A small sampler for `autoawait bench`, where criterion is not linked: warm up,
//! then time samples of a fixed number of iterations, and report the median per
//! iteration with the interquartile range.

use std::time::{Duration, Instant};

use crate::{Case, Measurement};

/// How long to warm up and to measure each case, and in how many samples.
#[derive(Clone, Copy, Debug)]
pub struct Sampler {
    /// Run the case this long before measuring (and estimate its speed).
    pub warm_up: Duration,
    /// Spread the samples over this long.
    pub measure: Duration,
    /// How many samples.
    pub samples: usize,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            warm_up: Duration::from_millis(500),
            measure: Duration::from_secs(2),
            samples: 40,
        }
    }
}

impl Sampler {
    /// About a fifth of the default's time: a quick comparison, noisier.
    pub fn quick() -> Self {
        Sampler {
            warm_up: Duration::from_millis(100),
            measure: Duration::from_millis(400),
            samples: 20,
        }
    }

    /// Measures `case`, reported in `group`.
    pub fn sample(&self, group: &str, case: &mut Case) -> Measurement {
        // Warm up with doubling batches; the last batch says how fast one
        // iteration is.
        let start = Instant::now();
        let (mut iters, mut per_iter) = (1u64, 0.0);
        while start.elapsed() < self.warm_up {
            per_iter = case.run(iters).as_secs_f64() / iters as f64;
            iters = iters.saturating_mul(2);
        }
        let budget = self.measure.as_secs_f64() / self.samples as f64;
        let batch = if per_iter > 0.0 {
            ((budget / per_iter) as u64).max(1)
        } else {
            iters
        };
        let mut times: Vec<f64> = (0..self.samples.max(1))
            .map(|_| case.run(batch).as_nanos() as f64 / batch as f64)
            .collect();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Measurement {
            group: group.to_owned(),
            subject: case.subject.clone(),
            case: case.name.clone(),
            median: at(0.5),
            low: at(0.25),
            high: at(0.75),
        }
    }
}
