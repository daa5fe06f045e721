//! A route of the web listener: method, path, handler and who may call it, made together so
//! they cannot disagree. The guard's rules and the router are both built from these.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;

use super::cache::Reuse;
use crate::auth::Access;
use crate::state::AppState;

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub reuse: Reuse,
    pub(super) handler: MethodRouter<AppState>,
}

impl Route {
    /// `GET` (and `HEAD`) on `path`, for callers `access` admits.
    pub fn get<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        Self::new(Method::GET, path, access, axum::routing::get(handler))
    }

    /// `POST` on `path`, for callers `access` admits.
    pub fn post<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        Self::new(Method::POST, path, access, axum::routing::post(handler))
    }

    fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            access,
            reuse: Reuse::Never,
            handler,
        }
    }

    /// Its answers may be given again while the database is unchanged ([`super::cache`]).
    pub fn reused(self) -> Self {
        Self {
            reuse: Reuse::WhileUnchanged,
            ..self
        }
    }
}
