//! The order-statistic index of one cohort queue: the waiting applications' order keys,
//! overall and per category. Rank of a key in O(log n); nothing scans a queue.

use std::collections::BTreeMap;

use indexset::BTreeSet as RankSet;

use crate::model::OrderKey;

#[derive(Default)]
pub struct CohortQueue {
    all: RankSet<OrderKey>,
    by_category: BTreeMap<String, RankSet<OrderKey>>,
}

impl CohortQueue {
    pub fn insert(&mut self, key: OrderKey, category: &str) {
        let fresh = self.all.insert(key);
        debug_assert!(fresh, "a key is in a queue at most once");
        self.by_category
            .entry(category.to_string())
            .or_default()
            .insert(key);
    }

    pub fn remove(&mut self, key: &OrderKey, category: &str) {
        let was = self.all.remove(key);
        debug_assert!(was, "only waiting keys are removed");
        if let Some(set) = self.by_category.get_mut(category) {
            set.remove(key);
            if set.is_empty() {
                self.by_category.remove(category);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn category_len(&self, category: &str) -> usize {
        self.by_category.get(category).map_or(0, RankSet::len)
    }

    pub fn contains(&self, key: &OrderKey) -> bool {
        self.all.contains(key)
    }

    /// 1-based position of a key the caller knows to be waiting (one rank lookup; a
    /// membership test would double the cost of the hottest query).
    pub fn position(&self, key: &OrderKey) -> u64 {
        debug_assert!(
            self.all.contains(key),
            "position of a key that is not waiting"
        );
        self.all.rank(key) as u64 + 1
    }

    /// 1-based position of a waiting key among its own category.
    pub fn category_position(&self, key: &OrderKey, category: &str) -> Option<u64> {
        let set = self.by_category.get(category)?;
        debug_assert!(
            set.contains(key),
            "category position of a key that is not waiting"
        );
        Some(set.rank(key) as u64 + 1)
    }

    /// How many waiting applications of each category stand ahead of `key`.
    pub fn ahead_by_category(&self, key: &OrderKey) -> BTreeMap<String, u64> {
        self.by_category
            .iter()
            .map(|(c, set)| (c.clone(), set.rank(key) as u64))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Keys from 0-based index `from`, at most `limit`.
    pub fn page(&self, from: usize, limit: usize) -> Vec<OrderKey> {
        if from >= self.all.len() || limit == 0 {
            return Vec::new();
        }
        let end = (from + limit).min(self.all.len());
        self.all.range_idx(from..end).copied().collect()
    }

    /// Keys of one category from 0-based index `from`, at most `limit`.
    pub fn category_page(&self, category: &str, from: usize, limit: usize) -> Vec<OrderKey> {
        match self.by_category.get(category) {
            Some(set) if from < set.len() && limit > 0 => {
                let end = (from + limit).min(set.len());
                set.range_idx(from..end).copied().collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &OrderKey> {
        self.all.iter()
    }
}
