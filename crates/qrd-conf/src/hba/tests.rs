//! Whole-file tests: fixtures, round-trip properties, edits and first-match explanation.

use std::net::IpAddr;
use std::path::Path;

use proptest::prelude::*;

use super::*;

const SAMPLE16: &str = include_str!("../../tests/fixtures/hba/pg16-initdb-sample.conf");
const AWKWARD: &str = include_str!("../../tests/fixtures/hba/awkward-bom-crlf.conf");
const FEATURES16: &str = include_str!("../../tests/fixtures/hba/pg16-features.conf");

fn parse(text: &str) -> HbaFile {
    HbaFile::parse(text, Path::new("/data/pg_hba.conf")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn all() -> Vec<Token> {
    vec![Token::keyword("all")]
}

fn host(addr: &str, method: Method) -> Record {
    Record::new(ConnType::Host, all(), all(), Some(Address::parse(addr).unwrap()), method)
}

/// Byte offset where 1-based `line` starts.
fn line_offset(text: &str, line: usize) -> usize {
    text.split_inclusive('\n').take(line - 1).map(str::len).sum()
}

#[test]
fn the_pg16_initdb_sample_round_trips() {
    let f = parse(SAMPLE16);
    assert_eq!(f.render(), SAMPLE16);
    assert_eq!(f.to_string(), SAMPLE16);
    let lines: Vec<(usize, ConnType, String)> =
        f.records().map(|r| (r.line, r.record.conn_type, r.record.databases[0].value.clone())).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0].1, ConnType::Local);
    assert_eq!(lines[3].2, "replication");
    assert!(f.records().all(|r| r.record.method == Method::Trust));
    // Our layout is the sample's layout.
    for r in f.records() {
        assert_eq!(format!("{}\n", r.record.to_line().unwrap()), r.text);
    }
    assert_eq!(f.diagnostics(16), vec![]);
}

#[test]
fn awkward_files_round_trip_and_parse() {
    let f = parse(AWKWARD);
    assert_eq!(f.render(), AWKWARD);
    assert!(f.has_bom());
    assert_eq!(f.line_ending(), "\r\n");
    let recs: Vec<RecordRef> = f.records().collect();
    assert_eq!(recs.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3, 5, 7]);
    assert_eq!(recs[1].record.databases, vec![Token { value: "QSR".into(), quoted: true }, Token::name("all")]);
    assert_eq!(recs[1].record.options[0].value, "verify-full");
    assert_eq!(recs[2].record.users, vec![Token::member_of("Sense Admins")]);
    assert_eq!(recs[2].spans.netmask, Some(Pos { line: 5, column: 35 }));
    let d = f.diagnostics(16);
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("byte-order mark"), "{d:?}");

    let mut stripped = f.clone();
    assert!(stripped.strip_bom());
    assert_eq!(stripped.render(), AWKWARD.trim_start_matches('\u{feff}'));
}

#[test]
fn pg16_features_fixture() {
    let f = parse(FEATURES16);
    assert_eq!(f.render(), FEATURES16);
    let inc: Vec<(usize, &Include)> = f.includes().collect();
    assert_eq!(inc.len(), 3);
    assert_eq!(inc[1].1, &Include { kind: IncludeKind::IncludeIfExists, path: "/etc/qrd/optional hba.conf".into() });
    assert_eq!(inc[0].1.resolve(f.path()), Path::new("/data/hba.d/extra.conf"));
    // Lines 5-7 are one record; line 9 belongs to the comment on line 8 (as PostgreSQL 16 reads it).
    let lines: Vec<usize> = f.records().map(|r| r.line).collect();
    assert_eq!(lines, vec![5, 10, 11, 12]);
    let first = f.records().next().unwrap();
    assert_eq!(first.spans.address, Some(Pos { line: 6, column: 6 }));
    assert_eq!(first.spans.method, Pos { line: 7, column: 6 });
    assert_eq!(first.record.address, Some(Address::parse("fe80::1%eth0/64").unwrap()));
    // The last line ends in a backslash at end of file: PostgreSQL 14+ drops it.
    assert_eq!(f.records().last().unwrap().record.method, Method::Reject);
    assert_eq!(f.file_refs(), vec![(10, "admins.txt".to_string())]);
    let ldap = f.records().nth(2).unwrap().record;
    assert_eq!(ldap.databases, all(), "a\"ll\" is the keyword: the quote is not the first character");
    assert_eq!(ldap.users, vec![Token::name("all")]);
    assert_eq!(ldap.options[2].value, ", dc=example, dc=com");

    let d16 = f.diagnostics(16);
    assert_eq!(d16.len(), 1, "{d16:?}");
    assert_eq!((d16[0].line, d16[0].message.contains("part of the comment")), (9, true));
    let d15 = f.diagnostics(15);
    assert_eq!(d15.iter().filter(|d| d.message.contains("include directives need")).count(), 3);
    assert!(d15.iter().any(|d| d.message.contains("regular expression only from PostgreSQL 16")));
    let d12 = f.diagnostics(12);
    assert_eq!(d12.iter().filter(|d| d.message.contains("does not join lines")).count(), 3, "{d12:?}");
}

