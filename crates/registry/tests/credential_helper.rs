//! docker `config.json` `credHelpers`: a real `docker-credential-*` program on PATH answering the
//! helper protocol, against the TLS + basic-auth docker-registry. Alone in its file (own process)
//! because it changes PATH.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_registry::{Client, ClientOptions, Platform, Reference};

#[tokio::test]
async fn cred_helper_supplies_the_password() {
    let env = require_env!("cred_helper_supplies_the_password");
    let dir = scratch(&env, "credhelper");
    let img = make_image(dir.path(), 41, &[4321], "amd64", false);
    let reference: Reference = format!("{}/{}:helper", env.tls, unique_repo("helper")).parse().unwrap();
    Client::new(env.tls_opts()).unwrap().push_image(&reference, &img.push).await.unwrap();
    // credHelpers: a real docker-credential-* program on PATH, answering the helper protocol.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-stratatest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\necho \"$server\" >> {}/helper-calls\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\n",
            dir.path().display(),
            env.user,
            env.pass
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfgdir = dir.path().join("helpers");
    std::fs::create_dir_all(&cfgdir).unwrap();
    std::fs::write(cfgdir.join("config.json"), format!(r#"{{"credHelpers":{{"{}":"stratatest"}}}}"#, env.tls)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // SAFETY: this file holds a single test, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("PATH", path) };
    let client = Client::new(ClientOptions { credentials: vec![], docker_config_dir: Some(cfgdir), ..env.tls_opts() }).unwrap();
    let pulled = client.get_image(&reference, &Platform::host()).await.unwrap();
    assert_eq!(pulled.digest, img.manifest_digest);
    let calls = std::fs::read_to_string(dir.path().join("helper-calls")).unwrap();
    assert_eq!(calls.trim(), env.tls, "the helper was asked for the registry host");

    // credsStore: the default helper for every registry without an entry of its own.
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("config.json"), r#"{"auths":{"other.example:5000":{"auth":"eDp5"}},"credsStore":"stratatest"}"#).unwrap();
    // DOCKER_CONFIG names the directory when the options do not.
    // SAFETY: as above, the only test in this process.
    unsafe { std::env::set_var("DOCKER_CONFIG", &store) };
    let client = Client::new(ClientOptions { credentials: vec![], docker_config_dir: None, ..env.tls_opts() }).unwrap();
    assert_eq!(client.get_image(&reference, &Platform::host()).await.unwrap().digest, img.manifest_digest);
    let calls = std::fs::read_to_string(dir.path().join("helper-calls")).unwrap();
    assert_eq!(calls.lines().count(), 2, "{calls}");
}
