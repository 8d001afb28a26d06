//! `rediss://` URLs: TLS through rustls, with a private CA and client certificates.
//!
//! The certificates are made for each run with the `openssl` command-line tool, and the
//! test starts its own TLS-enabled `redis-server`.

#![cfg(feature = "tls")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use hodor_core::{Contract, Error};
use hodor_redis as _;
use serde_json::json;

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn make_certificates(dir: &Path) -> bool {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ok = |args: &[&str]| openssl(dir, args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .is_ok()
        && std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").is_ok()
        && ok(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=hodor test CA",
            ],
        ]
        .concat())
        && ["server", "client"].iter().all(|who| {
            let (key, csr, crt, ext) = (
                format!("{who}.key"),
                format!("{who}.csr"),
                format!("{who}.crt"),
                format!("{who}.ext"),
            );
            let subject = format!("/CN=hodor test {who}");
            ok(&[
                &["req"][..],
                &ec,
                &["-keyout", &key, "-out", &csr, "-subj", &subject],
            ]
            .concat())
                && ok(&[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ])
        })
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(support::unique("tls").replace('/', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn tls_with_a_private_ca_and_client_certificates() {
    let test = "tls_with_a_private_ca_and_client_certificates";
    let dir = temp_dir();
    if !make_certificates(&dir) {
        support::skip(test, "the openssl command could not make test certificates");
        return;
    }
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let tls_port = support::free_port();
    let Some(server) = support::Server::start_with(&[
        "--tls-port".into(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        path("server.crt"),
        "--tls-key-file".into(),
        path("server.key"),
        "--tls-ca-cert-file".into(),
        path("ca.crt"),
        "--tls-auth-clients".into(),
        "yes".into(),
    ]) else {
        support::skip(
            test,
            "a TLS-enabled redis-server could not be started from PATH",
        );
        return;
    };
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    let open =
        |config: serde_json::Value| Contract::new("redis", &support::unique("tls"), Some(config));

    // Trusting the private CA and presenting a client certificate: it works.
    let c = open(json!({
        "url": url,
        "tls_ca_file": path("ca.crt"),
        "tls_cert_file": path("client.crt"),
        "tls_key_file": path("client.key"),
    }))
    .unwrap();
    c.set("secret", "over tls", None).unwrap();
    assert_eq!(c.get("secret").unwrap(), "over tls");
    assert_eq!(c.list("").unwrap(), ["secret"]);

    // The server's certificate is not trusted by the system's roots.
    let untrusted = open(json!({
        "url": url,
        "tls_cert_file": path("client.crt"),
        "tls_key_file": path("client.key"),
    }));
    assert!(
        matches!(untrusted, Err(Error::Backend { .. })),
        "{untrusted:?}"
    );

    // The server demands a client certificate.
    let anonymous = open(json!({"url": url, "tls_ca_file": path("ca.crt")}));
    assert!(
        matches!(anonymous, Err(Error::Backend { .. })),
        "{anonymous:?}"
    );

    // Plain text to the TLS port is not mistaken for a server.
    let plain = open(
        json!({"url": format!("redis://127.0.0.1:{tls_port}/0"), "timeout_ms": 500, "connect_timeout_ms": 500}),
    );
    assert!(matches!(plain, Err(Error::Backend { .. })), "{plain:?}");

    // A missing certificate file is a config error naming the field.
    match open(json!({"url": url, "tls_ca_file": path("nope.crt")})) {
        Err(Error::InvalidConfig { field, .. }) => {
            assert_eq!(field.as_deref(), Some("tls_ca_file"))
        }
        other => panic!("{other:?}"),
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