#[test]
fn line_endings_and_final_newline_survive() {
    for text in [
        "",
        "\n",
        "local all all peer",
        "local all all peer\r\n\r\nhost all all ::1/128 md5\n",
        "# only a comment",
        "  \t \r\n",
        "local all all trust # comment\r\r\n",
    ] {
        assert_eq!(parse(text).render(), text);
    }
    // A lone CR is a blank to the server (old Mac line ends do not end lines), so options run on.
    let e = HbaFile::parse("local all all trust\rhost all all all md5\n", Path::new("x")).unwrap_err();
    assert_eq!(e.message, "authentication option not in name=value format: host");
}

#[test]
fn parse_errors_point_at_the_field() {
    let e = HbaFile::parse("# ok\r\nlocal all all peer\nhost all all 10.0.0.0/33 md5\n", Path::new("/d/pg_hba.conf"))
        .unwrap_err();
    assert_eq!(e.to_string(), "/d/pg_hba.conf:3:14: invalid CIDR mask in address \"10.0.0.0/33\"");
    let e = HbaFile::parse("host all all \\\n  ::1/128 \\\n  md4", Path::new("f")).unwrap_err();
    assert_eq!((e.line, e.column, e.message.as_str()), (3, 3, "invalid authentication method \"md4\""));
    let e = HbaFile::parse("include a b\n", Path::new("f")).unwrap_err();
    assert_eq!(e.message, "invalid connection type \"include\"");
    let e = HbaFile::parse("host all all 999.1.1.1/32 md5\n", Path::new("f")).unwrap_err();
    assert!(e.message.starts_with("specifying both host name and CIDR mask"));
    // Quoted directive and connection type words still work, as in the server.
    let f = parse("\"include\" other.conf\n\"host\" all all all md5\n");
    assert_eq!(f.includes().count(), 1);
    assert_eq!(f.records().count(), 1);
}

#[test]
fn edits_touch_only_their_lines() {
    let text = "# header\r\nlocal all all peer\r\nhost all all 127.0.0.1/32 md5 # old\r\n# trailer\r\n";
    let mut f = parse(text);
    let line = f.push(&host("::1/128", Method::ScramSha256)).unwrap();
    assert_eq!(line, 5);
    assert_eq!(
        f.render(),
        format!("{text}host    all             all             ::1/128                 scram-sha-256\r\n")
    );
    f.replace(3, &host("127.0.0.1/32", Method::ScramSha256)).unwrap();
    assert!(
        f.render()
            .contains("\r\nhost    all             all             127.0.0.1/32            scram-sha-256\r\n# trailer")
    );
    let removed = f.remove(2).unwrap();
    assert_eq!(removed, "local all all peer\r\n");
    assert!(f.render().starts_with("# header\r\nhost "));
    assert!(matches!(f.remove(1), Err(EditError::NotARecord(1))));
    assert!(matches!(f.remove(99), Err(EditError::NoSuchLine { line: 99, .. })));

    // insert(0) puts the record first in match order; insert(count) after the last record, before trailers.
    let mut g = parse("# a\nhost all all all md5\n# b\n");
    assert_eq!(g.insert(0, &host("10.0.0.0/8", Method::Reject)).unwrap(), 2);
    assert_eq!(g.insert(2, &host("::/0", Method::Reject)).unwrap(), 4);
    let r = g.render();
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines[0], "# a");
    assert!(lines[1].starts_with("host    all             all             10.0.0.0/8"));
    assert_eq!(lines[2], "host all all all md5");
    assert!(lines[3].contains("::/0"));
    assert_eq!(lines[4], "# b");
    assert!(matches!(g.insert(9, &host("::/0", Method::Reject)), Err(EditError::NoSuchIndex { .. })));
}

#[test]
fn push_adds_a_line_ending_where_needed() {
    let mut f = parse("local all all peer");
    f.push(&host("::1/128", Method::Md5)).unwrap();
    assert!(f.render().starts_with("local all all peer\n"));
    assert!(f.render().ends_with("md5\n"));
    // A last line ending in a backslash would continue into the new record: keep them apart.
    let mut g = parse("local all all peer \\");
    g.push(&host("::1/128", Method::Md5)).unwrap();
    assert_eq!(g.records().count(), 2);
    let mut bom = parse("\u{feff}");
    bom.push(&host("::1/128", Method::Md5)).unwrap();
    assert!(bom.render().starts_with("\u{feff}host "));
    let mut empty = parse("");
    empty.push(&host("::1/128", Method::Md5)).unwrap();
    assert_eq!(empty.records().count(), 1);
}

#[test]
fn invalid_records_are_refused_and_leave_the_file_alone() {
    let mut f = parse("local all all peer\n");
    let bad = Record::new(ConnType::Host, all(), all(), None, Method::Md5);
    assert!(matches!(f.push(&bad), Err(EditError::Record(_))));
    assert_eq!(f.render(), "local all all peer\n");
}

#[test]
fn find_by_fields() {
    let f = parse(SAMPLE16);
    let m = RecordMatch {
        database: Some(Token::keyword("replication")),
        address: Some(Address::parse("::1/128").unwrap()),
        ..Default::default()
    };
    let found: Vec<usize> = f.find(&m).map(|r| r.line).collect();
    assert_eq!(found.len(), 1);
    assert_eq!(f.records().last().unwrap().line, found[0]);
    let local = RecordMatch { conn_type: Some(ConnType::Local), ..Default::default() };
    assert_eq!(f.find(&local).count(), 2);
    let quoted = RecordMatch { database: Some(Token::name("all")), ..Default::default() };
    assert_eq!(f.find(&quoted).count(), 0);
}

