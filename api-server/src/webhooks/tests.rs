use super::outbound::*;
use super::sender::*;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_streaming_an_endless_reply_costs_a_bounded_read() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let written = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&written);
    // A hostile receiver: 200, then bytes until the sender hangs up (or 5 s pass).
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut request = vec![0u8; 16 * 1024];
        let _ = stream.read(&mut request).await;
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n";
        if stream.write_all(head).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            match tokio::time::timeout(Duration::from_secs(1), stream.write_all(&chunk)).await {
                Ok(Ok(())) => counted.fetch_add(chunk.len() as u64, Ordering::SeqCst),
                Ok(Err(_)) => break,
                // Blocked: the sender stopped reading.
                Err(_) => continue,
            };
        }
    });
    let settings = WebhookSettings { allow_private_targets: true, ..WebhookSettings::default() };
    let (webhook, delivery) = webhook_and_delivery(format!("http://{address}/hook"));
    let sent = send(&client(settings), settings, &test_keys(), Some(&webhook), delivery).await;
    assert_eq!((sent.status, sent.last_status), (DeliveryStatus::Delivered, Some(200)), "{:?}", sent.last_error);
    // What the receiver could push: the limit, plus what the sockets' buffers hold.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pushed = written.load(Ordering::SeqCst);
    println!("an endless reply: {pushed} bytes pushed before the sender hung up (it reads {REPLY_LIMIT})");
    assert!(pushed < 32 * 1024 * 1024, "the sender read {pushed} bytes of an endless reply");
}

#[tokio::test]
async fn a_stored_literal_internal_address_is_refused_without_connecting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (webhook, delivery) = webhook_and_delivery(format!("http://{address}/hook"));
    let settings = WebhookSettings::default();
    let sent = send(&client(settings), settings, &test_keys(), Some(&webhook), delivery).await;
    assert_eq!(sent.status, DeliveryStatus::Failed, "refused for good, not retried");
    assert_eq!(sent.last_error.as_deref(), Some("refused: the address is internal"));
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "nothing connected to the internal receiver");
}

fn test_keys() -> TokenKeys {
    TokenKeys::new(b"a webhook test key of 32 bytes or more", "iss", "aud", Duration::ZERO, Duration::ZERO)
}

/// A receiver on loopback that answers 204 and passes on each request's signature header.
async fn signature_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (seen, signatures) = tokio::sync::mpsc::unbounded_channel();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let signature = headers["x-finagent-signature"].to_str().expect("ascii").to_owned();
                let _ = seen.send(signature);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    (format!("http://{address}/hook"), signatures)
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends() {
    let (url, mut signatures) = signature_receiver().await;
    let keys = test_keys();
    let settings = WebhookSettings { allow_private_targets: true, ..WebhookSettings::default() };
    let (mut webhook, delivery) = webhook_and_delivery(url);
    let context = webhook.id.as_bytes();
    webhook.secret = keys.seal("whsec_new", context);
    webhook.previous_secret = Some(keys.seal("whsec_old", context));
    webhook.previous_secret_expires_at = Some(Utc::now() + chrono::Duration::hours(1));
    let sent = send(&client(settings), settings, &keys, Some(&webhook), delivery.clone()).await;
    assert_eq!(sent.status, DeliveryStatus::Delivered, "{:?}", sent.last_error);
    let header = signatures.recv().await.expect("a request");
    let parts: Vec<&str> = header.split(',').collect();
    assert_eq!(parts.len(), 2, "{header}");
    assert!(parts.iter().all(|part| part.starts_with("v1=") && part.len() == 67), "{header}");
    assert_ne!(parts[0], parts[1], "one per secret");

    webhook.previous_secret_expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
    send(&client(settings), settings, &keys, Some(&webhook), delivery.clone()).await;
    let header = signatures.recv().await.expect("a request");
    assert!(!header.contains(','), "the old secret stopped signing: {header}");

    // A secret sealed under a key this server no longer has: no request, retried later.
    let stranger = TokenKeys::new(b"some other server's key of 32 bytes", "iss", "aud", Duration::ZERO, Duration::ZERO);
    webhook.secret = stranger.seal("whsec_new", context);
    let unsigned = send(&client(settings), settings, &keys, Some(&webhook), delivery).await;
    assert_eq!(unsigned.status, DeliveryStatus::Pending, "retried: restoring the key mends it");
    assert!(
        unsigned.last_error.as_deref().is_some_and(|error| error.starts_with("cannot sign")),
        "{:?}",
        unsigned.last_error
    );
    assert!(tokio::time::timeout(Duration::from_millis(300), signatures.recv()).await.is_err(), "nothing was sent");
}

fn webhook_and_delivery(url: String) -> (Webhook, WebhookDelivery) {
    let now = Utc::now();
    let owner = finagent_core::UserId::new();
    let webhook = Webhook {
        id: Uuid::new_v4(),
        owner_id: owner,
        url,
        secret: "a webhook secret".into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        events: vec!["receipt.done".into()],
        created_at: now,
    };
    let delivery = WebhookDelivery {
        id: Uuid::new_v4(),
        webhook_id: webhook.id,
        owner_id: owner,
        event: "receipt.done".into(),
        payload: "{}".into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: now,
        last_status: None,
        last_error: None,
        created_at: now,
        delivered_at: None,
    };
    (webhook, delivery)
}

#[test]
fn internal_addresses_are_recognised_in_every_form() {
    for internal in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "224.0.0.1",
        "192.0.0.8",
        "fec0::1",
        // 10.0.0.1 through NAT64, the local-use NAT64 prefix, 6to4 of 192.168.1.1, Teredo.
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2002:c0a8:101::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ] {
        assert!(is_internal(internal.parse().expect("ip")), "{internal}");
    }
    // Allowing private targets never opens link-local space, where metadata services answer.
    for metadata in ["169.254.169.254", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"] {
        assert!(!reachable(metadata.parse().expect("ip"), true), "{metadata}");
    }
    assert!(reachable("10.0.0.5".parse().expect("ip"), true), "a private receiver, when allowed");
    assert!(!reachable("10.0.0.5".parse().expect("ip"), false));
    for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
        assert!(!is_internal(public.parse().expect("ip")), "{public}");
    }
}

#[test]
fn signatures_are_hmac_sha256_of_the_timestamp_and_the_body() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").expect("key");
    mac.update(b"what do ya want for nothing?");
    assert_eq!(
        hex::encode(mac.finalize().into_bytes()),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let signed = signature("secret", 1_700_000_000, "{}");
    assert!(signed.starts_with("v1=") && signed.len() == 3 + 64);
    assert_ne!(signed, signature("secret", 1_700_000_001, "{}"), "the timestamp is signed");
    assert_ne!(signed, signature("other", 1_700_000_000, "{}"));
}

#[tokio::test]
async fn internal_and_odd_urls_are_refused() {
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.0.0.5/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
        "not a url",
    ] {
        assert!(check_url(url, false).await.is_err(), "{url}");
    }
    assert!(check_url("http://127.0.0.1:8080/hook", true).await.is_ok(), "allowed when configured");
    assert!(check_url("http://169.254.169.254/latest", true).await.is_err(), "metadata, even when allowed");
    for port in [25, 22, 53, 389] {
        assert!(check_url(&format!("http://93.184.216.34:{port}/hook"), false).await.is_err(), "port {port}");
    }
    for port in [80, 443, 8080, 8443] {
        assert!(check_url(&format!("http://93.184.216.34:{port}/hook"), false).await.is_ok(), "port {port}");
    }
}
