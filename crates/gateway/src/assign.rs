//! Which arm a request goes to. A caller with an id lands on an arm by weighted rendezvous
//! hashing: each arm scores `w / −ln u` with `u` a hash of (route, arm, caller) in (0, 1), and
//! the highest score wins. An arm wins with probability `w / Σw`, the same caller always gets the
//! same arm while weights stay, and raising one arm's weight only moves callers *into* that arm
//! (its scores grow, no other's change). Without a caller id: weighted random.

/// FNV-1a then SplitMix64's finalizer: stable across processes, machines and versions.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A uniform number in (0, 1) from 53 bits of `h`.
fn unit(h: u64) -> f64 {
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// The arm (index into `arms`, each `(name, weight)`) for `caller` on `route`; `None` when no
/// arm has a weight above 0.
pub fn sticky(route: &str, arms: &[(&str, f64)], caller: &str) -> Option<usize> {
    arms.iter()
        .enumerate()
        .filter(|(_, (_, w))| *w > 0.0)
        .map(|(i, (name, w))| (i, w / -unit(hash(&[route, name, caller])).ln()))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// A weighted random arm for `r` uniform in [0, 1).
pub fn weighted(arms: &[(&str, f64)], r: f64) -> Option<usize> {
    let total: f64 = arms.iter().map(|(_, w)| w.max(0.0)).sum();
    if total <= 0.0 {
        return None;
    }
    let mut at = r * total;
    for (i, (_, w)) in arms.iter().enumerate() {
        if *w > 0.0 {
            if at < *w {
                return Some(i);
            }
            at -= w;
        }
    }
    arms.iter().rposition(|(_, w)| *w > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callers() -> Vec<String> {
        (0..10_000).map(|i| format!("user-{i}")).collect()
    }

    #[test]
    fn ten_thousand_callers_split_90_10_within_one_and_a_half_points() {
        let arms = [("stable", 90.0), ("canary", 10.0)];
        let canary = callers()
            .iter()
            .filter(|c| sticky("support", &arms, c) == Some(1))
            .count();
        let share = canary as f64 / 10_000.0;
        assert!((share - 0.10).abs() <= 0.015, "canary share {share}");
    }

    #[test]
    fn the_same_caller_always_gets_the_same_arm() {
        let arms = [("a", 30.0), ("b", 50.0), ("c", 20.0)];
        for c in callers().iter().take(500) {
            let first = sticky("r", &arms, c);
            assert!((0..5).all(|_| sticky("r", &arms, c) == first));
        }
    }

    #[test]
    fn raising_the_canary_from_10_to_20_only_moves_callers_into_it() {
        let before = [("stable", 90.0), ("canary", 10.0)];
        let after = [("stable", 80.0), ("canary", 20.0)];
        let mut moved_in = 0;
        for c in callers() {
            let (b, a) = (sticky("r", &before, &c), sticky("r", &after, &c));
            if b != a {
                assert_eq!((b, a), (Some(0), Some(1)), "{c} moved out of the canary");
                moved_in += 1;
            }
        }
        // 10 % → 20 %: about a tenth of the callers move, none the other way.
        let share = moved_in as f64 / 10_000.0;
        assert!((share - 0.10).abs() < 0.015, "moved {share}");
    }

    #[test]
    fn weight_zero_takes_no_traffic_and_random_follows_the_weights() {
        let arms = [("off", 0.0), ("on", 1.0)];
        assert!(callers().iter().all(|c| sticky("r", &arms, c) == Some(1)));
        assert_eq!(sticky("r", &[("x", 0.0)], "c"), None);
        let arms = [("a", 1.0), ("b", 3.0)];
        assert_eq!(weighted(&arms, 0.0), Some(0));
        assert_eq!(weighted(&arms, 0.24), Some(0));
        assert_eq!(weighted(&arms, 0.26), Some(1));
        assert_eq!(weighted(&arms, 0.999), Some(1));
        assert_eq!(weighted(&[("x", 0.0)], 0.5), None);
    }
}
