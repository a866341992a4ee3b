//! ECR (feature `ecr`): registry credentials from GetAuthorizationToken through aws-config's
//! default chain (environment, profile, web identity/IRSA, container, IMDS), optionally via STS
//! AssumeRole with an external id, and CreateRepository on request. `AWS_ENDPOINT_URL` (and the
//! per-service `AWS_ENDPOINT_URL_ECR` / `_STS`) are honoured by aws-config itself.

use crate::ecr_host::EcrHost;
use crate::{Client, Credentials, Error};
use aws_config::BehaviorVersion;
use aws_sdk_ecr::config::{Region, SharedCredentialsProvider};
use base64::Engine as _;
use tracing::instrument::WithSubscriber;

/// The AWS SDK logs whole HTTP response bodies at TRACE (the ECR token, STS session keys), so
/// every SDK call runs with logging switched off for its duration.
fn quiet() -> tracing::subscriber::NoSubscriber {
    tracing::subscriber::NoSubscriber::default()
}

fn ecr_error(registry: &str, action: &str, message: String) -> Error {
    Error::Ecr { registry: registry.to_string(), action: action.to_string(), message: crate::auth::redact(&message) }
}

/// The error for a failed SDK call: an answer over strata's cap (from ECR itself or from STS
/// while the credentials were loaded) is said plainly, anything else with the SDK's whole context.
fn sdk_error(registry: &str, action: &str, what: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    let message = match crate::ecr_http::answer_too_large(e) {
        Some(t) => t.to_string(),
        None if is_timeout(e) => format!(
            "{} (each AWS call may take --aws-timeout per attempt, three attempts at most: check that AWS_ENDPOINT_URL and any proxy lead to AWS, or raise --aws-timeout / STRATA_AWS_TIMEOUT)",
            error_chain(e)
        ),
        None => error_chain(e),
    };
    ecr_error(registry, action, if what.is_empty() { message } else { format!("{what}: {message}") })
}

