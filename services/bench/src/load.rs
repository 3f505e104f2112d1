//! The two ways a scenario is driven. Closed loop: one request in flight,
//! the next sent when the last answered, each round trip recorded in an
//! HdrHistogram (nanoseconds, three significant digits) after a warm-up.
//! Saturated: a fixed number of requests in flight over a few connections,
//! completions counted over a fixed window after a warm-up.
//!
//! A call reports a wrong answer as an error; errors are counted, never
//! recorded as samples.

use crate::progress::Progress;
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The largest latency recorded; longer calls are recorded as this.
const MAX_RECORDED_NANOS: u64 = 120_000_000_000;

/// An empty latency histogram in nanoseconds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_RECORDED_NANOS, 3).expect("static bounds are valid")
}

/// What a closed-loop scenario saw.
#[derive(Debug, Clone)]
pub struct Latency {
    pub histogram: Histogram<u64>,
    pub errors: u64,
    /// the first error, for the report
    pub first_error: Option<String>,
}

/// A stable pseudo-random stream, so each scenario asks for the same subjects.
pub fn mix(mut value: u64) -> u64 {
    // splitmix64
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Runs `call(sequence)` `warmup + samples` times, one at a time, and
/// records the last `samples`. `parallel` independent loops share the
/// samples (each still has one request in flight); 1 is the closed
/// loop.
pub async fn closed_loop<F, Fut>(
    label: &str,
    progress: &Progress,
    warmup: usize,
    samples: usize,
    parallel: usize,
    call: F,
) -> Latency
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let call = Arc::new(call);
    let bar = progress.bar(label, (warmup + samples) as u64);
    let next = Arc::new(AtomicU64::new(0));
    let total = (warmup + samples) as u64;
    let loops = (0..parallel.max(1)).map(|_| {
        let call = Arc::clone(&call);
        let next = Arc::clone(&next);
        let bar = bar.clone();
        async move {
            let mut histogram = histogram();
            let mut errors = 0;
            let mut first_error = None;
            loop {
                let sequence = next.fetch_add(1, Ordering::Relaxed);
                if sequence >= total {
                    break;
                }
                let started = Instant::now();
                let result = call(sequence).await;
                let elapsed = started.elapsed();
                bar.inc(1);
                if sequence < warmup as u64 {
                    continue;
                }
                match result {
                    Ok(()) => histogram.saturating_record(elapsed.as_nanos().try_into().unwrap_or(u64::MAX)),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            Latency {
                histogram,
                errors,
                first_error,
            }
        }
    });
    let parts = futures::future::join_all(loops).await;
    bar.finish_and_clear();
    let mut merged = Latency {
        histogram: histogram(),
        errors: 0,
        first_error: None,
    };
    for part in parts {
        merged.histogram.add(&part.histogram).expect("same bounds");
        merged.errors += part.errors;
        if merged.first_error.is_none() {
            merged.first_error = part.first_error;
        }
    }
    merged
}

/// Calls of one side of a pair made in a row before the other side's turn.
pub const PAIR_BLOCK: u64 = 200;

/// Alternates blocks of [`PAIR_BLOCK`] calls of `first` and of `second`,
/// one call at a time (so one request is in flight in all), until each has
/// made `warmup + samples` calls, and records each side's last `samples` in
/// its own histogram. Two scenarios compared this way see the same disk and
/// the same neighbours on the machine, so their ratio is not moved by what
/// else ran when; blocks rather than single alternate calls keep each
/// side's caches as warm as they would be alone.
pub async fn paired_closed_loop<F, G, FutF, FutG>(
    label: &str,
    progress: &Progress,
    warmup: usize,
    samples: usize,
    first: F,
    second: G,
) -> (Latency, Latency)
where
    F: Fn(u64) -> FutF,
    G: Fn(u64) -> FutG,
    FutF: Future<Output = Result<(), String>>,
    FutG: Future<Output = Result<(), String>>,
{
    let total = (warmup + samples) as u64;
    let bar = progress.bar(label, 2 * total);
    let empty = || Latency {
        histogram: histogram(),
        errors: 0,
        first_error: None,
    };
    let (mut a, mut b) = (empty(), empty());
    let record = |latency: &mut Latency, elapsed: Duration, result: Result<(), String>| match result {
        Ok(()) => latency
            .histogram
            .saturating_record(elapsed.as_nanos().try_into().unwrap_or(u64::MAX)),
        Err(error) => {
            latency.errors += 1;
            latency.first_error.get_or_insert(error);
        }
    };
    let mut block_start = 0;
    let mut block = 0u64;
    while block_start < total {
        let block_end = (block_start + PAIR_BLOCK).min(total);
        // which side goes first alternates too
        for turn in 0..2 {
            let run_first = (turn == 0) == block.is_multiple_of(2);
            for sequence in block_start..block_end {
                let started = Instant::now();
                let result = if run_first {
                    first(sequence).await
                } else {
                    second(sequence).await
                };
                let elapsed = started.elapsed();
                if sequence >= warmup as u64 {
                    record(if run_first { &mut a } else { &mut b }, elapsed, result);
                }
                bar.inc(1);
            }
        }
        block_start = block_end;
        block += 1;
    }
    bar.finish_and_clear();
    (a, b)
}

/// What a saturated scenario saw.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub in_flight: usize,
    /// completions per second in the counting window
    pub per_second: f64,
    pub completed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    /// latency of the calls completed in the window, under this load
    pub histogram: Histogram<u64>,
}

/// Keeps `in_flight` calls of `call(worker, sequence)` going for `warmup`,
/// then counts completions for `window`.
pub async fn saturated<F, Fut>(
    label: &str,
    progress: &Progress,
    in_flight: usize,
    warmup: Duration,
    window: Duration,
    call: F,
) -> Throughput
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let counting = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let spinner = progress.spinner(label);
    let workers: Vec<_> = (0..in_flight)
        .map(|worker| {
            let call = Arc::clone(&call);
            let counting = Arc::clone(&counting);
            let stopping = Arc::clone(&stopping);
            tokio::spawn(async move {
                let mut histogram = histogram();
                let (mut completed, mut errors, mut first_error) = (0u64, 0u64, None);
                let mut sequence = 0u64;
                while !stopping.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = call(worker, sequence).await;
                    let elapsed = started.elapsed();
                    sequence += 1;
                    // a call that ends after the window closed is not counted
                    if !counting.load(Ordering::Relaxed) || stopping.load(Ordering::Relaxed) {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            completed += 1;
                            histogram.saturating_record(elapsed.as_nanos().try_into().unwrap_or(u64::MAX));
                        }
                        Err(error) => {
                            errors += 1;
                            first_error.get_or_insert(error);
                        }
                    }
                }
                (histogram, completed, errors, first_error)
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    stopping.store(true, Ordering::Relaxed);
    let measured = started.elapsed();
    let mut total = Throughput {
        in_flight,
        per_second: 0.0,
        completed: 0,
        errors: 0,
        first_error: None,
        window: measured,
        histogram: histogram(),
    };
    for worker in workers {
        match worker.await {
            Ok((histogram, completed, errors, first_error)) => {
                total.histogram.add(&histogram).expect("same bounds");
                total.completed += completed;
                total.errors += errors;
                if total.first_error.is_none() {
                    total.first_error = first_error;
                }
            }
            Err(error) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("worker failed: {error}"));
            }
        }
    }
    spinner.finish_and_clear();
    total.per_second = total.completed as f64 / measured.as_secs_f64();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_loop_records_only_what_follows_the_warm_up_and_counts_wrong_answers() {
        let latency = closed_loop("test", &Progress::hidden(), 5, 20, 1, |sequence| async move {
            if sequence % 10 == 9 {
                Err(format!("wrong answer {sequence}"))
            } else {
                Ok(())
            }
        })
        .await;
        // sequences 5..25 are recorded; 9, 19 are wrong
        assert_eq!(latency.histogram.len(), 18);
        assert_eq!(latency.errors, 2);
        assert_eq!(latency.first_error.as_deref(), Some("wrong answer 9"));
    }

    #[tokio::test]
    async fn parallel_loops_share_the_sample_count() {
        let latency = closed_loop("test", &Progress::hidden(), 3, 40, 4, |_| async { Ok(()) }).await;
        assert_eq!(latency.histogram.len(), 40);
    }

    #[tokio::test]
    async fn a_saturated_run_counts_completions_in_its_window() {
        let throughput = saturated(
            "test",
            &Progress::hidden(),
            4,
            Duration::from_millis(20),
            Duration::from_millis(100),
            |_, _| async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(())
            },
        )
        .await;
        assert!(throughput.completed > 0);
        assert_eq!(throughput.errors, 0);
        assert!(throughput.per_second > 0.0);
    }

    #[tokio::test]
    async fn a_paired_loop_keeps_each_side_in_its_own_histogram() {
        let (a, b) = paired_closed_loop(
            "test",
            &Progress::hidden(),
            2,
            450,
            |_| async { Ok(()) },
            |sequence| async move { if sequence == 5 { Err("wrong".to_owned()) } else { Ok(()) } },
        )
        .await;
        assert_eq!((a.histogram.len(), a.errors), (450, 0));
        assert_eq!((b.histogram.len(), b.errors), (449, 1));
    }

    #[test]
    fn mix_spreads_neighbouring_sequences() {
        let picks: std::collections::HashSet<u64> = (0..1000).map(|sequence| mix(sequence) % 1000).collect();
        assert!(picks.len() > 550, "{}", picks.len());
    }
}