// ---- explain -------------------------------------------------------------------------------------------

fn outcome_line(o: &Outcome) -> Option<usize> {
    match o {
        Outcome::Matched { line, .. } => Some(*line),
        _ => None,
    }
}

#[test]
fn first_match_wins_and_connection_types_follow_encryption() {
    let f = parse(
        "local all all peer\n\
         hostssl all all 10.0.0.0/8 cert\n\
         hostnossl all all 10.0.0.0/8 reject\n\
         hostgssenc all all 10.0.0.0/8 gss\n\
         host all all 10.0.0.0/8 md5\n\
         hostnogssenc all all all scram-sha-256\n",
    );
    let facts = Facts::new(16);
    let tcp = |a: &str| Request::new(Client::Tcp(ip(a)), "u", "d");
    assert_eq!(outcome_line(&f.explain(&Request::new(Client::Local, "u", "d"), &facts)), Some(1));
    assert_eq!(outcome_line(&f.explain(&tcp("10.1.2.3").with_ssl(true), &facts)), Some(2));
    match f.explain(&tcp("10.1.2.3"), &facts) {
        Outcome::Matched { line: 3, method: Method::Reject, message: Some(m), .. } => assert_eq!(
            m,
            "pg_hba.conf rejects connection for host \"10.1.2.3\", user \"u\", database \"d\", no encryption"
        ),
        o => panic!("{o:?}"),
    }
    // hostnossl admits GSS-encrypted connections: it only looks at SSL.
    assert_eq!(outcome_line(&f.explain(&tcp("10.1.2.3").with_gssenc(true), &facts)), Some(3));
    let gss = parse("hostnogssenc all all all md5\nhostgssenc all all all gss\n");
    assert_eq!(outcome_line(&gss.explain(&tcp("10.1.2.3").with_gssenc(true), &facts)), Some(2));
    assert_eq!(outcome_line(&gss.explain(&tcp("10.1.2.3").with_ssl(true), &facts)), Some(1));
    assert_eq!(outcome_line(&f.explain(&tcp("192.0.2.1"), &facts)), Some(6));
    assert_eq!(outcome_line(&f.explain(&tcp("192.0.2.1").with_gssenc(true), &facts)), None);
    // IPv4-mapped clients are IPv4 clients to the server.
    assert_eq!(outcome_line(&f.explain(&tcp("::ffff:10.0.0.1").with_ssl(true), &facts)), Some(2));
}

