//! Uploads in progress per user: a user may send only a few at once, so that one account cannot
//! take every upload slot of the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use finagent_core::UserId;

/// Counts of each user's uploads in progress.
#[derive(Debug, Default)]
pub struct UploadsInProgress {
    counts: Mutex<HashMap<UserId, usize>>,
}

/// One upload in progress; dropping it ends it.
#[derive(Debug)]
pub struct UploadTicket {
    uploads: Arc<UploadsInProgress>,
    user: UserId,
}

impl UploadsInProgress {
    /// Starts an upload of `user`, unless they already have `at_once` in progress.
    pub fn start(self: &Arc<Self>, user: UserId, at_once: usize) -> Option<UploadTicket> {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(user).or_default();
        if *count >= at_once {
            return None;
        }
        *count += 1;
        Some(UploadTicket { uploads: Arc::clone(self), user })
    }

    /// Uploads of `user` in progress.
    pub fn of(&self, user: UserId) -> usize {
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&user).copied().unwrap_or(0)
    }
}

impl Drop for UploadTicket {
    fn drop(&mut self) {
        let mut counts = self.uploads.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_has_at_most_their_share_and_others_are_apart() {
        let uploads = Arc::new(UploadsInProgress::default());
        let (ann, bob) = (UserId::new(), UserId::new());
        let first = uploads.start(ann, 2).expect("first");
        let second = uploads.start(ann, 2).expect("second");
        assert!(uploads.start(ann, 2).is_none(), "a third at once is refused");
        assert!(uploads.start(bob, 2).is_some(), "another user is not affected");
        drop(first);
        let third = uploads.start(ann, 2).expect("a slot freed by the end of one");
        drop((second, third));
        assert_eq!(uploads.of(ann), 0);
        assert!(uploads.counts.lock().expect("lock").is_empty(), "no entry is left behind");
    }
}
