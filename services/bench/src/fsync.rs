//! The disk's floor: how long one fsync takes on the filesystem that holds
//! a node's databases, timed the way a WAL commit meets it. A probe file of
//! 4 MiB is written and synced once, then each sample overwrites the next
//! 4 KiB page and times `fsync` alone (`File::sync_all`; SQLite as bundled
//! here calls `fsync`, not `fdatasync`, on every `synchronous=FULL`
//! commit). Overwriting an allocated file matches a WAL past its first
//! checkpoint, which is reused rather than grown.

use crate::load::histogram;
use hdrhistogram::Histogram;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

const PAGE: usize = 4096;
const PAGES: usize = 1024;

/// `samples` fsync latencies (nanoseconds) in `dir`.
pub fn fsync_latency(dir: &Path, samples: usize) -> std::io::Result<Histogram<u64>> {
    let path = dir.join(".flagnet-bench-fsync-probe");
    let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    file.write_all(&vec![0u8; PAGE * PAGES])?;
    file.sync_all()?;
    let page = [0x42u8; PAGE];
    let mut timings = histogram();
    for sample in 0..samples {
        file.write_all_at(&page, ((sample % PAGES) * PAGE) as u64)?;
        let started = Instant::now();
        file.sync_all()?;
        timings.saturating_record(started.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(timings)
}
