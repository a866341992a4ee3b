//! The HTTP client of every AWS call strata makes (feature `ecr`): ECR, STS AssumeRole and the
//! default credential chain's own calls (web identity, SSO, container, IMDS) all go through the
//! SDK's default HTTPS client wrapped here, so that each answer's body is read in full by this
//! wrapper and refused past [`MAX_AWS_ANSWER_BYTES`] (a Content-Length over it before reading,
//! else once more than it has arrived). The SDK would otherwise buffer a body of any size.

use crate::limits::MAX_AWS_ANSWER_BYTES;
use aws_config::BehaviorVersion;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_types::body::SdkBody;
use http_body::Body as _;
use std::pin::Pin;

/// An AWS answer whose body is over [`MAX_AWS_ANSWER_BYTES`]; found in an SDK error's source chain.
#[derive(Debug, thiserror::Error)]
#[error(
    "the answer of {endpoint} to {operation} is larger than strata's limit of {limit} bytes for an AWS answer ({got}); refused (check that AWS_ENDPOINT_URL and any proxy lead to AWS)"
)]
pub(crate) struct AnswerTooLarge {
    /// `scheme://host:port/path` of the request (no query).
    pub endpoint: String,
    /// The API operation (`GetAuthorizationToken`, `AssumeRole`), else the method and path.
    pub operation: String,
    /// The cap.
    pub limit: u64,
    /// What arrived (`a Content-Length of N bytes`, `more than N bytes`).
    pub got: String,
}

/// The SDK's default HTTPS client for `BehaviorVersion::latest()` with every answer capped at
/// [`MAX_AWS_ANSWER_BYTES`]; `None` if the SDK was built without a default client.
pub(crate) fn capped_client() -> Option<SharedHttpClient> {
    let plugin = aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(BehaviorVersion::latest())?;
    let inner = plugin.runtime_components(&RuntimeComponentsBuilder::new("strata-ecr")).http_client()?;
    Some(SharedHttpClient::new(CappedClient { inner, cap: MAX_AWS_ANSWER_BYTES }))
}

#[derive(Debug)]
struct CappedClient {
    inner: SharedHttpClient,
    cap: u64,
}

impl HttpClient for CappedClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(CappedConnector { inner: self.inner.http_connector(settings, components), cap: self.cap })
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct CappedConnector {
    inner: SharedHttpConnector,
    cap: u64,
}

/// The operation a request calls: ECR's JSON protocol names it in `X-Amz-Target`
/// (`AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken`), STS's query protocol in the
/// form body's `Action=`; else the method and path.
fn operation(req: &HttpRequest) -> String {
    if let Some(t) = req.headers().get("x-amz-target") {
        return t.rsplit('.').next().unwrap_or(t).to_string();
    }
    let action = req
        .body()
        .bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|form| form.split('&').find_map(|kv| kv.strip_prefix("Action=")).map(str::to_string));
    action.unwrap_or_else(|| format!("{} {}", req.method(), path_of(req.uri())))
}

/// `uri` without its query (a presigned URL's signature stays out of messages).
fn path_of(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or(uri)
}

impl HttpConnector for CappedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (endpoint, operation, cap) = (path_of(request.uri()).to_string(), operation(&request), self.cap);
        let too_large = move |got: String| {
            ConnectorError::other(Box::new(AnswerTooLarge { endpoint: endpoint.clone(), operation: operation.clone(), limit: cap, got }), None)
        };
        let answer = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let mut resp = answer.await?;
            let declared = resp.headers().get("content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(len) = declared.filter(|&l| l > cap) {
                return Err(too_large(format!("a Content-Length of {len} bytes")));
            }
            let mut body = resp.take_body();
            let mut buf = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
            while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                let Ok(data) = frame.map_err(ConnectorError::io)?.into_data() else { continue };
                if buf.len() as u64 + data.len() as u64 > cap {
                    return Err(too_large(format!("more than {cap} bytes")));
                }
                buf.extend_from_slice(&data);
            }
            *resp.body_mut() = SdkBody::from(buf);
            Ok(resp)
        })
    }
}

/// The [`AnswerTooLarge`] somewhere in `e`'s source chain.
pub(crate) fn answer_too_large<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a AnswerTooLarge> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<AnswerTooLarge>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}
