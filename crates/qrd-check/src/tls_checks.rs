//! TLS checks: the server certificate (readable, matches its key, not expired or about to) and the minimum
//! protocol version. Both speak only when the server has `ssl = on`; `server.ssl` already says when not.

use qrd_cert::WARN_DAYS;
use qrd_pg::tlsinfo::{CertState, TlsInfo};

use crate::{Context, Finding};

const CERT_ID: &str = "server.ssl_certificate";
const MIN_ID: &str = "server.ssl_min_protocol_version";

fn tls_on<'a>(ctx: &Context<'a>) -> Option<&'a TlsInfo> {
    ctx.inventory.tls.as_ref().filter(|t| t.ssl && ctx.inventory.ssl)
}

pub(crate) fn certificate(ctx: &Context<'_>) -> Vec<Finding> {
    let Some(tls) = tls_on(ctx) else { return Vec::new() };
    vec![certificate_at(tls, qrd_cert::now())]
}

fn certificate_at(tls: &TlsInfo, now: i64) -> Finding {
    let file = &tls.cert_file;
    let renew = "install a renewed certificate with `qrd ssl enable --cert FILE --key FILE` (for Qlik: the exported \
                 server.pem and server_key.pem)";
    let certs = match &tls.certificate {
        CertState::NotRead => {
            return Finding::skip(
                CERT_ID,
                format!("the certificate {file} was not read: reading it through the server needs a superuser"),
                "run qrd check as a superuser (e.g. -U postgres), or `qrd ssl status` on the server's machine",
            );
        }
        CertState::Unreadable { reason } => {
            return Finding::fail(
                CERT_ID,
                format!("ssl = on but the server cannot read its certificate {file}: {reason}"),
                format!("put the certificate where ssl_cert_file points, or {renew}"),
            );
        }
        CertState::Invalid { reason } => {
            return Finding::fail(CERT_ID, format!("the certificate {file} is not usable: {reason}"), renew);
        }
        CertState::Parsed { certs } => certs,
    };
    let Some(leaf) = certs.first() else {
        return Finding::fail(CERT_ID, format!("{file} holds no certificate"), renew);
    };
    let days = leaf.days_left(now);
    let until = qrd_cert::format_utc(leaf.not_after);
    let who = format!("{} ({}), issued by {}", leaf.subject, leaf.sans.join(", "), leaf.issuer);
    if leaf.expired(now) {
        return Finding::fail(
            CERT_ID,
            format!("the certificate {who} expired on {until}: clients that verify it refuse to connect"),
            renew,
        );
    }
    if leaf.not_yet_valid(now) {
        return Finding::fail(
            CERT_ID,
            format!("the certificate {who} is not valid before {}", qrd_cert::format_utc(leaf.not_before)),
            "check this machine's clock and the server's, or install a certificate valid now",
        );
    }
    let mut key_note = " (key not checked: the key file is not readable from here)".to_owned();
    if let Some(local) = &tls.local {
        match &local.key_matches {
            Some(Err(why)) => {
                return Finding::fail(
                    CERT_ID,
                    format!("{}: {why}", local.key_path.display()),
                    "install the key that belongs to the certificate (qrd ssl enable checks the pair before installing)",
                );
            }
            Some(Ok(())) => key_note = ", key matches".to_owned(),
            None => {}
        }
        if let Some(mode) = local.key_mode {
            let root_group_ok = local.key_uid == Some(0) && mode & 0o037 == 0;
            if mode & 0o077 != 0 && !root_group_ok {
                return Finding::fail(
                    CERT_ID,
                    format!(
                        "{} has mode {mode:04o}: PostgreSQL refuses a key file with group or world access",
                        local.key_path.display()
                    ),
                    format!("chmod 600 {}", local.key_path.display()),
                );
            }
        }
    }
    if days < WARN_DAYS {
        return Finding::warn(CERT_ID, format!("the certificate {who} expires in {days} day(s), on {until}"), renew);
    }
    Finding::ok(CERT_ID, format!("{who}, valid until {until} ({days} days){key_note}"))
}

pub(crate) fn tls_min_version(ctx: &Context<'_>) -> Vec<Finding> {
    let Some(tls) = tls_on(ctx) else { return Vec::new() };
    let Some(min) = &tls.min_protocol_version else { return Vec::new() };
    // '' (PostgreSQL 12's "any") and TLSv1/TLSv1.1 let old clients negotiate protocols with known
    // weaknesses; the guide's "TLS 1.2 only" section configures only the client side, the server's floor is
    // this setting (PostgreSQL 12+; 13+ default to TLSv1.2).
    let rank = |v: &str| match v {
        "TLSv1.3" => 3,
        "TLSv1.2" => 2,
        "TLSv1.1" => 1,
        _ => 0,
    };
    let shown = if min.is_empty() { "'' (any)" } else { min.as_str() };
    if rank(min) < 2 {
        vec![Finding::warn(
            MIN_ID,
            format!("ssl_min_protocol_version = {shown}: clients may still use TLS 1.0/1.1"),
            "run `qrd conf set ssl_min_protocol_version=TLSv1.2` (or `qrd ssl enable`, which sets it)",
        )]
    } else {
        vec![Finding::ok(MIN_ID, format!("ssl_min_protocol_version = {shown}"))]
    }
}

