//! What every handler shares: the store, the guard state, the token keys, the password hasher and
//! the settings. Cloning it is cheap.

use std::ops::Deref;
use std::sync::Arc;

use finagent_platform::metrics::Metrics;
use finagent_platform::queue::AnyQueue;
use finagent_platform::store::AnyStore;

use crate::auth::password::Hasher;
use crate::auth::tokens::TokenKeys;
use crate::config::Settings;
use crate::guard::Guard;

/// The shared state of the API.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// Accounts, sessions, API keys and receipts.
    pub store: AnyStore,
    /// The OCR job queue.
    pub queue: AnyQueue,
    /// OCR threads in this process (0 when separate workers do the OCR).
    pub in_process_workers: usize,
    /// Rate limits, revocations and failed logins.
    pub guard: Guard,
    /// Token signing and checking.
    pub tokens: TokenKeys,
    /// Password hashing.
    pub hasher: Hasher,
    /// Validated settings.
    pub settings: Settings,
    /// The process's metrics registry.
    pub metrics: Metrics,
    /// Slots for uploads in progress.
    pub upload_slots: Arc<tokio::sync::Semaphore>,
    /// This process's copies of the answers to receipt reads.
    pub reads: crate::read_cache::entries::ReadCache,
    /// This process's copies of users' records and usage counts.
    pub accounts: crate::auth::accounts_cache::entries::AccountCache,
    /// Credentials looked up, by outcome (`accepted`, `refused`, `unavailable`).
    pub credential_checks: prometheus::IntCounterVec,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        store: AnyStore,
        queue: AnyQueue,
        guard: Guard,
        hasher: Hasher,
        settings: Settings,
        metrics: Metrics,
        in_process_workers: usize,
    ) -> Self {
        let tokens = TokenKeys::new(
            &settings.jwt_key,
            &settings.issuer,
            &settings.audience,
            settings.access_ttl,
            settings.refresh_ttl,
        )
        .with_previous(&settings.jwt_previous_keys);
        let upload_slots = Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_uploads));
        let credential_checks = prometheus::IntCounterVec::new(
            prometheus::Opts::new("finagent_api_credential_checks_total", "Credentials looked up, by outcome."),
            &["outcome"],
        )
        .expect("a valid metric");
        // A registry shared by two states (tests) keeps the first one's counter.
        metrics.registry().register(Box::new(credential_checks.clone())).ok();
        Self(Arc::new(Shared {
            store,
            queue,
            in_process_workers,
            guard,
            tokens,
            hasher,
            settings,
            metrics,
            upload_slots,
            accounts: Default::default(),
            reads: Default::default(),
            credential_checks,
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
