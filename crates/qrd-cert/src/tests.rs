use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    std::fs::read(format!("{path}{name}")).unwrap()
}

fn leaf(name: &str) -> CertInfo {
    parse_certs(&fixture(name)).unwrap().remove(0)
}

#[test]
fn a_qlik_style_certificate_reads_with_crlf_and_its_pkcs1_key_matches() {
    let cert = leaf("server.pem");
    assert_eq!(parse_der(cert.der()).unwrap(), cert);
    assert_eq!(cert.subject, "CN=qlik-central.example.com");
    assert_eq!(cert.issuer, "CN=Qlik-like test root CA");
    assert_eq!(cert.sans, ["DNS:qlik-central.example.com", "IP:10.0.4.11"]);
    assert_eq!(cert.key_type, "RSA 2048");
    assert!(!cert.is_ca && !cert.self_signed);
    check_key_matches(&cert, &parse_key(&fixture("server_key.pem")).unwrap()).unwrap();
    check_key_matches(&cert, &parse_key(&fixture("server_key_pkcs8.pem")).unwrap()).unwrap();
    let ca = leaf("ca.pem");
    assert!(ca.is_ca && ca.self_signed);
    assert!(cert.signed_by(&ca));
    assert!(!cert.signed_by(&leaf("ec_cert.pem")));
}

#[test]
fn a_foreign_key_is_a_mismatch_and_says_nothing_of_the_key() {
    let cert = leaf("server.pem");
    let err = check_key_matches(&cert, &parse_key(&fixture("other_key.pem")).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "the private key does not match the certificate's public key (RSA 2048)");
    let err = check_key_matches(&cert, &parse_key(&fixture("ec_key.pem")).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "the private key is an EC key but the certificate's key is RSA 2048");
    let key = parse_key(&fixture("server_key.pem")).unwrap();
    assert_eq!(format!("{key:?}"), "PrivateKey(Pkcs1, ***)");
}

#[test]
fn ec_keys_match_by_their_public_point() {
    let cert = leaf("ec_cert.pem");
    assert_eq!(cert.key_type, "EC P-256");
    assert!(cert.self_signed);
    check_key_matches(&cert, &parse_key(&fixture("ec_key.pem")).unwrap()).unwrap();
    let err = check_key_matches(&cert, &parse_key(&fixture("server_key.pem")).unwrap()).unwrap_err();
    assert!(matches!(err, KeyMismatch::OtherType { .. }), "{err}");
    // A wildcard covers one label.
    assert!(cert.covers_host("db.lab.example") && cert.covers_host("DB.LAB.EXAMPLE"));
    assert!(!cert.covers_host("lab.example") && !cert.covers_host("a.b.lab.example"));
}