#[cfg(test)]
mod tests {
    use qrd_pg::RepoSpec;
    use qrd_pg::testing::{ROLE, provisioned};
    use qrd_pg::tlsinfo::LocalFiles;

    use super::*;
    use crate::{Site, Status, ToolsFound};

    /// A lab certificate valid from a day ago for `days` days; other moments are tested by moving "now".
    fn cert(days: u32) -> qrd_cert::CertInfo {
        let pem = qrd_cert::generate_lab(&["db.example".to_owned()], days).unwrap().cert_pem;
        qrd_cert::parse_certs(pem.as_bytes()).unwrap().remove(0)
    }

    fn tls_with(certs: Vec<qrd_cert::CertInfo>) -> TlsInfo {
        TlsInfo {
            ssl: true,
            cert_file: "server.pem".into(),
            key_file: "server_key.pem".into(),
            min_protocol_version: Some("TLSv1.2".into()),
            certificate: CertState::Parsed { certs },
            ..TlsInfo::default()
        }
    }

    fn run(tls: Option<TlsInfo>, ssl: bool) -> Vec<Finding> {
        let mut inv = provisioned(16, "pw");
        inv.ssl = ssl;
        inv.tls = tls;
        let spec = RepoSpec::new(ROLE);
        let ctx = Context { inventory: &inv, spec: &spec, tools: &ToolsFound::default(), site: &Site::default() };
        let mut f = certificate(&ctx);
        f.extend(tls_min_version(&ctx));
        f
    }

    #[test]
    fn silent_when_ssl_is_off() {
        assert!(run(None, false).is_empty());
        assert!(run(Some(TlsInfo { ssl: false, ..tls_with(vec![]) }), false).is_empty());
    }

    #[test]
    fn expiry_fails_when_past_and_warns_within_thirty_days() {
        let c = cert(365);
        let tls = tls_with(vec![c.clone()]);
        let at = |now: i64| certificate_at(&tls, now);
        let now = qrd_cert::now();
        let ok = at(now);
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
        assert!(ok.message.contains("DNS:db.example") && ok.message.contains("365 days"), "{}", ok.message);
        assert!(ok.message.contains("key not checked"), "{}", ok.message);
        let soon = at(c.not_after - 10 * 86_400);
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.message.contains("expires in 10 day(s)"), "{}", soon.message);
        let past = at(c.not_after + 1);
        assert_eq!(past.status, Status::Fail);
        assert!(past.message.contains("expired on"), "{}", past.message);
        assert!(past.hint.as_deref().unwrap().contains("qrd ssl enable --cert"));
        assert_eq!(at(c.not_before - 1).status, Status::Fail);
    }

    #[test]
    fn key_mismatch_and_loose_key_modes_fail() {
        let local = |matches: Option<Result<(), String>>, mode: u32, uid: u32| LocalFiles {
            cert_path: "/d/server.pem".into(),
            key_path: "/d/server_key.pem".into(),
            key_mode: Some(mode),
            key_uid: Some(uid),
            data_dir_uid: Some(uid),
            key_matches: matches,
        };
        let now = qrd_cert::now();
        let mut tls = tls_with(vec![cert(365)]);
        tls.local = Some(local(Some(Ok(())), 0o600, 999));
        let f = certificate_at(&tls, now);
        assert_eq!(f.status, Status::Ok);
        assert!(f.message.ends_with(", key matches"), "{}", f.message);
        tls.local = Some(local(Some(Err("the private key does not match".into())), 0o600, 999));
        assert_eq!(certificate_at(&tls, now).status, Status::Fail);
        tls.local = Some(local(Some(Ok(())), 0o644, 999));
        let f = certificate_at(&tls, now);
        assert_eq!(f.status, Status::Fail);
        assert_eq!(f.hint.as_deref(), Some("chmod 600 /d/server_key.pem"));
        // root-owned 0640 is what PostgreSQL allows for keys shared with the system (group ssl-cert).
        tls.local = Some(local(Some(Ok(())), 0o640, 0));
        assert_eq!(certificate_at(&tls, now).status, Status::Ok);
    }

    #[test]
    fn unreadable_certificates() {
        let mut tls = tls_with(vec![]);
        tls.certificate = CertState::Unreadable { reason: "could not open file \"server.pem\"".into() };
        assert_eq!(certificate_at(&tls, 0).status, Status::Fail);
        tls.certificate = CertState::NotRead;
        assert_eq!(certificate_at(&tls, 0).status, Status::Skip, "not read with these rights: no failure");
    }

    #[test]
    fn protocol_floor_below_tls12_warns() {
        for (min, status) in
            [("TLSv1", Status::Warn), ("", Status::Warn), ("TLSv1.2", Status::Ok), ("TLSv1.3", Status::Ok)]
        {
            let mut tls = tls_with(vec![cert(365)]);
            tls.min_protocol_version = Some(min.into());
            let f = run(Some(tls), true);
            let m = f.iter().find(|f| f.id == MIN_ID).unwrap();
            assert_eq!(m.status, status, "{min}: {m:?}");
        }
    }
}
