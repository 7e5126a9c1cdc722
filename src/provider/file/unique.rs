//! Every object of a read must have a key of its own. In comes a read's
//! objects in input order; out comes the first key that is used twice.
//!
//! A reload usually changes a few documents of many, and the cache gives
//! back the very same shared object for every document that did not
//! change. So the registry remembers the previous good read: an object
//! found at the same position as the same shared object kept its key, which
//! was unique then, and only the other objects are looked up.

use std::collections::HashMap;
use std::sync::Arc;

use crate::object::{Object, ObjectKey};

/// The objects of the last read that passed, and the position of each key.
#[derive(Debug, Default)]
pub(super) struct KeyRegistry {
    objects: Vec<Arc<Object>>,
    positions: HashMap<ObjectKey, usize>,
}

impl KeyRegistry {
    /// Checks that no key of `objects` is used twice and remembers them; on
    /// failure returns the key and remembers nothing.
    pub(super) fn check(&mut self, objects: &[Arc<Object>]) -> Result<(), ObjectKey> {
        let moved: Vec<bool> = objects
            .iter()
            .enumerate()
            .map(|(i, object)| {
                self.objects
                    .get(i)
                    .is_none_or(|before| !Arc::ptr_eq(before, object))
            })
            .collect();
        let moved_count = moved.iter().filter(|&&m| m).count();
        if moved_count * 2 > objects.len() {
            return self.check_all(objects);
        }
        // A moved object clashes with an object that kept its place, or
        // with another moved one.
        let mut fresh: HashMap<ObjectKey, usize> = HashMap::with_capacity(moved_count);
        for (i, object) in objects.iter().enumerate().filter(|(i, _)| moved[*i]) {
            let key = object.key();
            let kept_holder = self
                .positions
                .get(&key)
                .is_some_and(|&at| moved.get(at) == Some(&false));
            if kept_holder || fresh.contains_key(&key) {
                return Err(key);
            }
            fresh.insert(key, i);
        }
        // Forget the keys of the objects that left their places, then
        // record the new ones there.
        let left = (0..self.objects.len()).filter(|&at| moved.get(at) != Some(&false));
        for at in left {
            let key = self.objects[at].key();
            if self.positions.get(&key) == Some(&at) {
                self.positions.remove(&key);
            }
        }
        self.positions.extend(fresh);
        self.objects = objects.to_vec();
        Ok(())
    }

    fn check_all(&mut self, objects: &[Arc<Object>]) -> Result<(), ObjectKey> {
        let mut positions = HashMap::with_capacity(objects.len());
        for (i, object) in objects.iter().enumerate() {
            if positions.insert(object.key(), i).is_some() {
                return Err(object.key());
            }
        }
        self.positions = positions;
        self.objects = objects.to_vec();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