/// Every key format PostgreSQL (OpenSSL) reads, each against the certificate it belongs to.
#[test]
fn each_key_format_matches_its_certificate() {
    let rsa = leaf("server.pem");
    let ec = leaf("ec_cert.pem");
    for (cert, key, format) in [
        (&rsa, "server_key.pem", KeyFormat::Pkcs1),
        (&rsa, "server_key_pkcs8.pem", KeyFormat::Pkcs8),
        (&ec, "ec_key.pem", KeyFormat::Sec1),
        (&ec, "ec_key_pkcs8.pem", KeyFormat::Pkcs8),
        // Without the optional public point the key's point is derived (by ring) and compared.
        (&ec, "ec_key_no_public.pem", KeyFormat::Sec1),
        // …and inside PKCS #8 the inner SEC 1 key names no curve: the PKCS #8 algorithm parameters do.
        (&ec, "ec_key_pkcs8_no_public.pem", KeyFormat::Pkcs8),
    ] {
        let parsed = parse_key(&fixture(key)).unwrap();
        assert_eq!(parsed.format, format, "{key}");
        check_key_matches(cert, &parsed).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    // A three-prime RSA key (otherPrimeInfos), which OpenSSL also loads.
    check_key_matches(&leaf("multiprime_cert.pem"), &parse_key(&fixture("multiprime_key.pem")).unwrap()).unwrap();
}

#[test]
fn an_ec_key_without_its_point_is_still_told_apart() {
    let ec = leaf("ec_cert.pem");
    let err = check_key_matches(&ec, &parse_key(&fixture("other_ec_key_no_public.pem")).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "the private key does not match the certificate's public key (EC P-256)");
    // A curve whose point ring cannot derive is named, with the way out.
    let err = check_key_matches(&ec, &parse_key(&fixture("p521_key_no_public.pem")).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported private key (an EC key on curve 1.3.132.0.35 without its public point; `openssl ec -in KEY -out \
         NEW` writes it back)"
    );
    let err =
        check_key_matches(&leaf("server.pem"), &parse_key(&fixture("ec_key_no_public.pem")).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "the private key is an EC key but the certificate's key is RSA 2048");
}

#[test]
fn ed25519_pkcs8_keys_match_and_other_algorithms_are_named() {
    use rcgen::{CertificateParams, KeyPair, PKCS_ED25519};
    let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let params = CertificateParams::new(vec!["ed.example".to_owned()]).unwrap();
    let cert = parse_certs(params.self_signed(&key).unwrap().pem().as_bytes()).unwrap().remove(0);
    assert_eq!(cert.key_type, "Ed25519");
    check_key_matches(&cert, &parse_key(key.serialize_pem().as_bytes()).unwrap()).unwrap();
    let other = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let err = check_key_matches(&cert, &parse_key(other.serialize_pem().as_bytes()).unwrap()).unwrap_err();
    assert!(matches!(err, KeyMismatch::Different { .. }), "{err}");
    let err = check_key_matches(&leaf("server.pem"), &parse_key(key.serialize_pem().as_bytes()).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "the private key is an Ed25519 key but the certificate's key is RSA 2048");
    let err = check_key_matches(&cert, &parse_key(&fixture("server_key.pem")).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "the private key is an RSA key but the certificate's key is Ed25519");
    // X25519 is a key-agreement key: no TLS server certificate can hold it.
    let err = check_key_matches(&cert, &parse_key(&fixture("x25519_key.pem")).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "unsupported private key (algorithm 1.3.101.110)");
}

/// A body that is not the structure its label promises, or is cut short, is an error naming the format,
/// never a panic and never a match.
#[test]
fn damaged_keys_are_errors_naming_the_format() {
    let rsa = leaf("server.pem");
    let ec = leaf("ec_cert.pem");
    let pem_of = |label: &str, der: &[u8]| pem::encode(&pem::Pem::new(label, der));
    let block = |name: &str| pem::parse(fixture(name)).unwrap().into_contents();
    let cases = [
        (&rsa, "RSA PRIVATE KEY", block("server_key.pem"), "not a PKCS #1 RSA key"),
        (&ec, "EC PRIVATE KEY", block("ec_key.pem"), "not a SEC 1 EC key"),
        (&rsa, "PRIVATE KEY", block("server_key_pkcs8.pem"), "not a PKCS #8 key"),
    ];
    for (cert, label, der, what) in cases {
        for cut in [0, 1, 2, 5, der.len() / 2, der.len() - 1] {
            let key = parse_key(pem_of(label, &der[..cut]).as_bytes()).unwrap();
            let err = check_key_matches(cert, &key).unwrap_err();
            assert_eq!(err, KeyMismatch::Unreadable(CertError::BadKey(what.to_owned())), "{label} cut at {cut}");
        }
    }
}

#[test]
fn encrypted_keys_and_wrong_files_are_refused_by_name() {
    assert_eq!(parse_key(&fixture("encrypted_key.pem")).unwrap_err(), CertError::EncryptedKey);
    assert_eq!(parse_key(&fixture("server.pem")).unwrap_err(), CertError::NoKey);
    assert_eq!(
        parse_certs(&fixture("server_key.pem")).unwrap_err(),
        CertError::NotACertificate { label: "RSA PRIVATE KEY".into() }
    );
    assert_eq!(parse_certs(b"hello\n").unwrap_err(), CertError::NoCertificate);
    let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(parse_certs(garbage).unwrap_err(), CertError::X509 { index: 1, .. }));
    let pkcs8_enc = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(parse_key(pkcs8_enc).unwrap_err(), CertError::EncryptedKey);
}

#[test]
fn a_chain_file_lists_every_certificate_leaf_first() {
    let mut chain = fixture("server.pem");
    chain.extend(fixture("ca.pem"));
    let certs = parse_certs(&chain).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0].subject, "CN=qlik-central.example.com");
    assert!(certs[1].is_ca);
}

#[test]
fn lab_pki_names_the_hosts_and_its_ca_signed_it() {
    let hosts = vec!["db1.example.com".to_owned(), "10.0.4.11".to_owned(), "::1".to_owned()];
    let pki = generate_lab(&hosts, 365).unwrap();
    let cert = parse_certs(pki.cert_pem.as_bytes()).unwrap().remove(0);
    let ca = parse_certs(pki.ca_pem.as_bytes()).unwrap().remove(0);
    assert_eq!(cert.sans, ["DNS:db1.example.com", "IP:10.0.4.11", "IP:::1"]);
    assert!(cert.subject.contains("CN=db1.example.com"), "{}", cert.subject);
    assert!(ca.is_ca && ca.self_signed && !cert.is_ca);
    assert!(cert.signed_by(&ca));
    check_key_matches(&cert, &parse_key(pki.key_pem().as_bytes()).unwrap()).unwrap();
    assert!(cert.covers_host("10.0.4.11") && cert.covers_host("[::1]") && cert.covers_host("DB1.example.com"));
    assert!(!cert.covers_host("10.0.4.12"));
    let now = now();
    assert_eq!(cert.days_left(now), 365);
    assert!(!cert.expired(now) && !cert.not_yet_valid(now));
    assert!(!format!("{pki:?}").contains("PRIVATE KEY"), "Debug must not print the key");
}

#[test]
fn expiry_arithmetic() {
    use rcgen::{CertificateParams, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["old.example".to_owned()]).unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let cert = parse_certs(params.self_signed(&key).unwrap().pem().as_bytes()).unwrap().remove(0);
    assert_eq!((cert.not_before, cert.not_after), (1_600_000_000, 1_700_000_000));
    assert!(cert.expired(1_700_000_001) && !cert.expired(1_700_000_000));
    assert!(cert.not_yet_valid(1_599_999_999));
    assert_eq!(cert.days_left(1_700_000_000 - 86_400 * 29 - 1), 29);
    assert_eq!(cert.days_left(1_700_000_001), -1);
    assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
}
