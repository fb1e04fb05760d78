//! Figures for the reports: percentiles and the machine's load.

/// The `p` quantile (0 to 1) of `sorted` microseconds, in milliseconds (NaN when empty).
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// The one-minute load average (`?` where unknown).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_pick_the_nearest_rank_in_milliseconds() {
        let us = [1_000, 2_000, 3_000, 4_000, 5_000];
        assert!((percentile(&us, 0.5) - 3.0).abs() < 1e-9);
        assert!((percentile(&us, 1.0) - 5.0).abs() < 1e-9);
        assert!((percentile(&us, 0.0) - 1.0).abs() < 1e-9);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