#[test]
fn local_ident_is_peer() {
    let f = parse("local all all ident\n");
    match f.explain(&Request::new(Client::Local, "u", "d"), &Facts::new(12)) {
        Outcome::Matched { method, record, .. } => {
            assert_eq!(method, Method::Peer);
            assert_eq!(record.method, Method::Ident);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn no_match_messages_per_major() {
    let f = parse("local postgres postgres peer\n");
    let local = Request::new(Client::Local, "foo", "bar");
    let msg = |req: &Request, major| match f.explain(req, &Facts::new(major)) {
        Outcome::NoMatch { message } => message,
        o => panic!("{o:?}"),
    };
    // Texts as printed by real 12, 14, 15 and 16 servers.
    assert_eq!(msg(&local, 12), "no pg_hba.conf entry for host \"[local]\", user \"foo\", database \"bar\", SSL off");
    assert_eq!(
        msg(&local, 14),
        "no pg_hba.conf entry for host \"[local]\", user \"foo\", database \"bar\", no encryption"
    );
    assert_eq!(
        msg(&local, 16),
        "no pg_hba.conf entry for host \"[local]\", user \"foo\", database \"bar\", no encryption"
    );
    let phys = local.clone().with_replication(Replication::Physical);
    assert_eq!(
        msg(&phys, 12),
        "no pg_hba.conf entry for replication connection from host \"[local]\", user \"foo\", SSL off"
    );
    assert_eq!(
        msg(&phys, 16),
        "no pg_hba.conf entry for replication connection from host \"[local]\", user \"foo\", no encryption"
    );
    let logical = local.clone().with_replication(Replication::Logical);
    assert_eq!(
        msg(&logical, 12),
        "no pg_hba.conf entry for replication connection from host \"[local]\", user \"foo\", SSL off"
    );
    assert_eq!(
        msg(&logical, 15),
        "no pg_hba.conf entry for host \"[local]\", user \"foo\", database \"bar\", no encryption"
    );
    let tls = Request::new(Client::Tcp(ip("::1")), "foo", "bar").with_ssl(true);
    assert_eq!(msg(&tls, 13), "no pg_hba.conf entry for host \"::1\", user \"foo\", database \"bar\", SSL on");
    assert_eq!(msg(&tls, 14), "no pg_hba.conf entry for host \"::1\", user \"foo\", database \"bar\", SSL encryption");
    let gss = Request::new(Client::Tcp(ip("127.0.0.1")), "foo", "bar").with_gssenc(true);
    assert_eq!(
        msg(&gss, 16),
        "no pg_hba.conf entry for host \"127.0.0.1\", user \"foo\", database \"bar\", GSS encryption"
    );
}

#[test]
fn replication_keyword_and_all() {
    let f = parse("local all all reject\nlocal replication all trust\nlocal \"replication\" all md5\n");
    let phys = Request::new(Client::Local, "rep", "ignored").with_replication(Replication::Physical);
    // `all` does not cover physical replication; the keyword does.
    assert_eq!(outcome_line(&f.explain(&phys, &Facts::new(16))), Some(2));
    let to_db = Request::new(Client::Local, "u", "replication");
    assert_eq!(outcome_line(&f.explain(&to_db, &Facts::new(16))), Some(1));
    let g = parse("local replication all trust\nlocal \"replication\" all md5\n");
    // A database named replication matches the quoted name only; logical replication is an ordinary db.
    assert_eq!(outcome_line(&g.explain(&to_db, &Facts::new(16))), Some(2));
    let logical = Request::new(Client::Local, "u", "replication").with_replication(Replication::Logical);
    assert_eq!(outcome_line(&g.explain(&logical, &Facts::new(16))), Some(2));
}

#[test]
fn sameuser_samerole_and_groups() {
    let f =
        parse("local sameuser all peer\nlocal samerole all md5\nlocal all +qlik scram-sha-256\nlocal all all reject\n");
    let roles = Roles::new()
        .with("postgres", &[])
        .with("qlik", &[])
        .with("admins", &["qlik"])
        .with("ann", &["admins"])
        .with("bob", &[])
        .with("sales", &[]);
    let mut facts = Facts::new(16);
    let req = |u: &str, d: &str| Request::new(Client::Local, u, d);
    assert_eq!(outcome_line(&f.explain(&req("ann", "ann"), &facts)), Some(1));
    // Without role facts, samerole is undecided and the rest of the file still answers.
    match f.explain(&req("ann", "sales"), &facts) {
        Outcome::Undecided { line: 2, reason, otherwise, .. } => {
            assert!(reason.contains("member of role \"sales\""), "{reason}");
            assert!(matches!(*otherwise, Outcome::Undecided { line: 3, .. }));
        }
        o => panic!("{o:?}"),
    }
    facts.roles = Some(roles);
    // ann is in qlik through admins: recursive membership.
    assert_eq!(outcome_line(&f.explain(&req("ann", "sales"), &facts)), Some(3));
    assert_eq!(outcome_line(&f.explain(&req("ann", "admins"), &facts)), Some(2));
    // A role is a member of itself; superusers are not members of everything (verified on 16).
    assert_eq!(outcome_line(&f.explain(&req("qlik", "x"), &facts)), Some(3));
    assert_eq!(outcome_line(&f.explain(&req("postgres", "x"), &facts)), Some(4));
    // Unknown roles are members of nothing.
    assert_eq!(outcome_line(&f.explain(&req("ghost", "x"), &facts)), Some(4));
    assert_eq!(outcome_line(&f.explain(&req("bob", "sales"), &facts)), Some(4));
}

#[test]
fn quoted_keywords_are_names() {
    let f = parse("local \"all\" \"all\" md5\nlocal all \"+g\" trust\nlocal all all reject\n");
    let facts = Facts::new(16);
    assert_eq!(outcome_line(&f.explain(&Request::new(Client::Local, "all", "all"), &facts)), Some(1));
    assert_eq!(outcome_line(&f.explain(&Request::new(Client::Local, "u", "all"), &facts)), Some(3));
    assert_eq!(outcome_line(&f.explain(&Request::new(Client::Local, "+g", "x"), &facts)), Some(2));
}

#[test]
fn addresses_hostnames_and_interfaces() {
    let f = parse(
        "host all all .example.com md5\nhost all all samenet scram-sha-256\nhost all all samehost trust\nhost all all all reject\n",
    );
    let req = Request::new(Client::Tcp(ip("192.168.1.20")), "u", "d");
    let mut facts = Facts::new(16);
    match f.explain(&req, &facts) {
        Outcome::Undecided { line: 1, reason, otherwise, .. } => {
            assert!(reason.contains(".example.com") && reason.contains("does not query DNS"), "{reason}");
            assert!(matches!(*otherwise, Outcome::Undecided { line: 2, .. }));
        }
        o => panic!("{o:?}"),
    }
    facts.client_hostname = ClientHostname::Name { name: "PC7.Example.COM".into(), forward_confirmed: true };
    assert_eq!(outcome_line(&f.explain(&req, &facts)), Some(1));
    facts.client_hostname = ClientHostname::Name { name: "pc7.example.com".into(), forward_confirmed: false };
    facts.interfaces = Some(vec![Interface { addr: ip("192.168.1.5"), prefix: 24 }]);
    assert_eq!(outcome_line(&f.explain(&req, &facts)), Some(2));
    facts.client_hostname = ClientHostname::NoName;
    let me = Request::new(Client::Tcp(ip("192.168.1.5")), "u", "d");
    let g = parse("host all all samehost trust\nhost all all all reject\n");
    assert_eq!(outcome_line(&g.explain(&me, &facts)), Some(1));
    assert_eq!(outcome_line(&g.explain(&req, &facts)), Some(2));
    // Local clients never match host lines.
    assert!(matches!(g.explain(&Request::new(Client::Local, "u", "d"), &facts), Outcome::NoMatch { .. }));
}

#[test]
fn file_lists_regexes_and_includes() {
    let f = parse("local @dbs all md5\nlocal /^qs all trust\ninclude more.conf\nlocal all all reject\n");
    let mut facts = Facts::new(16);
    let req = Request::new(Client::Local, "u", "qsr");
    match f.explain(&req, &facts) {
        Outcome::Undecided { line: 1, reason, otherwise, .. } => {
            assert!(reason.contains("@dbs"), "{reason}");
            let Outcome::Undecided { line: 2, reason, otherwise, .. } = *otherwise else { panic!() };
            assert!(reason.contains("regular expression /^qs"), "{reason}");
            let Outcome::Undecided { line: 3, record: None, otherwise, .. } = *otherwise else { panic!() };
            assert_eq!(outcome_line(&otherwise), Some(4));
        }
        o => panic!("{o:?}"),
    }
    facts.token_files.insert("dbs".into(), "# databases\nqsr, \"other db\"\n@nested\n".into());
    facts.token_files.insert("nested".into(), "deep".into());
    assert_eq!(outcome_line(&f.explain(&req, &facts)), Some(1));
    assert_eq!(outcome_line(&f.explain(&Request::new(Client::Local, "u", "deep"), &facts)), Some(1));
    // Before 16, "/^qs" is just a name and "include" would not even load.
    let g = parse("local /^qs all trust\nlocal all all reject\n");
    assert_eq!(outcome_line(&g.explain(&Request::new(Client::Local, "u", "/^qs"), &Facts::new(15))), Some(1));
    assert_eq!(outcome_line(&g.explain(&Request::new(Client::Local, "u", "qsr"), &Facts::new(15))), Some(2));
}

// ---- properties ----------------------------------------------------------------------------------------

fn sep() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(" "), Just("\t"), Just("  \t "), Just("    ")]
}

fn record_line() -> impl Strategy<Value = Vec<String>> {
    let db = prop_oneof![
        Just("all"),
        Just("sameuser"),
        Just("samerole"),
        Just("replication"),
        Just("\"all\""),
        Just("QSR,\"my db\""),
        Just("a\"b\"c"),
        Just("@dbs.txt"),
        Just("/^qs_.*$"),
        Just("db1, db2"),
    ];
    let user = prop_oneof![
        Just("all"),
        Just("+\"Sense Admins\""),
        Just("qliksenserepository"),
        Just("\"\"\"q\"\"\""),
        Just("u1,+g")
    ];
    let addr = prop_oneof![
        Just("127.0.0.1/32"),
        Just("::1/128"),
        Just("10.0.0.1/24"),
        Just("10.0.0.0 255.0.0.0"),
        Just("samenet"),
        Just("samehost"),
        Just("all"),
        Just(".example.com"),
        Just("fe80::1%eth0/64"),
    ];
    let method = prop_oneof![Just("trust"), Just("md5"), Just("scram-sha-256"), Just("reject"), Just("password")];
    let comment = prop_oneof![Just(""), Just("# note"), Just("#"), Just("# \"quoted\" stuff  ")];
    (any::<bool>(), db, user, addr, method, comment).prop_map(|(local, db, user, addr, method, comment)| {
        let mut words = vec![if local { "local" } else { "host" }.to_string(), db.into(), user.into()];
        if !local {
            words.push(addr.into());
        }
        words.push(method.into());
        if !comment.is_empty() {
            words.push(comment.into());
        }
        words
    })
}

#[derive(Debug, Clone)]
enum Piece {
    Record(Vec<String>, Vec<&'static str>, Option<usize>),
    Comment(String),
    Blank(&'static str),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (record_line(), proptest::collection::vec(sep(), 8), proptest::option::of(1usize..4))
            .prop_map(|(w, s, c)| Piece::Record(w, s, c)),
        2 => "[ \t]{0,3}#[ a-zA-Z0-9\"',#\t]{0,20}[a-z]".prop_map(Piece::Comment),
        1 => prop_oneof![Just(""), Just("   "), Just("\t"), Just(" \t ")].prop_map(Piece::Blank),
    ]
}

/// A file text from pieces; `eols` picks each line's ending; continuation splits a record at one blank.
fn file_text() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(piece(), 0..12),
        proptest::collection::vec(prop_oneof![Just("\n"), Just("\r\n")], 24),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(""), Just(" "), Just("\t")],
    )
        .prop_map(|(pieces, eols, final_newline, bom, lead)| {
            let mut out = String::new();
            if bom {
                out.push('\u{feff}');
            }
            let mut lines: Vec<String> = Vec::new();
            for p in pieces {
                match p {
                    Piece::Record(words, seps, cont) => {
                        let mut line = lead.to_string();
                        for (k, w) in words.iter().enumerate() {
                            if k > 0 {
                                if cont == Some(k) {
                                    line.push_str(" \\");
                                    lines.push(std::mem::take(&mut line));
                                    line.push_str("  ");
                                } else {
                                    line.push_str(seps[k % seps.len()]);
                                }
                            }
                            line.push_str(w);
                        }
                        lines.push(line);
                    }
                    Piece::Comment(c) => lines.push(c),
                    Piece::Blank(b) => lines.push(b.to_string()),
                }
            }
            let n = lines.len();
            for (k, l) in lines.into_iter().enumerate() {
                out.push_str(&l);
                if k + 1 < n || final_newline {
                    out.push_str(eols[k % eols.len()]);
                }
            }
            out
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Push,
    Insert(usize),
    Remove(usize),
    Replace(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Push),
        (0usize..16).prop_map(Edit::Insert),
        (0usize..16).prop_map(Edit::Remove),
        (0usize..16).prop_map(Edit::Replace),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn unchanged_files_render_byte_for_byte(text in file_text()) {
        let f = HbaFile::parse(&text, Path::new("p")).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        prop_assert_eq!(f.render(), text);
    }

    #[test]
    fn edits_leave_other_lines_byte_identical(text in file_text(), e in edit()) {
        let mut f = HbaFile::parse(&text, Path::new("p")).unwrap();
        let before = f.render();
        let new = host("192.0.2.0/24", Method::ScramSha256);
        let new_line = new.to_line().unwrap();
        let records: Vec<(usize, usize)> = f.records().map(|r| (r.line, r.text.len())).collect();
        let bom = if f.has_bom() { 3 } else { 0 };
        match e {
            Edit::Push => {
                f.push(&new).unwrap();
                let after = f.render();
                prop_assert!(after.starts_with(&before));
                let tail = format!("{new_line}{}", f.line_ending());
                prop_assert!(after.ends_with(&tail));
            }
            Edit::Insert(i) if i < records.len() => {
                let (line, _) = records[i];
                prop_assert_eq!(f.insert(i, &new).unwrap(), line);
                let at = bom + line_offset(&before[bom..], line);
                let expected = format!("{}{new_line}{}{}", &before[..at], f.line_ending(), &before[at..]);
                prop_assert_eq!(f.render(), expected);
                prop_assert_eq!(f.records().nth(i).unwrap().record, &new);
            }
            Edit::Remove(i) if i < records.len() => {
                let (line, len) = records[i];
                let removed = f.remove(line).unwrap();
                let at = bom + line_offset(&before[bom..], line);
                prop_assert_eq!(removed.len(), len);
                prop_assert_eq!(f.render(), format!("{}{}", &before[..at], &before[at + len..]));
                prop_assert_eq!(f.records().count(), records.len() - 1);
            }
            Edit::Replace(i) if i < records.len() => {
                let (line, len) = records[i];
                f.replace(line, &new).unwrap();
                let at = bom + line_offset(&before[bom..], line);
                let old = &before[at..at + len];
                let last = old.split_inclusive('\n').next_back().unwrap();
                let ending = &last[last.trim_end_matches(['\r', '\n']).len()..];
                prop_assert_eq!(f.render(), format!("{}{new_line}{ending}{}", &before[..at], &before[at + len..]));
                prop_assert_eq!(f.records().nth(i).unwrap().record, &new);
            }
            _ => {}
        }
    }

    #[test]
    fn any_text_parses_or_fails_without_panicking(text in "[a-z0-9 \t\r\n\"#,\\\\/.:+@=-]{0,80}") {
        if let Ok(f) = HbaFile::parse(&text, Path::new("p")) {
            prop_assert_eq!(f.render(), text);
        }
    }
}

fn diff(old: &str, new: &str) -> String {
    crate::write::FileEdit::new(Path::new("pg_hba.conf"), old.to_owned(), new.to_owned()).diff()
}

/// The diffs the DBA sees on `--dry-run` for the usual edits: only the lines concerned change, the
/// file's line endings, tabs, BOM and comments stay.
#[test]
fn edit_diffs_snapshot() {
    let node = |addr: &str| {
        Record::new(
            ConnType::Host,
            ["QSR", "SenseServices", "QSMQ", "Licenses"].iter().map(|d| Token::name(d)).collect(),
            vec![Token::name("qliksenserepository")],
            Some(Address::parse(addr).unwrap()),
            Method::ScramSha256,
        )
    };
    // The awkward file (BOM, CRLF, a LF-only line, no final newline): insert before the first TCP rule.
    let mut f = parse(AWKWARD);
    f.insert(0, &node("10.0.4.11/32")).unwrap();
    f.push(&node("fd00::11/128")).unwrap();
    insta::assert_snapshot!("hba_awkward_insert_push", diff(AWKWARD, &f.render()).replace('\r', "␍"));

    // initdb's sample: the guide's step, the localhost line replaced by the site's subnet.
    let mut f = parse(SAMPLE16);
    let line = f.records().find(|r| r.text.contains("127.0.0.1/32")).map(|r| r.line).unwrap();
    f.replace(line, &node("10.0.4.0/24")).unwrap();
    insta::assert_snapshot!("hba_sample_replace_localhost", diff(SAMPLE16, &f.render()));

    // Removing a rule that spans continuation lines, and one with quoted options.
    let mut f = parse(FEATURES16);
    let regex_rule = f.records().find(|r| r.text.contains("qsr_")).map(|r| r.line).unwrap();
    let ldap_rule = f.records().find(|r| r.record.method == Method::Ldap).map(|r| r.line).unwrap();
    f.remove(ldap_rule).unwrap();
    f.remove(regex_rule).unwrap();
    insta::assert_snapshot!("hba_features_remove", diff(FEATURES16, &f.render()));
}

#[test]
fn set_method_changes_one_word() {
    let text = "\u{feff}# x\r\nhost all all 10.0.0.0/8 md5 # keep me\r\nhost \"QSR\" all \\\r\n  10.1.0.0/16 \\\r\n  md5\r\nlocal all all peer\r\n";
    let mut f = parse(text);
    f.set_method(2, Method::ScramSha256).unwrap();
    f.set_method(3, Method::ScramSha256).unwrap();
    assert_eq!(
        f.render(),
        "\u{feff}# x\r\nhost all all 10.0.0.0/8 scram-sha-256 # keep me\r\nhost \"QSR\" all \\\r\n  10.1.0.0/16 \\\r\n  scram-sha-256\r\nlocal all all peer\r\n"
    );
    let r = f.set_method(1, Method::Md5);
    assert!(matches!(r, Err(EditError::NotARecord(1))), "a comment line has no method: {r:?}");
    let roles = Roles::new().with("alice", &["qlik"]).with("qlik", &[]).with("bob", &[]);
    let mut facts = Facts::new(16);
    facts.roles = Some(roles);
    let f = parse("host all +qlik 10.0.0.0/8 md5\nhost all /^a 10.0.0.0/8 md5\nhost all bob,carol 10.0.0.0/8 md5\n");
    let recs: Vec<&Record> = f.records().map(|r| r.record).collect();
    assert_eq!(admits_user(recs[0], "alice", &facts), Some(true));
    assert_eq!(admits_user(recs[0], "bob", &facts), Some(false));
    assert_eq!(admits_user(recs[1], "alice", &facts), None, "regular expressions are not decided here");
    assert_eq!(admits_user(recs[2], "carol", &facts), Some(true));
}

fn retyped(text: &str, from: ConnType, to: ConnType) -> (String, Vec<usize>) {
    let mut file = parse(text);
    let lines = file.retype(from, to).unwrap();
    (file.render(), lines)
}

#[test]
fn host_to_hostssl_keeps_columns_comments_and_reject_lines() {
    let text = "# TYPE  DATABASE USER ADDRESS METHOD\r\n\
                local   all      all          trust\r\n\
                host    all      all  10.0.0.0/8 scram-sha-256 # nodes\r\n\
                host\tQSR      all  10.9.9.9/32 reject\r\n\
                host all all ::1/128 md5\r\n\
                hostnossl all all 0.0.0.0/0 reject\r\n";
    let (out, lines) = retyped(text, ConnType::Host, ConnType::HostSsl);
    assert_eq!(lines, [3, 5]);
    assert_eq!(
        out,
        "# TYPE  DATABASE USER ADDRESS METHOD\r\n\
         local   all      all          trust\r\n\
         hostssl all      all  10.0.0.0/8 scram-sha-256 # nodes\r\n\
         host\tQSR      all  10.9.9.9/32 reject\r\n\
         hostssl all all ::1/128 md5\r\n\
         hostnossl all all 0.0.0.0/0 reject\r\n"
    );
    // And back: the layout of the original returns, and reject rules are retyped too (with ssl off a
    // hostssl reject would refuse nobody).
    let (back, lines) = retyped(&out, ConnType::HostSsl, ConnType::Host);
    assert_eq!(lines, [3, 5]);
    assert_eq!(back.lines().nth(2), text.lines().nth(2));
    assert_eq!(back.lines().nth(4).unwrap(), "host    all all ::1/128 md5");
    let (_, lines) = retyped("hostssl all bob 0.0.0.0/0 reject\n", ConnType::HostSsl, ConnType::Host);
    assert_eq!(lines, [1]);
}

#[test]
fn retyping_a_quoted_type_is_refused_not_guessed() {
    let mut file = parse("\"host\" all all 10.0.0.0/8 md5\n");
    let err = file.retype(ConnType::Host, ConnType::HostSsl).unwrap_err();
    assert!(matches!(err, EditError::QuotedConnType { line: 1, word: "host" }), "{err}");
    assert_eq!(file.render(), "\"host\" all all 10.0.0.0/8 md5\n", "nothing changed");
}

#[test]
fn new_rules_go_before_tcp_rules_but_never_above_an_overlapping_reject() {
    let f = parse(
        "local all all peer\n\
         host all all 10.0.4.0/24 reject\n\
         host all all 192.168.0.0/16 reject\n\
         host all all 0.0.0.0/0 scram-sha-256\n",
    );
    let rule = |addr: &str| {
        Record::new(
            ConnType::Host,
            vec![Token::name("QSR")],
            vec![Token::name("qliksenserepository")],
            Some(Address::parse_node(addr).unwrap()),
            Method::ScramSha256,
        )
    };
    // 10.0.4.11 is refused by line 2: the new rule goes below it. 10.0.9.1 overlaps nothing: before line 2.
    assert_eq!(f.default_position(&rule("10.0.4.11")), 2);
    assert_eq!(f.default_position(&rule("10.0.9.1")), 1);
    // A subnet that contains one of the rejected ranges overlaps it.
    assert_eq!(f.default_position(&rule("192.0.0.0/8")), 3);
    let local =
        Record::new(ConnType::Local, vec![Token::keyword("all")], vec![Token::keyword("all")], None, Method::Peer);
    assert_eq!(f.default_position(&local), 0);
}

#[test]
fn node_addresses_and_their_ends() {
    assert_eq!(Address::parse_node("10.0.4.11").unwrap().to_string(), "10.0.4.11/32");
    assert_eq!(Address::parse_node("::1").unwrap().to_string(), "::1/128");
    let net = Address::parse_node("10.0.4.7/24").unwrap();
    let ends: Vec<String> = net.ends().unwrap().iter().map(|a| a.to_string()).collect();
    assert_eq!(ends, ["10.0.4.0", "10.0.4.255"]);
    assert_eq!(
        Address::parse_node("db.example.com"),
        Err(AddressError("\"db.example.com\" is not an IP address".into())),
        "a host name is not a node address"
    );
    assert_eq!(
        Address::parse_node("samenet/8"),
        Err(AddressError("specifying both host name and CIDR mask is invalid: \"samenet/8\"".into()))
    );
    assert!(Address::may_overlap(Some(&net), Some(&Address::Hostname { name: "x".into() })));
    assert!(!Address::may_overlap(Some(&net), Address::parse_node("10.0.5.0/24").ok().as_ref()));
    assert!(Address::may_overlap(None, Some(&net)), "local records overlap everything");
}

#[test]
fn command_line_words_become_tokens() {
    assert_eq!(Token::from_word("all"), Token::keyword("all"));
    assert_eq!(Token::from_word("+qlik"), Token::member_of("qlik"));
    assert_eq!(Token::from_word("@admins"), Token::file("admins"));
    assert_eq!(Token::from_word("QSR"), Token::name("QSR"));
    assert!(Token::from_word("+").quoted, "a lone + is a name, quoted");
    let rows = vec![("alice".to_owned(), vec!["qlik".to_owned()]), ("qlik".to_owned(), vec![])];
    assert!(Roles::from_memberships(&rows).is_member("alice", "qlik"));
}

// ---- HbaTree: the files a PostgreSQL 16 pg_hba.conf includes ----

#[test]
fn tree_reads_includes_in_server_order() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir_all(root.join("hba.d/sub")).unwrap();
    std::fs::write(root.join("hba.d/20-b.conf"), "host all b 10.0.0.2/32 md5\ninclude sub/deep.conf\n").unwrap();
    std::fs::write(root.join("hba.d/10-a.conf"), "host all a 10.0.0.1/32 md5\n").unwrap();
    // Not read: hidden, too short a name, not *.conf, a directory.
    std::fs::write(root.join("hba.d/.hidden.conf"), "garbage\n").unwrap();
    std::fs::write(root.join("hba.d/.conf"), "garbage\n").unwrap();
    std::fs::write(root.join("hba.d/x.conf.bak"), "garbage\n").unwrap();
    std::fs::create_dir(root.join("hba.d/dir.conf")).unwrap();
    std::fs::write(root.join("hba.d/sub/deep.conf"), "host all deep 10.0.0.3/32 md5\n").unwrap();
    let main = root.join("pg_hba.conf");
    let text = "local all all peer\ninclude_dir hba.d\ninclude_if_exists missing.conf\nhost all all ::1/128 md5\n";
    std::fs::write(&main, text).unwrap();
    let tree = HbaTree::load(&main, text).unwrap();
    let names: Vec<String> =
        tree.files().iter().map(|f| f.path.strip_prefix(root).unwrap().display().to_string()).collect();
    assert_eq!(names, ["pg_hba.conf", "hba.d/10-a.conf", "hba.d/20-b.conf", "hba.d/sub/deep.conf"]);
    assert!(tree.main().is_main() && !tree.files()[1].is_main());
    let deep = &tree.files()[3];
    let from = deep.included_from.as_ref().unwrap();
    assert_eq!((from.file.as_path(), from.line), (root.join("hba.d/20-b.conf").as_path(), 2));
    assert_eq!(deep.text, "host all deep 10.0.0.3/32 md5\n");
    assert_eq!(tree.skipped().len(), 1);
    assert_eq!(tree.skipped()[0].0, root.join("missing.conf"));
    // 12–15: the main file alone.
    assert_eq!(HbaTree::main_only(&main, text).unwrap().files().len(), 1);
}

#[test]
fn tree_errors_are_the_servers() {
    let d = tempfile::tempdir().unwrap();
    let main = d.path().join("pg_hba.conf");
    let missing = "include nope.conf\n";
    let e = HbaTree::load(&main, missing).unwrap_err();
    assert!(matches!(e, crate::pgconf::LoadError::Read { .. }), "{e}");
    std::fs::write(d.path().join("self.conf"), "include self.conf\n").unwrap();
    let e = HbaTree::load(&main, "include self.conf\n").unwrap_err();
    assert!(matches!(e, crate::pgconf::LoadError::Cycle { .. }), "{e}");
    std::fs::write(d.path().join("bad.conf"), "host all all 10.0.0.0/33 md5\n").unwrap();
    let e = HbaTree::load(&main, "include bad.conf\n").unwrap_err();
    assert!(e.to_string().contains("bad.conf:1:14: invalid CIDR mask"), "{e}");
    let e = HbaTree::load(&main, "include_dir nodir\n").unwrap_err();
    assert!(matches!(e, crate::pgconf::LoadError::ReadDir { .. }), "{e}");
}
