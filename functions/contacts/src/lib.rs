//! Contact management: contact lists, contacts, search through index items, bulk
//! operations, CSV/XLSX imports through S3, export, do-not-call lists. JSON in camelCase
//! and errors in the contact guide's form on these routes.

use axum::Router;
use axum::extract::Extension;
use axum::routing::{delete, get, post};
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes};

pub mod bulk;
pub mod config;
pub mod contacts;
pub mod dnc;
pub mod export;
pub mod guide_error;
mod handlers;
pub mod import;
pub mod input;
pub mod keys;
pub mod lists;
pub mod model;
pub mod service;
pub mod store;

pub use service::{Contacts, from_env};

/// The function's name, as in `/health/contacts`.
pub const SERVICE: &str = "contacts";

/// The API routes (no health, no middleware), served by `contacts`.
pub fn routes(contacts: Contacts) -> Router<AppState> {
    use handlers as h;
    Router::new()
        .route(
            "/v1/contact-lists",
            get(h::lists_index).post(h::lists_create),
        )
        .route(
            "/v1/contact-lists/{list_id}",
            get(h::lists_show)
                .put(h::lists_update)
                .delete(h::lists_delete),
        )
        .route(
            "/v1/contact-lists/{list_id}/contacts",
            post(h::members_add).delete(h::members_remove),
        )
        .route("/v1/contact-lists/{list_id}/export", get(h::lists_export))
        .route(
            "/v1/contacts",
            get(h::contacts_index).post(h::contacts_create),
        )
        .route("/v1/contacts/bulk", post(h::contacts_bulk))
        .route(
            "/v1/contacts/{contact_id}",
            get(h::contacts_show)
                .put(h::contacts_replace)
                .patch(h::contacts_patch)
                .delete(h::contacts_delete),
        )
        .route(
            "/v1/uploads/contacts",
            get(h::uploads_index).post(h::uploads_create),
        )
        .route("/v1/uploads/contacts/{job_id}", get(h::uploads_show))
        .route(
            "/v1/uploads/contacts/{job_id}/start",
            post(h::uploads_start),
        )
        .route("/v1/dnc-lists", get(h::dnc_index).post(h::dnc_create))
        .route("/v1/dnc-lists/{dnc_id}", get(h::dnc_show))
        .route(
            "/v1/dnc-lists/{dnc_id}/entries",
            get(h::dnc_entries).post(h::dnc_add),
        )
        .route(
            "/v1/dnc-lists/{dnc_id}/entries/{phone}",
            delete(h::dnc_remove),
        )
        .route("/v1/dnc/scrub", post(h::dnc_scrub))
        .route("/v1/dnc/check", get(h::dnc_check))
        .route("/api/contacts/lists", get(h::app_lists))
        .route(
            "/api/contacts/lists/{list_id}/contacts",
            get(h::app_list_contacts),
        )
        .route("/api/contacts/search", get(h::app_search))
        // Text refusals of the router and extractors first take the API's JSON form, which
        // the guide layer then rewrites.
        .layer(axum::middleware::from_fn(vocelio_shared::http::json_errors))
        .layer(axum::middleware::from_fn(guide_error::guide_errors))
        .layer(Extension(contacts))
}

/// The finished service, as Lambda and `cargo lambda watch` run it.
pub fn router(state: AppState, contacts: Contacts) -> Router {
    finish(
        routes(contacts).merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}
