//! Uploads in progress per user: a user may send only a few at once, so that one account cannot
//! take every upload slot. Counted in the guard, so the bound holds across every replica sharing
//! it (Redis), not per process.

use std::time::Duration;

use finagent_core::UserId;
use uuid::Uuid;

use crate::guard::{Guard, GuardError};

/// How long an upload holds its place when its replica dies before ending it: longer than any
/// upload can take (25 MiB at the slowest rate accepted is under half an hour).
pub const LEASE: Duration = Duration::from_secs(45 * 60);

/// One upload in progress; dropping it ends it.
#[derive(Debug)]
pub struct UploadTicket {
    guard: Guard,
    user: UserId,
    id: Uuid,
}

/// Starts an upload of `user`, unless they already have `at_once` in progress.
pub async fn start(guard: &Guard, user: UserId, at_once: usize) -> Result<Option<UploadTicket>, GuardError> {
    let id = Uuid::new_v4();
    let started = guard.begin_upload(user, id, at_once, LEASE).await?;
    Ok(started.then(|| UploadTicket { guard: guard.clone(), user, id }))
}

impl Drop for UploadTicket {
    fn drop(&mut self) {
        let (guard, user, id) = (self.guard.clone(), self.user, self.id);
        match &guard {
            // In process the end is immediate, so the next upload sees the place free.
            Guard::Memory(_) => {
                use futures::FutureExt;
                let _ = guard.end_upload(user, id).now_or_never();
            }
            Guard::Redis(_) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        if let Err(error) = guard.end_upload(user, id).await {
                            tracing::warn!(%error, "an upload's place was not freed; its lease frees it");
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_has_at_most_their_share_and_others_are_apart() {
        let guard = Guard::memory();
        let (ann, bob) = (UserId::new(), UserId::new());
        let first = start(&guard, ann, 2).await.expect("guard").expect("first");
        let second = start(&guard, ann, 2).await.expect("guard").expect("second");
        assert!(start(&guard, ann, 2).await.expect("guard").is_none(), "a third at once is refused");
        assert!(start(&guard, bob, 2).await.expect("guard").is_some(), "another user is not affected");
        drop(first);
        let third = start(&guard, ann, 2).await.expect("guard").expect("a place freed by the end of one");
        drop((second, third));
        assert!(start(&guard, ann, 1).await.expect("guard").is_some());
    }

    #[tokio::test]
    async fn an_upload_its_replica_never_ended_is_forgotten_after_its_lease() {
        let guard = Guard::memory();
        let user = UserId::new();
        let lease = Duration::from_millis(50);
        assert!(guard.begin_upload(user, Uuid::new_v4(), 1, lease).await.expect("begin"));
        assert!(!guard.begin_upload(user, Uuid::new_v4(), 1, lease).await.expect("begin"));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(guard.begin_upload(user, Uuid::new_v4(), 1, lease).await.expect("begin"), "the lease ran out");
    }
}
