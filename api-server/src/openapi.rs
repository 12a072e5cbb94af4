//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at `/openapi.json`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; paths are added by the router.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "FinancialAgent API",
        description = "Receipt upload, OCR results and spending insights. Errors are `application/problem+json`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Accounts, sign-in and sessions"),
        (name = "api-keys", description = "Keys for scripts and integrations"),
        (name = "admin", description = "User management (admin role)"),
        (name = "webhooks", description = "Signed events when receipts are done or failed"),
    )
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

/// The document as served: the generated one, with what every route shares added once here
/// rather than on each handler — error bodies are `application/problem+json`; every operation may
/// answer 429 (rate limit) and 503 (a dependency down); one with a request body may answer 400
/// (unreadable), 413 (too large), 415 (wrong media type) and 422 (invalid); one with a path
/// parameter may answer 404.
pub fn finished(document: &utoipa::openapi::OpenApi, max_upload_bytes: usize) -> serde_json::Value {
    let mut value = serde_json::to_value(document).unwrap_or_default();
    state_upload_limit(&mut value, max_upload_bytes);
    let problem = serde_json::json!({"$ref": "#/components/schemas/Problem"});
    let problem_response = |description: &str| serde_json::json!({"description": description, "content": {"application/problem+json": {"schema": problem}}});
    let Some(paths) = value.get_mut("paths").and_then(serde_json::Value::as_object_mut) else { return value };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (_, operation) in
            item.iter_mut().filter(|(method, _)| ["get", "put", "post", "delete", "patch"].contains(&method.as_str()))
        {
            let has_body = operation.get("requestBody").is_some();
            let Some(responses) = operation.get_mut("responses").and_then(serde_json::Value::as_object_mut) else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(content) = response.get_mut("content").and_then(serde_json::Value::as_object_mut) else {
                    continue;
                };
                if content.get("application/json").and_then(|media| media.get("schema")) == Some(&problem)
                    && let Some(media) = content.remove("application/json")
                {
                    content.insert("application/problem+json".into(), media);
                }
            }
            let mut shared = vec![
                ("429", "Too many requests: retry after `Retry-After` seconds"),
                ("503", "A dependency is unavailable; retry later"),
            ];
            if has_body {
                shared.extend([
                    ("400", "The body could not be read"),
                    ("413", "The body is too large"),
                    ("415", "The body's media type is not accepted"),
                    ("422", "A field is invalid"),
                ]);
            }
            if path.contains('{') {
                shared.push(("404", "Not found"));
            }
            for (status, description) in shared {
                responses.entry(status).or_insert_with(|| problem_response(description));
            }
        }
    }
    value
}

/// Writes the configured upload limit where the document names `MAX_UPLOAD_SIZE`: the upload
/// form's file and the upload's 413 answer say `25 MiB` (or whatever this server takes).
fn state_upload_limit(document: &mut serde_json::Value, max_upload_bytes: usize) {
    let limit = finagent_core::names::uploads::describe(max_upload_bytes);
    let places = [
        "/components/schemas/UploadForm/properties/file/description",
        "/paths/~1api~1ocr~1process/post/responses/413/description",
    ];
    for place in places {
        if let Some(serde_json::Value::String(text)) = document.pointer_mut(place) {
            *text = text.replace("`MAX_UPLOAD_SIZE`", &limit);
        }
    }
}
