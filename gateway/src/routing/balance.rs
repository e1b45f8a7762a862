//! Weighted balancing among backends of one priority: a smooth weighted round-robin
//! schedule (nginx's algorithm) computed once per config, walked with one atomic counter.
//!
//! Why this over power-of-two-choices: weights are an operator's promise ("3:1 between
//! these providers", often for cost or contract reasons), and a precomputed schedule keeps
//! it exactly over every `sum(weights)` requests, interleaved rather than in bursts, with no
//! lock and no per-request allocation. Unhealthy backends are skipped by the caller, which
//! moves on to the next entry, so load shifts to the healthy ones in proportion.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A schedule over the members of one priority group.
#[derive(Debug)]
pub struct Schedule {
    order: Vec<u16>,
    next: AtomicUsize,
}

/// Longest schedule kept: longer ones are scaled down (keeping the ratio approximately).
const MAX_LEN: u64 = 4096;

impl Schedule {
    /// A schedule for these weights (indices into the group). Zero weights never appear.
    pub fn new(weights: &[u32]) -> Self {
        let mut w: Vec<u64> = weights.iter().map(|w| u64::from(*w)).collect();
        let g = w.iter().copied().filter(|x| *x > 0).fold(0, gcd);
        if g > 1 {
            w.iter_mut().for_each(|x| *x /= g);
        }
        let total: u64 = w.iter().sum();
        if total > MAX_LEN {
            w.iter_mut().for_each(|x| {
                if *x > 0 {
                    *x = (*x * MAX_LEN / total).max(1);
                }
            });
        }
        let total: i64 = w.iter().map(|x| *x as i64).sum();
        let mut current = vec![0i64; w.len()];
        let mut order = Vec::with_capacity(total.max(0) as usize);
        for _ in 0..total {
            let mut best = 0;
            for i in 0..w.len() {
                current[i] += w[i] as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            order.push(u16::try_from(best).unwrap_or(u16::MAX));
        }
        Self {
            order,
            next: AtomicUsize::new(0),
        }
    }

    /// The group members in the order to try for one request: the scheduled one first, then
    /// the rest of the schedule's rotation (each member once). Empty when every weight is 0.
    pub fn pick(&self) -> impl Iterator<Item = usize> + '_ {
        let len = self.order.len();
        let start = if len == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % len
        };
        let mut seen: u64 = 0;
        (0..len).filter_map(move |k| {
            let i = usize::from(self.order[(start + k) % len]);
            let bit = 1u64 << (i % 64);
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            Some(i)
        })
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_kept_exactly_and_interleaved() {
        let s = Schedule::new(&[3, 1]);
        let firsts: Vec<usize> = (0..8).map(|_| s.pick().next().unwrap()).collect();
        assert_eq!(firsts, vec![0, 0, 1, 0, 0, 0, 1, 0]);
        let s = Schedule::new(&[5, 1, 1]);
        let firsts: Vec<usize> = (0..7).map(|_| s.pick().next().unwrap()).collect();
        assert_eq!(firsts.iter().filter(|i| **i == 0).count(), 5);
        assert_ne!(
            firsts[..3],
            [0, 0, 0],
            "smooth: the heavy member does not come in a burst"
        );
    }

    #[test]
    fn every_member_with_weight_appears_once_per_pick_and_zero_never() {
        let s = Schedule::new(&[2, 0, 1]);
        for _ in 0..6 {
            let mut order: Vec<usize> = s.pick().collect();
            assert!(!order.contains(&1));
            order.sort();
            assert_eq!(order, vec![0, 2]);
        }
        assert_eq!(Schedule::new(&[0, 0]).pick().count(), 0);
    }

    #[test]
    fn large_weights_are_scaled_down() {
        let s = Schedule::new(&[1000, 999, 1, 7]);
        assert!(s.order.len() as u64 <= MAX_LEN + 4);
        let ones = s.order.iter().filter(|i| **i == 2).count();
        assert!(ones >= 1);
    }
}

/// One backend list (a route's `backends` or a rule's), grouped by priority.
#[derive(Debug)]
pub struct BackendSet {
    groups: Vec<Group>,
}

#[derive(Debug)]
struct Group {
    members: Vec<usize>,
    schedule: Schedule,
    standby: Vec<usize>,
}

impl BackendSet {
    /// Groups `(weight, priority)` pairs; indices refer to their position.
    pub fn new(backends: &[(u32, u32)]) -> Self {
        let mut priorities: Vec<u32> = backends.iter().map(|(_, p)| *p).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let groups = priorities
            .into_iter()
            .map(|priority| {
                let in_group: Vec<usize> = (0..backends.len())
                    .filter(|i| backends[*i].1 == priority)
                    .collect();
                let members: Vec<usize> = in_group
                    .iter()
                    .copied()
                    .filter(|i| backends[*i].0 > 0)
                    .collect();
                let weights: Vec<u32> = members.iter().map(|i| backends[*i].0).collect();
                Group {
                    schedule: Schedule::new(&weights),
                    standby: in_group
                        .into_iter()
                        .filter(|i| backends[*i].0 == 0)
                        .collect(),
                    members,
                }
            })
            .collect();
        Self { groups }
    }

    /// Every backend once, in the order to try, passed to `f`: lowest priority value first;
    /// within a priority the weighted pick, then the rest of the rotation, then weight-0
    /// standbys. A callback rather than a `Vec`, so planning allocates nothing here.
    pub fn order(&self, mut f: impl FnMut(usize)) {
        for g in &self.groups {
            g.schedule.pick().for_each(|k| f(g.members[k]));
            g.standby.iter().for_each(|i| f(*i));
        }
    }
}

#[cfg(test)]
mod set_tests {
    use super::*;

    #[test]
    fn priorities_first_then_weights_then_standbys() {
        let set = BackendSet::new(&[(1, 1), (0, 0), (3, 0), (1, 0)]);
        let mut firsts = std::collections::BTreeMap::new();
        for _ in 0..400 {
            let mut order = Vec::new();
            set.order(|i| order.push(i));
            assert_eq!(order.len(), 4);
            assert_eq!(
                order[2], 1,
                "the weight-0 standby comes after its group's weighted members"
            );
            assert_eq!(order[3], 0, "the priority-1 backend comes last");
            *firsts.entry(order[0]).or_insert(0) += 1;
        }
        assert_eq!(firsts.get(&2), Some(&300));
        assert_eq!(firsts.get(&3), Some(&100));
    }
}
