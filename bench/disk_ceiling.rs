//! The disk ceiling: RocksDB alone, on this machine's disk, doing the
//! synced writes ingest does, with nothing else: the same entries per event
//! (the event, its delivery and two index entries, of hookd's sizes), the
//! same batching (one event or a batch of them per write), from the same
//! number of concurrent writers, so RocksDB groups their fsyncs as hookd's
//! writer does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rocksdb::{DB, Options, WriteBatch, WriteOptions};

use crate::load::event_body;
use crate::processes::ScratchDir;

/// Events per second that `writers` threads, each writing `batch` events
/// per synced write, store in `duration`.
pub fn events_per_second(writers: usize, batch: usize, duration: Duration) -> anyhow::Result<f64> {
    let dir = ScratchDir::new_named("disk-ceiling")?;
    let mut options = Options::default();
    options.create_if_missing(true);
    let db = Arc::new(DB::open(&options, dir.path())?);
    let stored = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let (db, stored) = (db.clone(), stored.clone());
            std::thread::spawn(move || -> Result<(), rocksdb::Error> {
                let mut sync = WriteOptions::default();
                sync.set_sync(true);
                let delivery = vec![b'd'; 160];
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let mut write = WriteBatch::default();
                    for _ in 0..batch {
                        let id = format!("evt_{writer}_{n}");
                        write.put(&id, event_body(&id));
                        write.put(format!("{id}.bench"), &delivery);
                        write.put(format!("due\0{n:016x}{id}"), []);
                        write.put(format!("recent{n:016x}{id}"), []);
                        n += 1;
                    }
                    db.write_opt(write, &sync)?;
                    stored.fetch_add(batch as u64, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer thread")?;
    }
    Ok(stored.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
