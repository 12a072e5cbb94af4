use super::*;

fn keys() -> TokenKeys {
    TokenKeys::new(
        b"0123456789abcdef0123456789abcdef",
        "iss",
        "aud",
        Duration::from_secs(900),
        Duration::from_secs(86_400),
    )
}

#[test]
fn a_device_token_names_its_device_for_its_account_only() {
    let keys = keys();
    let token = keys.device_token("account-a");
    let nonce = keys.device_of(&token, "account-a").expect("valid");
    assert_eq!(nonce.len(), 32);
    assert_ne!(keys.device_token("account-a"), token, "each sign-in makes a new device");
    assert_eq!(keys.device_of(&token, "account-b"), None, "another account's");
    let (head, signature) = token.split_once('.').expect("two parts");
    let flipped = format!("{head}.{}{}", &signature[..63], if signature.ends_with('0') { '1' } else { '0' });
    assert_eq!(keys.device_of(&flipped, "account-a"), None, "tampered");
    let other = TokenKeys::new(b"another key of thirty-two bytes!", "iss", "aud", Duration::ZERO, Duration::ZERO);
    assert_eq!(other.device_of(&token, "account-a"), None, "another server's key");
    assert_eq!(keys.device_of("x.y", "account-a"), None);
}

#[test]
fn a_csrf_token_says_what_it_is_bound_to_and_only_this_server_signs_one() {
    let keys = keys();
    let session = Uuid::new_v4();
    let bound = keys.csrf_token(CsrfBinding::Session(session));
    assert_eq!(keys.csrf_binding(&bound), Some(CsrfBinding::Session(session)));
    let anonymous = keys.csrf_token(CsrfBinding::Anonymous);
    assert_eq!(keys.csrf_binding(&anonymous), Some(CsrfBinding::Anonymous));
    // Rebinding a token to another session breaks its signature.
    let (nonce, rest) = bound.split_once('.').expect("parts");
    let signature = rest.split_once('.').expect("parts").1;
    let moved = format!("{nonce}.{}.{signature}", Uuid::new_v4().simple());
    assert_eq!(keys.csrf_binding(&moved), None, "moved to another session");
    let unbound = format!("{nonce}.-.{signature}");
    assert_eq!(keys.csrf_binding(&unbound), None, "unbound");
    let other = TokenKeys::new(b"another key of thirty-two bytes!", "iss", "aud", Duration::ZERO, Duration::ZERO);
    assert_eq!(other.csrf_binding(&bound), None, "another server's key");
    for junk in ["", "0123456789abcdef0123456789abcdef", "a.b.c", &"f".repeat(64)] {
        assert_eq!(keys.csrf_binding(junk), None, "{junk}");
    }
    assert_ne!(keys.csrf_token(CsrfBinding::Anonymous), anonymous, "each token is new");
}

const OLD_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const NEW_KEY: &[u8] = b"a brand new key of 32 bytes or more";

fn keys_of(key: &[u8], previous: &[&[u8]]) -> TokenKeys {
    let previous: Vec<Vec<u8>> = previous.iter().map(|key| key.to_vec()).collect();
    TokenKeys::new(key, "iss", "aud", Duration::from_secs(900), Duration::from_secs(86_400)).with_previous(&previous)
}

