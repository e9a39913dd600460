use super::*;
use std::time::Duration;

fn read(digest: &str) -> Read {
    let later = Instant::now() + Duration::from_secs(60);
    Read {
        digest: digest.into(),
        access_deadline: later,
        user_json: Bytes::from_static(b"{}"),
        user_deadline: later,
        session: None,
    }
}

fn hit(cache: &Cache, key: &str, generation: u64) -> Option<String> {
    let found = cache.find(key, "u", generation)?;
    found
        .current(generation)
        .map(|_| found.digest().to_string())
}

#[test]
fn a_fill_overtaken_by_an_invalidation_does_not_land() {
    let cache = Cache::new(10);
    let fill = cache.begin_fill("a", "u", None);
    cache.invalidate("a");
    cache.finish_fill(fill, read("d"), 1);
    assert!(hit(&cache, "a", 1).is_none());
    let fill = cache.begin_fill("a", "u", None);
    cache.finish_fill(fill, read("d"), 1);
    assert_eq!(hit(&cache, "a", 1).as_deref(), Some("d"));
    // Another generation's entries do not count.
    assert!(hit(&cache, "a", 2).is_none());
}

#[test]
fn an_invalidation_after_the_lookup_is_seen_after_the_barrier() {
    let cache = Cache::new(10);
    let fill = cache.begin_fill("a", "u", None);
    cache.finish_fill(fill, read("d"), 1);
    let found = cache.find("a", "u", 1).unwrap();
    cache.invalidate("u");
    assert!(found.current(1).is_none(), "the user changed");
    let fill = cache.begin_fill("a", "u", None);
    cache.finish_fill(fill, read("d"), 1);
    let found = cache.find("a", "u", 1).unwrap();
    cache.invalidate("a");
    assert!(found.current(1).is_none(), "the access key changed");
}

#[test]
fn the_cache_keeps_its_bound_and_spares_what_was_used() {
    let cache = Cache::new(3);
    for key in ["a", "b", "c"] {
        let fill = cache.begin_fill(key, "u", None);
        cache.finish_fill(fill, read(key), 1);
    }
    assert!(hit(&cache, "a", 1).is_some());
    let fill = cache.begin_fill("d", "u", None);
    cache.finish_fill(fill, read("d"), 1);
    assert_eq!(cache.len(), 3);
    assert!(
        hit(&cache, "b", 1).is_none(),
        "b was not used since it came"
    );
    assert!(hit(&cache, "a", 1).is_some());
    // Many more keys than room, with invalidations: the bound holds.
    for i in 0..1000 {
        let key = format!("k{i}");
        let fill = cache.begin_fill(&key, "u", None);
        cache.finish_fill(fill, read(&key), 1);
        if i % 3 == 0 {
            cache.invalidate(&key);
        }
    }
    assert!(cache.len() <= 3);
    assert!(cache.lock().clock.len() <= 2 * 3 + 64 + 1);
}

#[test]
fn a_full_cache_admits_one_miss_in_thirty_two() {
    let cache = Cache::new(2);
    assert!(cache.admits());
    for key in ["a", "b"] {
        let fill = cache.begin_fill(key, "u", None);
        cache.finish_fill(fill, read(key), 1);
    }
    let admitted = (0..64).filter(|_| cache.admits()).count();
    assert_eq!(admitted, 64 / ADMIT_WHEN_FULL as usize);
    cache.invalidate("a");
    assert!(cache.admits(), "room again");
}

#[test]
fn an_entry_never_outlives_its_deadline() {
    let cache = Cache::new(3);
    let fill = cache.begin_fill("a", "u", None);
    let mut r = read("d");
    r.access_deadline = Instant::now();
    cache.finish_fill(fill, r, 1);
    assert!(hit(&cache, "a", 1).is_none());
    let fill = cache.begin_fill("b", "u", None);
    let mut r = read("d");
    r.user_deadline = Instant::now();
    cache.finish_fill(fill, r, 1);
    assert!(hit(&cache, "b", 1).is_none());
}
