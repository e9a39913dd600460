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

/// A model-based test: random sequences of fills (overtaken or not), writes with their
/// invalidations, evictions, lookups and reconnects, checked against a plain model of what
/// Redis holds. A hit must show what Redis holds now; a fill that nothing overtook must hit.
mod model {
    use super::*;
    use std::collections::HashMap;

    const ACCESS: usize = 4;
    const USERS: usize = 2;

    /// A small deterministic generator (xorshift), so a failing seed can be replayed.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    fn access(i: usize) -> String {
        format!("a{i}")
    }
    /// Access keys name users two to one, so users are shared and rewritten under them.
    fn user_of(i: usize) -> String {
        format!("u{}", i % USERS)
    }
    fn session(i: usize) -> String {
        format!("s{i}")
    }

    struct InFlight {
        id: u64,
        fill: Fill,
        read: Read,
        generation: u64,
        keys: Vec<String>,
    }

    #[derive(Default)]
    struct World {
        /// Redis: key -> version (0 = absent).
        redis: HashMap<String, u64>,
        /// key -> the fill whose claim on it stands, as the cache's pending tokens should be.
        owner: HashMap<String, u64>,
        generation: u64,
        next_fill: u64,
        in_flight: Vec<InFlight>,
    }

    impl World {
        fn version(&self, key: &str) -> u64 {
            self.redis.get(key).copied().unwrap_or(0)
        }

        fn write(&mut self, cache: &Cache, key: &str) {
            *self.redis.entry(key.to_string()).or_insert(0) += 1;
            self.owner.remove(key);
            cache.invalidate(key);
        }

        fn begin(&mut self, cache: &Cache, i: usize, with_session: bool) {
            let (a, u, s) = (access(i), user_of(i), session(i));
            let fill = cache.begin_fill(&a, &u, with_session.then_some(s.as_str()));
            self.next_fill += 1;
            let mut keys = vec![a.clone(), u.clone()];
            if with_session {
                keys.push(s.clone());
            }
            for key in &keys {
                self.owner.insert(key.clone(), self.next_fill);
            }
            let later = Instant::now() + Duration::from_secs(600);
            let read = Read {
                digest: format!("{a}v{}", self.version(&a)),
                access_deadline: later,
                user_json: Bytes::from(format!("{u}v{}", self.version(&u))),
                user_deadline: later,
                session: with_session.then(|| {
                    let fields = SessionFields {
                        client_id: format!("{s}v{}", self.version(&s)),
                        scope: String::new(),
                        created_ms: 0,
                        refreshed_ms: 0,
                        ends_ms: 0,
                    };
                    (fields, later)
                }),
            };
            self.in_flight.push(InFlight {
                id: self.next_fill,
                fill,
                read,
                generation: self.generation,
                keys,
            });
        }

        /// Finishes (or abandons) a fill in flight; the access index it was for if the model
        /// says it landed.
        fn finish(&mut self, cache: &Cache, n: usize, abandon: bool) -> Option<usize> {
            let f = self.in_flight.remove(n);
            let owned = f.keys.iter().all(|k| self.owner.get(k) == Some(&f.id));
            for key in &f.keys {
                if self.owner.get(key) == Some(&f.id) {
                    self.owner.remove(key);
                }
            }
            let index = f.keys[0][1..].parse().ok();
            if abandon {
                cache.abandon_fill(f.fill);
                return None;
            }
            cache.finish_fill(f.fill, f.read, f.generation);
            (owned && f.generation == self.generation).then_some(index?)
        }

        /// Looks `i` up as a request would after its barrier; checks any hit against Redis.
        fn lookup(&self, cache: &Cache, i: usize, seed: u64, step: usize) -> bool {
            let (a, u, s) = (access(i), user_of(i), session(i));
            let g = self.generation;
            let context = format!("seed {seed} step {step}: {a}");
            let mut hit = false;
            if let Some(found) = cache.find(&a, &u, g)
                && let Some(json) = found.current(g)
            {
                assert_eq!(
                    found.digest(),
                    format!("{a}v{}", self.version(&a)),
                    "{context}"
                );
                assert_eq!(json, format!("{u}v{}", self.version(&u)), "{context}: user");
                hit = true;
            }
            if let Some(found) = cache.find_session(&a, &u, &s, g)
                && let Some((json, fields, _)) = found.current_session(g)
            {
                assert_eq!(json, format!("{u}v{}", self.version(&u)), "{context}: user");
                let want = format!("{s}v{}", self.version(&s));
                assert_eq!(fields.client_id, want, "{context}: session");
            }
            hit
        }
    }

    fn run(seed: u64, capacity: usize, steps: usize) {
        let cache = Cache::new(capacity);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut w = World::default();
        for step in 0..steps {
            match rng.below(12) {
                0..=2 => w.begin(&cache, rng.below(ACCESS), rng.below(3) == 0),
                3..=5 if !w.in_flight.is_empty() => {
                    let n = rng.below(w.in_flight.len());
                    let abandon = rng.below(8) == 0;
                    if let Some(i) = w.finish(&cache, n, abandon) {
                        assert!(
                            w.lookup(&cache, i, seed, step),
                            "seed {seed} step {step}: a fill nothing overtook must hit"
                        );
                    }
                }
                6 => {
                    let key = match rng.below(3) {
                        0 => access(rng.below(ACCESS)),
                        1 => user_of(rng.below(USERS)),
                        _ => session(rng.below(ACCESS)),
                    };
                    w.write(&cache, &key);
                }
                7 if rng.below(4) == 0 => {
                    w.generation += 1;
                    w.owner.clear();
                    cache.clear();
                }
                _ => {
                    w.lookup(&cache, rng.below(ACCESS), seed, step);
                }
            }
            assert!(
                cache.len() <= capacity,
                "seed {seed} step {step}: over the bound"
            );
        }
    }

    #[test]
    fn random_histories_only_ever_hit_what_redis_holds() {
        for seed in 1..=3000 {
            // Room for all, and too little room (eviction on most fills).
            run(seed, ACCESS, 120);
            run(seed, 2, 120);
        }
    }

    /// The history that once left a rewritten user's older snapshot unreachable by its key's
    /// invalidation, so a role change never reached one of its tokens.
    #[test]
    fn a_rewritten_user_record_reaches_every_token_that_names_it() {
        let cache = Cache::new(10);
        let mut w = World::default();
        for i in [0, 2] {
            w.begin(&cache, i, false);
            w.finish(&cache, 0, false);
        }
        w.write(&cache, "u0");
        for i in [0, 2] {
            w.begin(&cache, i, false);
            w.finish(&cache, 0, false);
        }
        w.write(&cache, "u0");
        assert!(!w.lookup(&cache, 0, 0, 0), "token a answers the old roles");
        assert!(!w.lookup(&cache, 2, 0, 0), "token b answers the old roles");
    }
}
