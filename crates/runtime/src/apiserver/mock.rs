//! A scripted API server behind a real `kube::Client`, for unit tests of the tasks that talk
//! to the API (as kube-rs's controller-rs does with tower-test): each step takes the next
//! request, checks its method, path and query, and answers with a status and a JSON body.

use std::collections::BTreeSet;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::Value;

/// How long a step waits for the request it expects, so that a missing request fails the
/// test instead of hanging it.
const WAIT_FOR_REQUEST: std::time::Duration = std::time::Duration::from_secs(10);

/// The answer of an API server that refuses a request with `status`: a `Status` object.
fn failure(status: StatusCode) -> Value {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": status.as_u16(),
        "reason": status.canonical_reason(),
    })
}

/// The server side of a mocked client.
pub struct MockApi {
    handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
}

/// A client whose every request goes to the returned [`MockApi`].
pub fn mock_client() -> (Client, MockApi) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), MockApi { handle })
}

/// One request as the mock server received it.
#[derive(Debug)]
pub struct Received {
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// The body as JSON (`Null` when empty).
    pub body: Value,
}

impl MockApi {
    /// Takes the next request, asserts it is `method` on `path` with exactly the query
    /// parameters `query` (in any order), answers `status` with `response`, and returns it.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        query: &[&str],
        status: StatusCode,
        response: Value,
    ) -> Received {
        let next = tokio::time::timeout(WAIT_FOR_REQUEST, self.handle.next_request()).await;
        let (request, respond) = next
            .unwrap_or_else(|_| {
                panic!("no request within {WAIT_FOR_REQUEST:?}; expected {method} {path}")
            })
            .unwrap_or_else(|| panic!("the client is gone; expected {method} {path}"));
        assert_eq!(request.method(), method, "{}", request.uri());
        assert_eq!(request.uri().path(), path);
        let got: BTreeSet<&str> = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .collect();
        let want: BTreeSet<&str> = query.iter().copied().collect();
        assert_eq!(got, want, "query of {method} {path}");
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("the request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON request body")
        };
        let answer = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&response).expect("JSON")))
            .expect("a response");
        respond.send_response(answer);
        Received { content_type, body }
    }

    /// Takes the next request, asserts it as [`expect`](Self::expect) does, and refuses it
    /// with `status` (a `Status` object, as the API server answers a failure).
    pub async fn refuse(
        &mut self,
        method: Method,
        path: &str,
        query: &[&str],
        status: StatusCode,
    ) -> Received {
        self.expect(method, path, query, status, failure(status))
            .await
    }

    /// Takes the next request, asserts it is a forced server-side apply (PATCH, apply content
    /// type) by `field_manager` on `path`, answers 200 with `response`, and returns the
    /// applied body.
    pub async fn expect_apply(
        &mut self,
        path: &str,
        field_manager: &str,
        response: Value,
    ) -> Value {
        let manager = format!("fieldManager={field_manager}");
        let got = self
            .expect(
                Method::PATCH,
                path,
                &[&manager, "force=true"],
                StatusCode::OK,
                response,
            )
            .await;
        assert_eq!(
            got.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "server-side apply of {path}"
        );
        got.body
    }

    /// Asserts that no further request comes, once every client of this server is dropped.
    pub async fn expect_no_more(mut self) {
        if let Some((request, _)) = self.handle.next_request().await {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}
