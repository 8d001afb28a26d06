//! An exact LRU cache simulation: the reference the evicting stores' hit ratios are compared
//! with.
//!
//! Entries are weighted (bytes, or 1 for an entry limit). On a miss the entry is inserted as
//! most recent and the least recently used entries are evicted until the total weight fits.

use hashbrown::HashMap;

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    key: u32,
    weight: u64,
    prev: u32,
    next: u32,
}

/// An exact LRU over `u32` key numbers.
#[derive(Debug)]
pub struct Lru {
    capacity: u64,
    used: u64,
    index: HashMap<u32, u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
}

impl Lru {
    /// An empty cache holding at most `capacity` weight.
    pub fn new(capacity: u64) -> Lru {
        Lru {
            capacity,
            used: 0,
            index: HashMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// `true` when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = self.head;
        if self.head != NIL {
            self.nodes[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Reads `key` (weighing `weight` if it has to be inserted); `true` on a hit. A miss
    /// inserts it, as a cache-aside caller would.
    pub fn access(&mut self, key: u32, weight: u64) -> bool {
        if let Some(&i) = self.index.get(&key) {
            self.unlink(i);
            self.push_front(i);
            return true;
        }
        if weight > self.capacity {
            return false;
        }
        let node = Node {
            key,
            weight,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.index.insert(key, i);
        self.push_front(i);
        self.used += weight;
        while self.used > self.capacity && self.tail != NIL {
            let victim = self.tail;
            self.unlink(victim);
            let Node { key, weight, .. } = self.nodes[victim as usize];
            self.index.remove(&key);
            self.used -= weight;
            self.free.push(victim);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The textbook model: a vector ordered from least to most recent.
    fn naive(trace: &[(u32, u64)], capacity: u64) -> Vec<bool> {
        let mut order: Vec<(u32, u64)> = Vec::new();
        trace
            .iter()
            .map(|&(key, w)| {
                if let Some(pos) = order.iter().position(|&(k, _)| k == key) {
                    let e = order.remove(pos);
                    order.push(e);
                    return true;
                }
                if w > capacity {
                    return false;
                }
                order.push((key, w));
                while order.iter().map(|&(_, w)| w).sum::<u64>() > capacity {
                    order.remove(0);
                }
                false
            })
            .collect()
    }

    #[test]
    fn matches_the_textbook_model_on_random_weighted_traces() {
        let mut rng = Rng::new(11);
        for capacity in [1u64, 10, 50, 200] {
            let trace: Vec<(u32, u64)> = (0..3000)
                .map(|_| {
                    let key = rng.below(60) as u32;
                    (key, 1 + u64::from(key) % 7)
                })
                .collect();
            let mut lru = Lru::new(capacity);
            let got: Vec<bool> = trace.iter().map(|&(k, w)| lru.access(k, w)).collect();
            assert_eq!(got, naive(&trace, capacity), "capacity {capacity}");
        }
    }

    #[test]
    fn the_least_recent_entry_goes_first() {
        let mut lru = Lru::new(2);
        assert!(!lru.access(1, 1));
        assert!(!lru.access(2, 1));
        assert!(lru.access(1, 1));
        assert!(!lru.access(3, 1)); // evicts 2, the least recent
        assert!(lru.access(1, 1));
        assert!(!lru.access(2, 1));
        assert_eq!(lru.len(), 2);
    }
}