#[test]
fn a_rotation_keeps_the_previous_keys_tokens_valid_until_the_key_is_dropped() {
    let now = chrono::Utc::now().timestamp();
    let before = keys_of(OLD_KEY, &[]);
    let access = before.issue_access(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
    let header = jsonwebtoken::decode_header(&access.token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(before.current_kid()), "the token names its key");
    assert_eq!(before.current_kid().len(), 16);
    let device = before.device_token("account");
    let csrf = before.csrf_token(CsrfBinding::Anonymous);

    let during = keys_of(NEW_KEY, &[OLD_KEY]);
    assert_ne!(during.current_kid(), before.current_kid());
    assert!(during.verify(&access.token, TokenKind::Access).is_ok(), "the previous key still verifies");
    assert!(during.device_of(&device, "account").is_some());
    assert_eq!(during.csrf_binding(&csrf), Some(CsrfBinding::Anonymous));
    let fresh = during.issue_access(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
    let header = jsonwebtoken::decode_header(&fresh.token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(during.current_kid()), "new tokens are signed with the new key");
    assert!(before.verify(&fresh.token, TokenKind::Access).is_err(), "a server without the new key refuses them");

    let after = keys_of(NEW_KEY, &[]);
    let error = after.verify(&access.token, TokenKind::Access).expect_err("the old key is gone");
    assert!(error.0.contains("not configured"), "{}", error.0);
    assert!(after.device_of(&device, "account").is_none());
    assert_eq!(after.csrf_binding(&csrf), None);
    assert!(after.verify(&fresh.token, TokenKind::Access).is_ok());

    // A token from before keys had ids verifies under whichever ring key signed it.
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    let legacy = jsonwebtoken::encode(&header, &access.claims, &EncodingKey::from_secret(OLD_KEY)).expect("sign");
    assert!(during.verify(&legacy, TokenKind::Access).is_ok());
    assert!(after.verify(&legacy, TokenKind::Access).is_err());
    // A kid that names no key is refused, whatever the signature.
    let mut forged = Header::new(Algorithm::HS256);
    forged.typ = Some("at+jwt".into());
    forged.kid = Some("0000000000000000".into());
    let forged = jsonwebtoken::encode(&forged, &access.claims, &EncodingKey::from_secret(NEW_KEY)).expect("sign");
    assert!(during.verify(&forged, TokenKind::Access).is_err());
}

#[test]
fn a_sealed_secret_opens_under_any_ring_key_for_its_own_record_only() {
    let old = keys_of(OLD_KEY, &[]);
    let sealed = old.seal("whsec_abc", b"webhook-1");
    assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("whsec_abc"), "{sealed}");
    assert_ne!(old.seal("whsec_abc", b"webhook-1"), sealed, "a fresh nonce each time");
    assert_eq!(old.open(&sealed, b"webhook-1").expect("open"), "whsec_abc");
    assert!(matches!(old.open(&sealed, b"webhook-2"), Err(SealError::Damaged)), "another record's");
    let mut tampered = sealed.clone();
    let last = tampered.pop().expect("a digit");
    tampered.push(if last == '0' { '1' } else { '0' });
    assert!(matches!(old.open(&tampered, b"webhook-1"), Err(SealError::Damaged)));
    assert!(old.sealed_under_current(&sealed));

    let rotated = keys_of(NEW_KEY, &[OLD_KEY]);
    assert_eq!(rotated.open(&sealed, b"webhook-1").expect("open"), "whsec_abc", "a previous key opens");
    assert!(!rotated.sealed_under_current(&sealed), "to be sealed again");
    assert!(matches!(keys_of(NEW_KEY, &[]).open(&sealed, b"webhook-1"), Err(SealError::UnknownKey(_))));
    // Stored before secrets were sealed: taken as it is, and never "under the current key".
    assert_eq!(rotated.open("whsec_plain", b"webhook-1").expect("plain"), "whsec_plain");
    assert!(!rotated.sealed_under_current("whsec_plain"));
    for junk in ["sealed:v1:", "sealed:v1:abc", "sealed:v1:abc:zz"] {
        assert!(rotated.open(junk, b"webhook-1").is_err(), "{junk}");
    }
}

#[test]
fn an_access_token_round_trips_with_every_registered_claim() {
    let now = chrono::Utc::now().timestamp();
    let user = UserId::new();
    let issued = keys().issue_access(user, Role::User, Uuid::new_v4(), now).expect("issue");
    let claims = keys().verify(&issued.token, TokenKind::Access).expect("verify");
    assert_eq!(claims, issued.claims);
    assert_eq!((claims.iss.as_str(), claims.aud.as_str(), claims.exp - claims.iat), ("iss", "aud", 900));
    assert!((claims.issued_at_millis() - now * 1000).abs() < 2_000);
}

#[test]
fn the_kinds_do_not_stand_in_for_each_other() {
    let now = chrono::Utc::now().timestamp();
    let refresh = keys().issue_refresh(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
    assert!(keys().verify(&refresh.token, TokenKind::Access).is_err());
    let access = keys().issue_access(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
    assert!(keys().verify(&access.token, TokenKind::Refresh).is_err());
}

#[test]
fn a_token_checked_before_is_still_refused_when_expired_tampered_or_of_the_other_kind() {
    let keys = keys();
    let now = chrono::Utc::now().timestamp();
    let issued = keys.issue_access(UserId::new(), Role::User, Uuid::new_v4(), now).expect("issue");
    assert!(keys.verify(&issued.token, TokenKind::Access).is_ok());
    assert!(keys.verify(&issued.token, TokenKind::Access).is_ok(), "the second check is the kept one");
    assert!(keys.verify(&issued.token, TokenKind::Refresh).is_err());
    let mut tampered = issued.token.clone();
    let last = tampered.pop().expect("a character");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(keys.verify(&tampered, TokenKind::Access).is_err());
    let leeway = LEEWAY_SECONDS as i64;
    assert!(in_time(issued.claims.clone(), issued.claims.exp + leeway).is_ok());
    assert!(in_time(issued.claims.clone(), issued.claims.exp + leeway + 1).is_err());
    assert!(in_time(issued.claims.clone(), issued.claims.nbf - leeway - 1).is_err());
}
