//! Trailing dots and spaces in path segments. IIS strips them, so
//! `/v1/customers./{id}` is `/v1/customers/{id}` to the upstream while no
//! route or rule of the gateway sees a `customers` segment there. Such a
//! segment is refused on every route; a dot or space inside a segment is
//! not.

use crate::support::{TestEnv, assert_rejected};

#[tokio::test]
async fn segments_ending_with_a_dot_or_a_space_are_refused() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    for path in [
        "/v1/customers./x",
        "/v1/customers%20/x",
        "/v1./customers",
        "/v1/x.",
        "/v1/x%20",
        "/v1/customers.../x",
        "/v1/customers.%20/x",
        "/v1/customers%20./x",
        "/v1/customers.;a=b/x",
        "/v1/customers;a=b./x",
        "/v1/customers./x?size=10",
        "/V1./CUSTOMERS",
    ] {
        let rsp = env.get(path, Some(&token)).await;
        assert_eq!(rsp.status(), 400, "{path}");
        assert_rejected(rsp, 400, "bad_request").await;
        assert_eq!(env.upstream.hits(), 0, "{path}: the upstream was reached");
    }
}

#[tokio::test]
async fn dots_and_spaces_inside_segments_are_forwarded() {
    let env = TestEnv::setup().start().await;
    let token = env.idp.delegated().mint();
    for path in ["/v1.0/me", "/v1/a.b", "/v1/a%20b", "/v1/.well-known/x", "/v1/customers/", "/v1/a.b?x=y."] {
        let before = env.upstream.hits();
        let rsp = env.get(path, Some(&token)).await;
        assert_eq!(rsp.status(), 200, "{path}");
        assert_eq!(env.upstream.hits(), before + 1, "{path}");
        assert_eq!(env.upstream.last().path_and_query, path);
    }
}
