//! hookd's RocksDB opened directly, with no hookd in between: for tests
//! that damage records the way a disk or a bug could.

use std::path::Path;

/// Opens the closed store at `data` with all its column families.
pub fn open(data: &Path) -> rocksdb::DB {
    let families = rocksdb::DB::list_cf(&rocksdb::Options::default(), data).expect("listing column families");
    rocksdb::DB::open_cf(&rocksdb::Options::default(), data, families).expect("opening the store directly")
}
