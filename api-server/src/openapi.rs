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
