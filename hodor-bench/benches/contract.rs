//! Single-threaded micro-benchmarks of the `Contract` calls on the memory driver:
//! `cargo bench -p hodor-bench`. 100,000 keys of 16 to 32 bytes, 64-byte values.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hodor_bench::keys::{Values, keys, prefix};
use hodor_bench::rng::Rng;
use hodor_core::Contract;
use hodor_memory as _;

const KEYS: usize = 100_000;

fn loaded(name: &str, keys: &[String], values: &Values) -> Contract {
    let c = Contract::new("memory", name, None).expect("the memory driver opens");
    for (i, k) in keys.iter().enumerate() {
        c.set(k, values.get(i).clone(), None).expect("set");
    }
    c
}

/// Keys in a fixed random order, so each iteration touches a different one.
fn shuffled(keys: &[String]) -> Vec<&str> {
    let mut order: Vec<&str> = keys.iter().map(String::as_str).collect();
    Rng::new(7).shuffle(&mut order);
    order
}

fn contract(c: &mut Criterion) {
    let keys = keys(2 * KEYS);
    let (present, absent) = keys.split_at(KEYS);
    let values = Values::new(64, KEYS, 1);
    let store = loaded("criterion", present, &values);
    let order = shuffled(present);
    let value = values.get(0).clone();

    let mut group = c.benchmark_group("contract");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));

    let mut i = 0;
    group.bench_function("get (hit)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(store.get(order[i]).ok())
        })
    });
    group.bench_function("exists (hit)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(store.exists(order[i]).ok())
        })
    });
    group.bench_function("get (miss)", |b| {
        b.iter(|| {
            i = (i + 1) % absent.len();
            black_box(store.get(&absent[i]).is_err())
        })
    });
    group.bench_function("get_opt (miss)", |b| {
        b.iter(|| {
            i = (i + 1) % absent.len();
            black_box(store.get_opt(&absent[i]).ok())
        })
    });
    group.bench_function("set (overwrite)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            store.set(order[i], Bytes::clone(&value), None).ok()
        })
    });
    group.bench_function("set (overwrite, ttl)", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            store
                .set(
                    order[i],
                    Bytes::clone(&value),
                    Some(Duration::from_secs(3600)),
                )
                .ok()
        })
    });
    // Deleting needs something to delete: insert outside the timed region, then time
    // deleting exactly those keys.
    group.bench_function("delete (present)", |b| {
        b.iter_custom(|iters| {
            let n = (iters as usize).min(absent.len());
            for k in &absent[..n] {
                store.set(k, Bytes::clone(&value), None).ok();
            }
            let start = Instant::now();
            for k in &absent[..n] {
                black_box(store.delete(k).ok());
            }
            let elapsed = start.elapsed();
            // Scale up when more iterations were asked than keys exist.
            elapsed.mul_f64(iters as f64 / n.max(1) as f64)
        })
    });
    for matches in [10u64, 100, 1000] {
        let prefixes: Vec<String> = {
            let mut rng = Rng::new(matches);
            (0..256)
                .map(|_| prefix(rng.below(KEYS as u64 / matches) * matches, matches))
                .collect()
        };
        let mut p = 0;
        group.bench_with_input(
            BenchmarkId::new("list", matches),
            &prefixes,
            |b, prefixes| {
                b.iter(|| {
                    p = (p + 1) % prefixes.len();
                    black_box(store.list(&prefixes[p]).ok())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, contract);
criterion_main!(benches);
