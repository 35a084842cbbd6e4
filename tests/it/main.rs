//! Integration tests: hookd for real, on 127.0.0.1 port 0, with RocksDB in
//! a temp dir. `support` holds the launchers and the HTTP client.

mod admin;
mod breaker;
mod cli;
mod cluster;
mod config;
mod crash;
mod damaged_store;
mod dashboard;
mod delivery;
mod disk_full;
mod fleet;
mod handoff;
mod health;
mod hostile_clients;
mod hostile_subscribers;
mod ingest;
mod ingest_batch;
mod limits;
mod logs;
mod metrics;
mod operations;
mod ordering;
mod races;
mod rate_limit;
mod reload;
mod retention;
mod safety;
mod schema_1;
mod security;
mod stats;
mod subscribers;
mod support;
mod tenants;
mod tls;
mod traces;
