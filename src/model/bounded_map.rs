//! A small bounded map for what the room looked up in storage. Storage is the truth: when the
//! map is full it is emptied, and later reads simply go to storage again.

use std::collections::HashMap;

pub struct BoundedMap<V> {
    map: HashMap<String, V>,
    cap: usize,
}

impl<V: Clone> BoundedMap<V> {
    pub fn new(cap: usize) -> Self {
        BoundedMap { map: HashMap::new(), cap }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    pub fn insert(&mut self, key: &str, value: V) {
        if let Some(slot) = self.map.get_mut(key) {
            *slot = value;
            return;
        }
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        self.map.insert(key.to_string(), value);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
