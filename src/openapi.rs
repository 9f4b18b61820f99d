//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the
//! Swagger UI that renders it (assets compiled into the binary: works air-gapped).

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::api::{health, histories, metrics, randomizes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "randomize",
        description = "Word-randomizer REST service with an audit history. POST a word to have its grapheme \
            clusters shuffled and stored; every API call is recorded in an audit history that holders of a \
            `histories:read` JWT can read. Errors are RFC 9457 problem+json with a `request_id` that matches \
            the `X-Request-Id` response header.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        randomizes::create, randomizes::list, randomizes::get, randomizes::update, randomizes::delete,
        histories::list, histories::get,
        health::live, health::ready, metrics::get,
    ),
    modifiers(&BearerToken),
    tags(
        (name = "randomizes", description = "Jumble words and manage the stored records"),
        (name = "histories", description = "The audit history (bearer JWT with `histories:read`)"),
        (name = "health", description = "Probes and metrics for orchestrators (not audited)"),
    ),
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description =
            Some("A token from `randomize token --subject NAME` (scope `histories:read`).".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as `randomize openapi` prints it and `/openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `/docs/` (Swagger UI) and `/openapi.json`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let config = Config::from("/openapi.json")
        // The default validator badge calls validator.swagger.io: not air-gapped.
        .validator_url("none")
        .try_it_out_enabled(true)
        .persist_authorization(true);
    cfg.service(web::resource("/docs").route(web::get().to(|| async {
        HttpResponse::PermanentRedirect()
            .insert_header(("location", "/docs/"))
            .finish()
    })))
    .service(
        SwaggerUi::new("/docs/{_:.*}")
            .url("/openapi.json", document())
            .config(config),
    );
}
