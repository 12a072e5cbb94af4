//! Validation: what the CEL rules cannot say (quantities, names), turning a raw resource into a
//! [`ValidatedAgent`] that the builders can trust. A failure is a spec error: it waits for the
//! user to change the resource (a Degraded condition and a Warning Event), it is never retried.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::{FinancialAgent, FinancialAgentSpec};

/// Why a spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {0}")]
pub struct InvalidSpec(pub String);

/// A resource whose spec passed validation, with what the builders need from its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedAgent {
    /// The resource's name, prefix of every child.
    pub name: String,
    /// Its namespace, where every child lives.
    pub namespace: String,
    /// The owner reference every child carries.
    pub owner: OwnerReference,
    /// The validated spec.
    pub spec: FinancialAgentSpec,
    /// The value of the retry annotation, if set.
    pub retry: Option<String>,
    /// The digests of the Secret values the pods read, once step 2 has read them (empty until
    /// then, and in the pure builders' tests).
    pub secrets: SecretDigests,
}

impl ValidatedAgent {
    /// `namespace/name`, the resource's label value in the operator's metrics.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

fn is_dns_label(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A Kubernetes label value: empty, or up to 63 characters of `[A-Za-z0-9_.-]` that start and end
/// with a letter or digit.
pub fn is_label_value(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |byte: Option<&u8>| byte.is_some_and(u8::is_ascii_alphanumeric);
    text.is_empty()
        || (text.len() <= 63
            && edge(bytes.first())
            && edge(bytes.last())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

fn quantity(field: &str, value: &str) -> Result<(), InvalidSpec> {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &value[digits.len()..];
    let known = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "k", "M", "G", "T", "P"];
    if digits.is_empty() || digits.parse::<f64>().map_or(true, |n| n <= 0.0) || !known.contains(&suffix) {
        return Err(InvalidSpec(format!("{field}: {value:?} is not a storage quantity such as 10Gi")));
    }
    let _ = Quantity(value.to_owned());
    Ok(())
}

/// Validates a resource.
/// `address/prefix`, with the prefix no longer than the address.
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else { return false };
    let Ok(prefix) = prefix.parse::<u8>() else { return false };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

pub fn validate(agent: &FinancialAgent) -> Result<ValidatedAgent, InvalidSpec> {
    let name = agent.metadata.name.clone().ok_or_else(|| InvalidSpec("the resource has no name".into()))?;
    // Children are named `<name>-mongodb` and so on, and Services need DNS labels of 63 characters.
    if !is_dns_label(&name, 40) {
        return Err(InvalidSpec(format!("metadata.name {name:?} must be a DNS label of at most 40 characters")));
    }
    let namespace =
        agent.metadata.namespace.clone().ok_or_else(|| InvalidSpec("the resource has no namespace".into()))?;
    let owner = agent.controller_owner_ref(&()).ok_or_else(|| InvalidSpec("the resource has no uid yet".into()))?;
    let spec = &agent.spec;
    // The version is every child's `app.kubernetes.io/version` label: a value the API server
    // refuses there would make every apply fail.
    if !is_label_value(&spec.version) {
        return Err(InvalidSpec(format!(
            "version {:?} must be at most 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
            spec.version
        )));
    }
    if spec.ocr_worker.min_replicas > spec.ocr_worker.max_replicas {
        return Err(InvalidSpec("ocrWorker.minReplicas must not exceed ocrWorker.maxReplicas".into()));
    }
    if spec.redis.managed {
        quantity("redis.storage", &spec.redis.storage)?;
    } else if spec.redis.url_secret_ref.is_none() {
        return Err(InvalidSpec("redis.urlSecretRef is required when redis.managed is false".into()));
    }
    if spec.mongodb.managed {
        quantity("mongodb.storage", &spec.mongodb.storage)?;
    } else if spec.mongodb.uri_secret_ref.is_none() {
        return Err(InvalidSpec("mongodb.uriSecretRef is required when mongodb.managed is false".into()));
    }
    if spec.ingress.enabled {
        let host = spec.ingress.host.as_deref().unwrap_or_default();
        let valid = host.split('.').all(|label| is_dns_label(label, 63)) && host.len() <= 253;
        if !valid {
            return Err(InvalidSpec(format!("ingress.host {host:?} is not a DNS name")));
        }
    }
    for proxy in &spec.ingress.trusted_proxies {
        let valid = proxy.parse::<std::net::IpAddr>().is_ok() || is_cidr(proxy);
        if !valid {
            return Err(InvalidSpec(format!("ingress.trustedProxies: {proxy:?} is not an address or a CIDR range")));
        }
    }
    for (field, image) in [("apiServer.image", &spec.api_server.image), ("ocrWorker.image", &spec.ocr_worker.image)] {
        if let Some(image) = image
            && (image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(InvalidSpec(format!("{field}: {image:?} is not an image reference")));
        }
    }
    let retry = agent.metadata.annotations.as_ref().and_then(|a| a.get(crate::crd::annotations::RETRY)).cloned();
    Ok(ValidatedAgent { name, namespace, owner, spec: spec.clone(), retry, secrets: Default::default() })
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn label_values_follow_the_api_servers_rules() {
        for good in ["", "0.1.0", "v1.2.3-rc.1", "a", &"a".repeat(63), "1_2"] {
            assert!(super::is_label_value(good), "{good}");
        }
        for bad in ["_x", "x-", ".x", &"a".repeat(64), "a b", "a/b", "a+b"] {
            assert!(!super::is_label_value(bad), "{bad}");
        }
    }

    use super::*;

    /// A resource as the API server would return it, with a spec from JSON.
    pub fn agent(spec: serde_json::Value) -> FinancialAgent {
        let mut agent = FinancialAgent::new("shop", serde_json::from_value(spec).expect("spec"));
        agent.metadata.namespace = Some("finance".into());
        agent.metadata.uid = Some("5f0c3a52-1111-4222-8333-444455556666".into());
        agent.metadata.generation = Some(1);
        agent
    }

    #[test]
    fn a_minimal_resource_validates() {
        let validated = validate(&agent(serde_json::json!({}))).expect("valid");
        assert_eq!((validated.name.as_str(), validated.namespace.as_str()), ("shop", "finance"));
        assert_eq!(validated.owner.kind, "FinancialAgent");
        assert_eq!(validated.owner.controller, Some(true));
    }

    #[test]
    fn invalid_specs_are_refused_with_the_field_named() {
        for (spec, field) in [
            (serde_json::json!({"ocrWorker": {"minReplicas": 4, "maxReplicas": 2}}), "minReplicas"),
            (serde_json::json!({"redis": {"storage": "lots"}}), "redis.storage"),
            (serde_json::json!({"mongodb": {"managed": false}}), "uriSecretRef"),
            (serde_json::json!({"ingress": {"enabled": true, "host": "not a host"}}), "ingress.host"),
            (serde_json::json!({"apiServer": {"image": "bad image"}}), "apiServer.image"),
            (serde_json::json!({"ingress": {"trustedProxies": ["10.0.0.0/33"]}}), "trustedProxies"),
            (serde_json::json!({"ingress": {"trustedProxies": ["ingress-nginx"]}}), "trustedProxies"),
            (serde_json::json!({"version": "_leading"}), "version"),
            (serde_json::json!({"version": "trailing-"}), "version"),
            (serde_json::json!({"version": "a".repeat(64)}), "version"),
        ] {
            let error = validate(&agent(spec.clone())).expect_err("refused");
            assert!(error.0.contains(field), "{spec}: {error}");
        }
    }
}

/// The digests of the Secret values the API's and the workers' pods read (see
/// `reconcile::secrets`); `None` leaves the annotation off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretDigests {
    /// The API's: the signing key and the datastores' credentials.
    pub api: Option<String>,
    /// The workers': the datastores' credentials.
    pub worker: Option<String>,
}
