//! Providers: the sources of truth Gatehouse reads objects from.
//!
//! A provider turns its source into [`Event`]s for the index. The `file`
//! provider reads YAML from disk (standalone mode and `validate`).

pub mod file;
pub mod kubernetes;

use crate::object::{Kind, Object, ObjectKey};

/// A change reported by a provider.
#[derive(Clone, Debug)]
pub enum Event {
    /// An object was created or changed.
    Apply(Box<Object>),
    /// An object was deleted.
    Delete(ObjectKey),
    /// The provider's whole set of objects, replacing everything before.
    Reset(Vec<Object>),
    /// Objects created or changed and objects deleted, applied as one step
    /// (a reload of the file provider that changed a few documents).
    Changes {
        /// Created or changed.
        apply: Vec<Object>,
        /// Deleted.
        delete: Vec<ObjectKey>,
    },
    /// Every object of one kind, replacing all objects of that kind (a
    /// watcher's initial list or relist).
    Restart(Kind, Vec<Object>),
}
