//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the
//! Swagger UI that renders it (assets compiled into the binary: works air-gapped).

use actix_web::{HttpResponse, web};
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::api::{checkpoints, health, histories, metrics, randomizes};
use crate::error::Problem;
use crate::jumble::DEFAULT_MAX_GRAPHEMES;

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
        histories::list, checkpoints::list, histories::get,
        health::live, health::ready, metrics::get,
    ),
    components(schemas(Problem)),
    modifiers(&BearerToken),
    tags(
        (name = "randomizes", description = "Jumble words and manage the stored records"),
        (name = "histories", description = "The audit history (bearer JWT with `histories:read`)"),
        (name = "health", description = "Probes and metrics for orchestrators (not audited)"),
    ),
)]
struct ApiDoc;

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

/// The document with the default limits, as `randomize openapi` prints it.
pub fn document() -> Document {
    document_for(DEFAULT_MAX_GRAPHEMES)
}

/// The document as a server with these limits serves it at `/openapi.json`.
pub(crate) fn document_for(max_word_graphemes: usize) -> Document {
    let mut document = ApiDoc::openapi();
    if let Some(RefOr::T(Schema::Object(body))) = document
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("RandomizeRequest"))
    {
        // `WordInput::parse` refuses any other field by name.
        body.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        if let Some(RefOr::T(Schema::Object(word))) = body.properties.get_mut("word") {
            word.max_length = Some(max_word_graphemes);
        }
    }
    document
}

/// `/docs/` (Swagger UI) and `/openapi.json` serving `document`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig, document: Document) {
    let config = Config::from("/openapi.json")
        // The default validator badge calls validator.swagger.io: not air-gapped.
        .validator_url("none")
        .try_it_out_enabled(true)
        // A token kept in localStorage outlives the tab and is readable by any script
        // that ever runs on this origin; the page asks for it again instead.
        .persist_authorization(false);
    cfg.service(
        web::resource("/docs")
            .route(web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("location", "/docs/"))
                    .finish()
            }))
            .default_service(crate::api::not_allowed("GET, HEAD")),
    )
    .service(
        SwaggerUi::new("/docs/{_:.*}")
            .url("/openapi.json", document)
            .config(config),
    );
}
