//! TLS and mutual TLS: the real grpcurl and a Python client over TLS, a client without a
//! certificate refused, and a certificate renewed on disk served without a restart.

use std::{path::Path, process::Command, time::Duration};

use clientele::server::tls::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::{
    clients::{available, stdout_of},
    support::{desk::eventually, *},
};

/// A certificate authority of the test.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate and its key, issued by `ca` for `names`, for a server or a client.
fn issue(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str], client: bool) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, ca).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// Writes `content` to `path` as a renewal tool would: whole, then renamed into place.
fn put(path: &Path, content: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, content).expect("write");
    std::fs::rename(&staged, path).expect("rename");
}

fn client_tls(ca_pem: &str, identity: Option<(&str, &str)>) -> ClientTlsConfig {
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    match identity {
        Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
        None => config,
    }
}

async fn health_over(addr: std::net::SocketAddr, tls: ClientTlsConfig) -> Result<i32, String> {
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|error| format!("{error:?}"))?;
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .map(|response| response.into_inner().status)
        .map_err(|status| format!("{status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_serves_grpcurl_and_python_refuses_clients_without_a_certificate_and_follows_a_renewal()
 {
    let dir = tempfile::tempdir().expect("dir");
    let path = |name: &str| dir.path().join(name);
    let server_ca = authority("Clientele test server CA");
    let client_ca = authority("Clientele test client CA");
    let (server_cert, server_key) = issue(&server_ca, &["localhost", "127.0.0.1"], false);
    let (client_cert, client_key) = issue(&client_ca, &["operator"], true);
    put(&path("server.pem"), &server_cert);
    put(&path("server.key"), &server_key);
    put(&path("server-ca.pem"), &server_ca.pem());
    put(&path("client-ca.pem"), &client_ca.pem());
    put(&path("client.pem"), &client_cert);
    put(&path("client.key"), &client_key);
    let files = TlsFiles {
        cert: path("server.pem"),
        key: path("server.key"),
        client_ca: Some(path("client-ca.pem")),
    };
    let Some(server) = TestServer::start_tls(
        Backend::Sqlite,
        |config| config.tls = Some(files),
        client_tls(&server_ca.pem(), Some((&client_cert, &client_key))),
    )
    .await
    else {
        return;
    };
    // The server's own clients (over mutual TLS) work as ever.
    let group = server.group("over-tls").await;
    let address = format!("127.0.0.1:{}", server.addr.port());

    // Without a client certificate the handshake is refused; plaintext gets nowhere.
    let refused = health_over(server.addr, client_tls(&server_ca.pem(), None)).await;
    assert!(refused.is_err(), "{refused:?}");
    let plaintext = Channel::from_shared(format!("http://{}", server.addr))
        .expect("uri")
        .connect_lazy();
    tonic_health::pb::health_client::HealthClient::new(plaintext)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect_err("plaintext is not served");

    if available("grpcurl", &["-version"]) {
        let authorization = format!("authorization: Bearer {}", server.admin_secret);
        let tls_args = |with_identity: bool| {
            let mut args = vec![
                "-cacert".to_owned(),
                path("server-ca.pem").display().to_string(),
            ];
            if with_identity {
                args.extend([
                    "-cert".to_owned(),
                    path("client.pem").display().to_string(),
                    "-key".to_owned(),
                    path("client.key").display().to_string(),
                ]);
            }
            args
        };
        let listed = Command::new("grpcurl")
            .args(tls_args(true))
            .args([
                "-H",
                &authorization,
                "-d",
                &format!(r#"{{"id": "{}"}}"#, group.id),
            ])
            .args([address.as_str(), "clientele.v1.GroupService/GetGroup"])
            .output()
            .expect("grpcurl");
        assert!(stdout_of(&listed).contains("over-tls"));
        let without = Command::new("grpcurl")
            .args(tls_args(false))
            .args(["-H", &authorization, address.as_str(), "list"])
            .output()
            .expect("grpcurl");
        assert!(
            !without.status.success(),
            "a client without a certificate was served"
        );
    }

    if available("python3", &["-c", "import grpc"]) {
        let script = r#"
import sys, grpc
directory, address = sys.argv[1], sys.argv[2]
read = lambda name: open(f"{directory}/{name}", "rb").read()
def check(credentials):
    with grpc.secure_channel(address, credentials, options=(("grpc.ssl_target_name_override", "localhost"),)) as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda m: m, response_deserializer=lambda m: m)
        return call(b"", timeout=5)
assert check(grpc.ssl_channel_credentials(read("server-ca.pem"), read("client.key"), read("client.pem"))) == b"\x08\x01"
try:
    check(grpc.ssl_channel_credentials(read("server-ca.pem")))
except grpc.RpcError as error:
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
else:
    raise AssertionError("served without a client certificate")
print("python over TLS: ok")
"#;
        let output = Command::new("python3")
            .args(["-c", script, &dir.path().display().to_string(), &address])
            .output()
            .expect("python3");
        assert!(stdout_of(&output).contains("python over TLS: ok"));
    }

    // A renewal under a new CA: new connections get the new certificate, without a restart.
    let renewed_ca = authority("Clientele renewed server CA");
    let (renewed_cert, renewed_key) = issue(&renewed_ca, &["localhost", "127.0.0.1"], false);
    put(&path("server.key"), &renewed_key);
    put(&path("server.pem"), &renewed_cert);
    let identity = Some((client_cert.as_str(), client_key.as_str()));
    eventually("the renewed certificate is served", || async {
        health_over(server.addr, client_tls(&renewed_ca.pem(), identity)).await == Ok(1)
    })
    .await;
    let old = health_over(server.addr, client_tls(&server_ca.pem(), identity)).await;
    assert!(old.is_err(), "the old certificate is still served: {old:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_load_stops_the_start_before_the_database_is_touched() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = authority("Clientele test CA");
    let (cert, _) = issue(&ca, &["localhost"], false);
    let (_, other_key) = issue(&ca, &["localhost"], false);
    put(&dir.path().join("server.pem"), &cert);
    put(&dir.path().join("server.key"), &other_key);
    let database = dir.path().join("never.db");
    let mut config = clientele::Config::new(format!("sqlite://{}?mode=rwc", database.display()));
    config.tls = Some(TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let outcome = clientele::run(config, listener, std::future::pending()).await;
    let error = outcome.expect_err("a key of another certificate");
    assert!(error.to_string().contains("do not go together"), "{error}");
    assert!(!database.exists(), "the database was created");
}
