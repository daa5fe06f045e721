//! A [`TestNester`]'s users and web requests: users added as `nester user add` does, the
//! real sign-in form, requests with a session (and its CSRF token), anonymous ones, and ones
//! with an `Authorization` header.

use hyper::{Method, StatusCode};
use nester::auth::secret;
use nester::auth::session::SESSION_COOKIE;
use nester::db::{NewSession, Role, Stage};

use crate::client::{Response, WebSession, cookie_in, csrf_in, form_body, https};
use crate::harness::TestNester;

impl TestNester {
    /// Adds a user with a generated password; returns name and password.
    pub async fn add_user(&self, name: &str, role: Role) -> (String, String) {
        let password = nester::auth::credentials::generate_password().unwrap();
        let hash = nester::auth::credentials::hash_password(password.clone())
            .await
            .unwrap();
        let added = self
            .db()
            .add_user(nester::db::audit::Actor::cli(), name.into(), role, hash)
            .await
            .unwrap();
        assert_eq!(added, nester::db::UserChange::Done);
        (name.to_string(), password)
    }

    pub async fn user_id(&self, name: &str) -> i64 {
        self.db().user_id(name.into()).await.unwrap().unwrap()
    }

    /// Signs in through the real form (no second factor); `Err` with the refusal otherwise.
    pub async fn login(&self, username: &str, password: &str) -> Result<WebSession, Response> {
        let response = self.submit_login(username, password).await;
        if response.status != StatusCode::SEE_OTHER || response.header("location") != "/" {
            return Err(response);
        }
        Ok(self.session_from(&response).await)
    }

    /// The sign-in form as a browser sends it: its token cookie and field, same origin.
    pub async fn submit_login(&self, username: &str, password: &str) -> Response {
        let form = self.anonymous(Method::GET, "/login", &[], Vec::new()).await;
        let token = cookie_in(&form, "__Host-seahawks-login").expect("the form sets its token");
        assert_eq!(csrf_in(&form.body), token);
        let body = form_body(&[
            ("username", username),
            ("password", password),
            ("csrf", &token),
        ]);
        let cookie = format!("__Host-seahawks-login={token}");
        self.anonymous(
            Method::POST,
            "/login",
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "https://127.0.0.1"),
                ("sec-fetch-site", "same-origin"),
            ],
            body.into_bytes(),
        )
        .await
    }

    /// The session a sign-in response started, with the CSRF token its pages carry.
    pub async fn session_from(&self, response: &Response) -> WebSession {
        let token = cookie_in(response, SESSION_COOKIE).expect("a session cookie");
        let mut session = WebSession {
            cookie: format!("{SESSION_COOKIE}={token}"),
            csrf: String::new(),
        };
        let next = response.header("location").to_string();
        let page = self
            .as_session(&session, Method::GET, &next, &[], Vec::new())
            .await;
        session.csrf = csrf_in(&page.body);
        session
    }

    /// A request with `session`'s cookie; for other methods than GET, also its CSRF token in
    /// the form, from this site.
    pub async fn as_session(
        &self,
        session: &WebSession,
        method: Method,
        path: &str,
        fields: &[(&str, &str)],
        extra: Vec<(&str, &str)>,
    ) -> Response {
        let mut headers = vec![("cookie", session.cookie.as_str())];
        let mut body = Vec::new();
        if method != Method::GET {
            let mut all = fields.to_vec();
            all.push(("csrf", &session.csrf));
            body = form_body(&all).into_bytes();
            headers.push(("content-type", "application/x-www-form-urlencoded"));
            headers.push(("origin", "https://127.0.0.1"));
            headers.push(("sec-fetch-site", "same-origin"));
        }
        headers.extend(extra);
        self.anonymous(method, path, &headers, body).await
    }

    /// A request with exactly these headers and body, no credentials added.
    pub async fn anonymous(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        https(self.web, &self.ca, None, method, path, headers, body)
            .await
            .unwrap()
    }

    /// A GET with this `Authorization` header and nothing else.
    pub async fn get_authorized(&self, path: &str, authorization: &str) -> Response {
        self.anonymous(
            Method::GET,
            path,
            &[("authorization", authorization)],
            Vec::new(),
        )
        .await
    }
}

/// A session straight in the database (the sign-in form has its own tests).
pub async fn session_for(nester: &TestNester, user_id: i64, stage: Stage) -> WebSession {
    let token = secret::token().unwrap();
    let csrf = secret::token().unwrap();
    nester
        .db()
        .create_session(NewSession {
            token_hash: secret::sha256(&token),
            user_id,
            stage,
            csrf_token: csrf.clone(),
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            now_ms: nester.clock().now_ms(),
        })
        .await
        .unwrap();
    WebSession {
        cookie: format!("__Host-seahawks-session={token}"),
        csrf,
    }
}
