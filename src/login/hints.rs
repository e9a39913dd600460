//! Which user a name found last time on this replica, so that a login reads the user's
//! generation first and the user once, not the user twice (see `Login::current_user`).
//! A hint is only a guess: the read after the generation checks it, and a wrong one costs
//! the reads it would have cost without it.

use super::Named;
use crate::domain::token::UserTag;
use crate::domain::user::UserType;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Names remembered at most; past it the map starts again, so a flood of made-up names
/// costs bounded memory.
const MAX_HINTS: usize = 10_000;

type Key = (String, Option<String>, Option<UserType>);

#[derive(Clone, Default)]
pub struct TagHints(Arc<Mutex<HashMap<Key, UserTag>>>);

impl TagHints {
    pub fn get(&self, named: &Named) -> Option<UserTag> {
        let hints = self.0.lock().unwrap_or_else(|e| e.into_inner());
        hints.get(&key(named)).cloned()
    }

    pub fn remember(&self, named: &Named, tag: UserTag) {
        let mut hints = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if hints.len() >= MAX_HINTS {
            hints.clear();
        }
        hints.insert(key(named), tag);
    }
}

fn key(named: &Named) -> Key {
    (
        named.user_name.as_str().to_string(),
        named.tenant.as_ref().map(|t| t.as_str().to_string()),
        named.user_type,
    )
}
