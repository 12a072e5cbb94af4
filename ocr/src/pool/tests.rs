use super::*;

const RECEIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg");

fn pool(timeout: Duration) -> EnginePool {
    let config = PoolConfig { timeout, ..PoolConfig::default() };
    EnginePool::start(config, Arc::new(Gazetteer::bundled())).expect("tesseract starts")
}

#[tokio::test]
async fn an_unusable_file_fails_for_good_and_the_thread_serves_the_next() {
    let pool = pool(Duration::from_secs(60));
    for bytes in [b"not an image".to_vec(), Vec::new()] {
        let error = pool.process(bytes).await.expect_err("refused");
        assert!(matches!(error, ProcessError::Image(_)), "{error}");
        assert!(!error.is_retryable(), "{error}");
    }
    assert_eq!(pool.threads(), 1);
}

#[tokio::test]
async fn an_image_past_its_time_limit_fails_at_once_and_may_be_retried() {
    let limit = Duration::from_millis(1);
    let pool = pool(limit);
    let bytes = std::fs::read(RECEIPT).expect("fixture");
    let error = pool.process(bytes).await.expect_err("too slow");
    assert_eq!(error, ProcessError::Timeout(limit));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_closed_pool_refuses_work_and_says_so() {
    let pool = pool(Duration::from_secs(60));
    pool.close();
    let error = pool.process(b"any".to_vec()).await.expect_err("closed");
    assert_eq!(error, ProcessError::Closed);
    assert!(error.is_retryable(), "another replica can take it");
}
