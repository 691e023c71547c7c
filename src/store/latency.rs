//! Latencies kept as log-scale histogram buckets, so percentiles come from a few hundred
//! counters per route instead of one row per request: report memory and time do not grow
//! with traffic.
//!
//! Bucket `b > 0` holds latencies in `[GROWTH^(b-1), GROWTH^b)` microseconds, a relative
//! error under 5%; bucket 0 holds everything under one microsecond.

use std::time::Duration;

const GROWTH: f64 = 1.05;

/// The bucket a latency is counted in.
pub fn bucket_of(latency: Duration) -> i64 {
    let micros = latency.as_micros() as f64;
    if micros < 1.0 {
        return 0;
    }
    (micros.ln() / GROWTH.ln()).floor() as i64 + 1
}

/// A representative latency of a bucket (the geometric middle), in milliseconds.
pub fn bucket_millis(bucket: i64) -> f64 {
    if bucket <= 0 {
        return 0.0;
    }
    let low = GROWTH.powi(bucket as i32 - 1);
    low * GROWTH.sqrt() / 1000.0
}

/// The `q` quantile (0..=1) of a histogram given as (bucket, count) sorted by bucket.
pub fn quantile(buckets: &[(i64, u64)], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (bucket, count) in buckets {
        seen += count;
        if seen >= rank {
            return Some(bucket_millis(*bucket));
        }
    }
    buckets.last().map(|(b, _)| bucket_millis(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_stay_within_five_percent() {
        for ms in [1u64, 3, 10, 42, 200, 999, 5000, 60_000] {
            let d = Duration::from_millis(ms);
            let back = bucket_millis(bucket_of(d));
            let error = (back - ms as f64).abs() / ms as f64;
            assert!(error < 0.05, "{ms} ms came back as {back}");
        }
        assert_eq!(bucket_of(Duration::ZERO), 0);
    }

    #[test]
    fn quantiles_pick_the_ranked_bucket() {
        let ten = bucket_of(Duration::from_millis(10));
        let hundred = bucket_of(Duration::from_millis(100));
        let h = vec![(ten, 99), (hundred, 1)];
        assert!((quantile(&h, 0.5).unwrap() - 10.0).abs() < 0.5);
        assert!((quantile(&h, 0.99).unwrap() - 10.0).abs() < 0.5);
        assert!((quantile(&h, 1.0).unwrap() - 100.0).abs() < 5.0);
        assert_eq!(quantile(&[], 0.5), None);
    }
}
