//! The queue-depth readers against a real Redis: a read writes nothing, and one instance's
//! unresponsive Redis does not delay another instance's reading.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use finagent_core::names::InstanceName;
use finagent_operator::adapters::DepthReaders;
use finagent_platform::testkit;

#[tokio::test]
async fn an_unresponsive_redis_does_not_delay_another_instances_reading() {
    let Some(url) = testkit::redis_url() else { return };
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("binds");
    let silent_url = format!("redis://{}/", silent.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let readers = DepthReaders::default();
    let stuck: InstanceName = format!("stuck{}", std::process::id()).parse().expect("name");
    let healthy: InstanceName = format!("healthy{}", std::process::id()).parse().expect("name");
    let started = Instant::now();
    let slow = readers.read("stuck", &silent_url, &stuck);
    let fast = async {
        // Let the stuck reading start first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let depth = readers.read("healthy", &url, &healthy).await;
        (depth, started.elapsed())
    };
    let (slow, (fast, fast_took)) = tokio::join!(slow, fast);
    let slow = slow.expect_err("a Redis that never answers counts as unreachable");
    assert!(slow.contains("did not answer within 3 s"), "{slow}");
    assert_eq!(fast, Ok(0), "an instance with no stream yet has an empty queue");
    assert!(fast_took < Duration::from_secs(1), "the healthy reading waited {fast_took:?} for the stuck one");
    // Reading created nothing in Redis.
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut connection = client.get_multiplexed_async_connection().await.expect("connects");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("finagent:{healthy}:ocr:jobs"))
        .query_async(&mut connection)
        .await
        .expect("exists");
    assert_eq!(exists, 0, "the depth read wrote no stream and no consumer group");
}
