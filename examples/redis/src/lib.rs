//! Runnable examples of hodor with a Redis server, in their own package so that the other
//! examples build without the Redis client (and its TLS stack). Run one with
//! `cargo run -p hodor-redis-examples --example redis_quickstart` (or `tail`) from the
//! repository root.
