//! Proves the test harness is real: round trips against the Redis and MongoDB-wire servers that
//! `scripts/test.sh` started. Under CI a missing server fails these tests; it never skips them.

use finagent_platform::testkit;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Client, IndexModel};
use redis::AsyncCommands;

#[tokio::test]
async fn redis_round_trip() {
    let Some(url) = testkit::redis_url() else {
        return;
    };
    let client = redis::Client::open(url.as_str()).expect("valid redis url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("connects to redis");

    let key = testkit::unique_name("harness:redis");
    let () = connection.set_ex(&key, "round trip", 60).await.expect("SET");
    let value: String = connection.get(&key).await.expect("GET");
    assert_eq!(value, "round trip");

    // Streams with a consumer group are what the job queue is built on: prove them too.
    let stream = format!("{key}:stream");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("group")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut connection)
        .await
        .expect("XGROUP CREATE");
    let _: String = connection.xadd(&stream, "*", &[("job", "{}")]).await.expect("XADD");
    let read: redis::streams::StreamReadReply = connection
        .xread_options(&[&stream], &[">"], &redis::streams::StreamReadOptions::default().group("group", "c1").count(10))
        .await
        .expect("XREADGROUP");
    assert_eq!(read.keys.len(), 1);
    assert_eq!(read.keys[0].ids.len(), 1);
    let acked: u64 = connection.xack(&stream, "group", &[&read.keys[0].ids[0].id]).await.expect("XACK");
    assert_eq!(acked, 1);

    let info: redis::InfoDict = redis::cmd("INFO").arg("server").query_async(&mut connection).await.expect("INFO");
    let version: String = info.get("redis_version").expect("version reported");
    let major: u32 = version.split('.').next().and_then(|major| major.parse().ok()).expect("numeric version");
    assert!(major >= 7, "the queue needs Redis 7.0 or later, got {version}");

    let _: () = connection.del(&[&key, &stream]).await.expect("DEL");
}

#[tokio::test]
async fn mongo_round_trip_with_index_and_transaction() {
    let Some(url) = testkit::mongodb_url() else {
        return;
    };
    let client = Client::with_uri_str(&url).await.expect("valid mongodb url");
    let database = client.database(&testkit::unique_name("harness").replace('-', "_"));
    let receipts = database.collection::<Document>("receipts");

    // Insert and find.
    receipts.insert_one(doc! { "_id": "r1", "owner": "alice", "total": "12.50" }).await.expect("insert_one");
    let found = receipts.find_one(doc! { "_id": "r1" }).await.expect("find_one").expect("document exists");
    assert_eq!(found.get_str("owner").expect("owner field"), "alice");

    // A unique index is enforced.
    let index = IndexModel::builder()
        .keys(doc! { "owner": 1, "sha256": 1 })
        .options(IndexOptions::builder().unique(true).name("owner_sha256".to_owned()).build())
        .build();
    receipts.create_index(index).await.expect("create_index");
    let names = receipts.list_index_names().await.expect("list_index_names");
    assert!(names.contains(&"owner_sha256".to_owned()), "{names:?}");
    receipts.insert_one(doc! { "_id": "r2", "owner": "bob", "sha256": "abc" }).await.expect("first insert");
    let duplicate = receipts.insert_one(doc! { "_id": "r3", "owner": "bob", "sha256": "abc" }).await;
    assert!(duplicate.is_err(), "the unique index must reject a duplicate");

    // A committed multi-document transaction is visible; an aborted one leaves nothing behind.
    let mut session = client.start_session().await.expect("start_session");
    session.start_transaction().await.expect("start_transaction");
    receipts.insert_one(doc! { "_id": "t1", "owner": "carol" }).session(&mut session).await.expect("insert in txn");
    database
        .collection::<Document>("users")
        .insert_one(doc! { "_id": "carol", "receipts": 1 })
        .session(&mut session)
        .await
        .expect("second insert in txn");
    session.commit_transaction().await.expect("commit_transaction");
    assert!(receipts.find_one(doc! { "_id": "t1" }).await.expect("find").is_some());
    assert!(database.collection::<Document>("users").find_one(doc! { "_id": "carol" }).await.expect("find").is_some());

    session.start_transaction().await.expect("start second transaction");
    receipts.insert_one(doc! { "_id": "t2", "owner": "dave" }).session(&mut session).await.expect("insert in txn");
    session.abort_transaction().await.expect("abort_transaction");
    assert!(receipts.find_one(doc! { "_id": "t2" }).await.expect("find").is_none(), "aborted insert must vanish");

    database.drop().await.expect("drop database");
}
