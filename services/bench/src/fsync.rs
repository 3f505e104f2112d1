//! The disk's floor: how long one fsync takes on the filesystem that holds
//! a node's databases, timed the way a WAL commit meets it. A probe file of
//! 4 MiB is written and synced once, then each sample overwrites the next
//! 4 KiB page and times `fsync` alone (`File::sync_all`; SQLite as bundled
//! here calls `fsync`, not `fdatasync`, on every `synchronous=FULL`
//! commit). Overwriting an allocated file matches a WAL past its first
//! checkpoint, which is reused rather than grown. A second probe issues
//! four at once, as four nodes sharing this disk do in a federated lookup.

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

/// How long four fsyncs issued at once (one file each, as four nodes'
/// audit logs on one disk commit together in a federated lookup on this
/// machine) take until the last is done, `samples` times.
pub fn four_at_once_latency(dir: &Path, samples: usize) -> std::io::Result<Histogram<u64>> {
    use std::sync::{Arc, Barrier};
    const FILES: usize = 4;
    let start = Arc::new(Barrier::new(FILES + 1));
    let done = Arc::new(Barrier::new(FILES + 1));
    let mut workers = Vec::with_capacity(FILES);
    for worker in 0..FILES {
        let path = dir.join(format!(".flagnet-bench-fsync-probe-{worker}"));
        let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
        file.write_all(&vec![0u8; PAGE * PAGES])?;
        file.sync_all()?;
        let (start, done) = (Arc::clone(&start), Arc::clone(&done));
        workers.push(std::thread::spawn(move || -> std::io::Result<()> {
            let page = [0x42u8; PAGE];
            let mut result = Ok(());
            for sample in 0..samples {
                start.wait();
                if result.is_ok() {
                    result = file
                        .write_all_at(&page, ((sample % PAGES) * PAGE) as u64)
                        .and_then(|()| file.sync_all());
                }
                done.wait();
            }
            drop(file);
            std::fs::remove_file(&path)?;
            result
        }));
    }
    let mut timings = histogram();
    for _ in 0..samples {
        let started = Instant::now();
        start.wait();
        done.wait();
        timings.saturating_record(started.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
    }
    for worker in workers {
        worker
            .join()
            .map_err(|_| std::io::Error::other("an fsync probe thread panicked"))??;
    }
    Ok(timings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_probes_time_every_sample_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fsync_latency(dir.path(), 3).unwrap().len(), 3);
        assert_eq!(four_at_once_latency(dir.path(), 3).unwrap().len(), 3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
