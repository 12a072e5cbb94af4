//! Revisions: a pod template's digest, and the platform's, made of its two templates' digests.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The platform's revision: both templates together.
pub fn platform_revision(api: &PodTemplateSpec, worker: &PodTemplateSpec) -> String {
    format!("{}-{}", &template_revision(api)[..8], &template_revision(worker)[..8])
}

/// The revision of a pod template: a short digest of its JSON, stable across processes.
pub fn template_revision(template: &PodTemplateSpec) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    // FNV-1a, 64 bits: stable, and enough to tell templates apart.
    let hash = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}