/// Whether the SDK gave up on a call for time (an attempt or the whole operation).
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("timed out") || err.to_string().contains("timeout") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The region of the STS session and of repository settings: the configured one (kaniko-ecr's
/// `PLUGIN_REGION`), else the registry host's.
fn settings_region(client: &Client, host: &EcrHost) -> Region {
    Region::new(client.opts.ecr.region.clone().unwrap_or_else(|| host.region.clone()))
}

/// The Display texts of `e` and its sources, joined. Never the SDK's Debug form
/// (`DisplayErrorContext` appends it): that holds the raw HTTP answer, and an STS answer strata
/// could not parse carries a secret key and a session token.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// How long one AWS call may take when [`crate::EcrOptions::api_timeout`] is not set.
pub const DEFAULT_AWS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Every AWS call (credential providers, STS, ECR) bounded: an attempt ends after `attempt`
/// (connecting within 10 s of it), and the SDK's three attempts after three times that, so an
/// endpoint that never answers or drips its answer cannot hold a build.
fn timeouts(attempt: Option<std::time::Duration>) -> aws_config::timeout::TimeoutConfig {
    let attempt = attempt.unwrap_or(DEFAULT_AWS_TIMEOUT).max(std::time::Duration::from_millis(100));
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(attempt.min(std::time::Duration::from_secs(10)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * 3)
        .build()
}

/// aws-config's default chain with ECR calls in `region`, every HTTP answer capped at
/// [`crate::limits::MAX_AWS_ANSWER_BYTES`] (the capped client serves the credential
/// providers, STS and ECR alike), through an assumed role when one is configured (its STS
/// session in [`settings_region`]).
async fn sdk_config(client: &Client, registry: &str, host: &EcrHost, region: Region) -> Result<aws_config::SdkConfig, Error> {
    let o = &client.opts.ecr;
    let http = crate::ecr_http::capped_client().ok_or_else(|| ecr_error(registry, "configuration", "the AWS SDK was built without an HTTPS client".into()))?;
    let base = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .use_fips(host.fips)
        .http_client(http)
        .timeout_config(timeouts(o.api_timeout))
        .load()
        .with_subscriber(quiet())
        .await;
    let Some(role) = o.assume_role.as_deref().filter(|r| !r.is_empty()) else { return Ok(base) };
    let mut b = aws_config::sts::AssumeRoleProvider::builder(role).session_name("strata").region(settings_region(client, host)).configure(&base);
    if let Some(x) = o.external_id.as_deref().filter(|x| !x.is_empty()) {
        b = b.external_id(x);
    }
    let provider = b.build().with_subscriber(quiet()).await;
    tracing::debug!(%role, "ECR: using an assumed role");
    Ok(base.into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build())
}

/// Username and password for `registry` from GetAuthorizationToken, asked in the region the
/// registry's name gives (`FROM <acct>.dkr.ecr.eu-west-1...` in a build configured for
/// us-east-1 still gets eu-west-1's token). The token's expiry is not
/// consulted (moto's is fixed in 2015): the client keeps it for the build and fetches a new one
/// once if the registry answers 401.
pub(crate) async fn credentials(client: &Client, registry: &str, host: &EcrHost) -> Result<Credentials, Error> {
    let conf = sdk_config(client, registry, host, Region::new(host.region.clone())).await?;
    let ecr = aws_sdk_ecr::Client::new(&conf);
    let out = ecr.get_authorization_token().send().with_subscriber(quiet()).await.map_err(|e| sdk_error(registry, "GetAuthorizationToken", "", &e))?;
    let token = out
        .authorization_data()
        .iter()
        .find_map(|d| d.authorization_token())
        .ok_or_else(|| ecr_error(registry, "GetAuthorizationToken", "the answer holds no authorization token".into()))?;
    crate::auth::remember_secret(token);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| ecr_error(registry, "GetAuthorizationToken", "the token is not base64".into()))?;
    let decoded = String::from_utf8(decoded).map_err(|_| ecr_error(registry, "GetAuthorizationToken", "the token is not UTF-8".into()))?;
    let (user, pass) =
        decoded.split_once(':').ok_or_else(|| ecr_error(registry, "GetAuthorizationToken", "the token does not decode to user:password".into()))?;
    crate::auth::remember_secret(pass);
    tracing::debug!(%registry, user, "ECR: got an authorization token");
    Ok(Credentials { username: user.to_string(), password: pass.to_string() })
}

/// Creates `repository` in `registry`'s account unless it exists (checked once per client).
pub(crate) async fn ensure_repository(client: &Client, registry: &str, repository: &str) -> Result<(), Error> {
    let key = format!("{registry}/{repository}");
    if client.ecr_repos_checked.lock().map(|s| s.contains(&key)).unwrap_or(false) {
        return Ok(());
    }
    let Some(host) = crate::ecr_host::parse(registry) else { return Ok(()) };
    // As kaniko-ecr: repositories are created in the configured region.
    let conf = sdk_config(client, registry, &host, settings_region(client, &host)).await?;
    let ecr = aws_sdk_ecr::Client::new(&conf);
    let described = ecr.describe_repositories().registry_id(&host.account).repository_names(repository).send().with_subscriber(quiet()).await;
    let o = &client.opts.ecr;
    let scanning = aws_sdk_ecr::types::ImageScanningConfiguration::builder().scan_on_push(o.scan_on_push).build();
    match described {
        Ok(_) if o.scan_on_push => {
            // As drone-ecr: an existing repository is made to scan on push too.
            ecr.put_image_scanning_configuration()
                .registry_id(&host.account)
                .repository_name(repository)
                .image_scanning_configuration(scanning)
                .send()
                .with_subscriber(quiet())
                .await
                .map_err(|e| sdk_error(registry, "PutImageScanningConfiguration", repository, &e))?;
        }
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_found_exception()) => {
            let mut create = ecr.create_repository().registry_id(&host.account).repository_name(repository).image_scanning_configuration(scanning);
            if let Some(mutable) = o.tags_mutable {
                create = create.image_tag_mutability(if mutable {
                    aws_sdk_ecr::types::ImageTagMutability::Mutable
                } else {
                    aws_sdk_ecr::types::ImageTagMutability::Immutable
                });
            }
            match create.send().with_subscriber(quiet()).await {
                Ok(_) => {
                    tracing::info!(%registry, %repository, scan_on_push = o.scan_on_push, tags_mutable = ?o.tags_mutable, "created ECR repository");
                    if let Some((_, policy)) = o.lifecycle_on_create.iter().find(|(r, _)| r == repository) {
                        put_policies(client, registry, repository, Some(policy), None).await?;
                    }
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_already_exists_exception()) => {}
                Err(e) => return Err(sdk_error(registry, "CreateRepository", repository, &e)),
            }
        }
        Err(e) => return Err(sdk_error(registry, "DescribeRepositories", repository, &e)),
    }
    if let Ok(mut s) = client.ecr_repos_checked.lock() {
        s.insert(key);
    }
    Ok(())
}

/// Puts a lifecycle policy and sets a repository policy (JSON texts) on `repository`, in the
/// configured region as kaniko-ecr does.
pub(crate) async fn put_policies(client: &Client, registry: &str, repository: &str, lifecycle: Option<&str>, policy: Option<&str>) -> Result<(), Error> {
    if lifecycle.is_none() && policy.is_none() {
        return Ok(());
    }
    let Some(host) = crate::ecr_host::parse(registry) else { return Ok(()) };
    let conf = sdk_config(client, registry, &host, settings_region(client, &host)).await?;
    let ecr = aws_sdk_ecr::Client::new(&conf);
    if let Some(text) = lifecycle {
        ecr.put_lifecycle_policy()
            .registry_id(&host.account)
            .repository_name(repository)
            .lifecycle_policy_text(text)
            .send()
            .with_subscriber(quiet())
            .await
            .map_err(|e| sdk_error(registry, "PutLifecyclePolicy", repository, &e))?;
        tracing::info!(%registry, %repository, "ECR lifecycle policy applied");
    }
    if let Some(text) = policy {
        ecr.set_repository_policy()
            .registry_id(&host.account)
            .repository_name(repository)
            .policy_text(text)
            .send()
            .with_subscriber(quiet())
            .await
            .map_err(|e| sdk_error(registry, "SetRepositoryPolicy", repository, &e))?;
        tracing::info!(%registry, %repository, "ECR repository policy applied");
    }
    Ok(())
}
