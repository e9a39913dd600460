//! The series every request touches (HTTP requests and their latency, the store's latency, the
//! validation cache's result), kept per thread and summed when `/metrics` is scraped.
//!
//! Through the recorder, every request made the workers take turns at the same atomics (a
//! counter, a histogram's bucket queue), and their cache lines crossed cores on every request:
//! about 7% of a cached validation's CPU (`wrk` against one server, metrics on and off). Here
//! each thread writes only its own series, with plain loads and stores, and a scrape reads
//! them all.

use super::{BUCKETS, HTTP_DURATION, HTTP_REQUESTS, STORE_DURATION, VALIDATION_CACHE};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a series counts: its family and its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Key {
    Http {
        method: &'static str,
        route: &'static str,
        status: u16,
    },
    Store(&'static str),
    Cache(&'static str),
}

/// One thread's count, latency sum and latency buckets (each bucket its own, not cumulative).
#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

/// Adds `n`: only the series' own thread writes it, so no read-modify-write is needed.
fn bump(cell: &AtomicU64, n: u64) {
    cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
}

impl Series {
    fn record(&self, took: Option<Duration>) {
        bump(&self.count, 1);
        if let Some(took) = took {
            bump(&self.sum_ns, took.as_nanos() as u64);
            let seconds = took.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|le| seconds <= *le) {
                bump(&self.buckets[i], 1);
            }
        }
    }
}

/// Every thread's series, for the scrape.
static ALL: Mutex<Vec<(Key, Arc<Series>)>> = Mutex::new(Vec::new());

fn all() -> std::sync::MutexGuard<'static, Vec<(Key, Arc<Series>)>> {
    ALL.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    static LOCAL: std::cell::RefCell<foldhash::HashMap<Key, Arc<Series>>> =
        std::cell::RefCell::default();
}

/// Counts `key` on this thread, with a latency if it has one.
pub(super) fn record(key: Key, took: Option<Duration>) {
    LOCAL.with_borrow_mut(|local| {
        local
            .entry(key)
            .or_insert_with(|| {
                let series = Arc::<Series>::default();
                all().push((key, series.clone()));
                series
            })
            .record(took)
    });
}

/// A series that exists from the start at 0, as the recorder's zeroed counters do.
pub(super) fn zero(key: Key) {
    let mut all = all();
    if !all.iter().any(|(k, _)| *k == key) {
        all.push((key, Arc::default()));
    }
}

/// The threads' series summed per key.
#[derive(Default)]
struct Sum {
    count: u64,
    sum_ns: u64,
    buckets: [u64; BUCKETS.len()],
}

fn sums() -> BTreeMap<Key, Sum> {
    let mut sums = BTreeMap::<Key, Sum>::new();
    for (key, series) in all().iter() {
        let sum = sums.entry(*key).or_default();
        sum.count += series.count.load(Relaxed);
        sum.sum_ns += series.sum_ns.load(Relaxed);
        for (total, bucket) in sum.buckets.iter_mut().zip(&series.buckets) {
            *total += bucket.load(Relaxed);
        }
    }
    sums
}

/// Appends the series in the text exposition format, with `help(name)` for each family.
pub(super) fn render(out: &mut String, help: impl Fn(&str) -> String) {
    let sums = sums();
    let family = |out: &mut String, name: &str, kind: &str, rows: &[(String, &Sum)]| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", help(name));
        for (labels, sum) in rows {
            if kind == "counter" {
                let _ = writeln!(out, "{name}{{{labels}}} {}", sum.count);
            } else {
                histogram(out, name, labels, sum);
            }
        }
        out.push('\n');
    };
    let rows = |pick: fn(&Key) -> Option<String>| -> Vec<(String, &Sum)> {
        sums.iter()
            .filter_map(|(k, s)| Some((pick(k)?, s)))
            .collect()
    };
    let http = rows(|k| match k {
        Key::Http {
            method,
            route,
            status,
        } => Some(format!(
            "method=\"{method}\",route=\"{}\",status=\"{status}\"",
            escape(route)
        )),
        _ => None,
    });
    family(out, HTTP_REQUESTS, "counter", &http);
    family(out, HTTP_DURATION, "histogram", &http);
    let store = rows(|k| match k {
        Key::Store(op) => Some(format!("op=\"{op}\"")),
        _ => None,
    });
    family(out, STORE_DURATION, "histogram", &store);
    let cache = rows(|k| match k {
        Key::Cache(result) => Some(format!("result=\"{result}\"")),
        _ => None,
    });
    family(out, VALIDATION_CACHE, "counter", &cache);
}

fn histogram(out: &mut String, name: &str, labels: &str, sum: &Sum) {
    let mut below = 0;
    for (le, n) in BUCKETS.iter().zip(sum.buckets) {
        below += n;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {below}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", sum.count);
    let seconds = sum.sum_ns as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {seconds}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", sum.count);
}

/// A label value as the exposition format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_series_are_summed_and_rendered_cumulatively() {
        let key = Key::Http {
            method: "GET",
            route: "/sharded-test",
            status: 200,
        };
        let threads: Vec<_> = [Duration::from_micros(50), Duration::from_millis(3)]
            .into_iter()
            .map(|took| std::thread::spawn(move || record(key, Some(took))))
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        record(key, Some(Duration::from_secs(5)));
        let mut out = String::new();
        render(&mut out, |name| format!("help of {name}"));
        let labels = "method=\"GET\",route=\"/sharded-test\",status=\"200\"";
        for line in [
            format!("{HTTP_REQUESTS}{{{labels}}} 3"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"0.0001\"}} 1"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"0.0025\"}} 1"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"0.005\"}} 2"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"2.5\"}} 2"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("{HTTP_DURATION}_sum{{{labels}}} 5.00305"),
            format!("{HTTP_DURATION}_count{{{labels}}} 3"),
            format!("# HELP {HTTP_REQUESTS} help of {HTTP_REQUESTS}"),
            format!("# TYPE {HTTP_DURATION} histogram"),
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
    }
}
