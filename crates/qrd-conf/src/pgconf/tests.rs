//! Tests of the `postgresql.conf` model: fixtures of awkward files and the real initdb samples, edits as
//! unified diffs, include trees in temporary directories, value validation, and property tests.
//!
//! Expected values were checked against real servers (`postgres -C name -D datadir` on 12 and 16).

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

const PG16: &str = include_str!("../../tests/fixtures/pgconf/pg16-initdb.conf");
const PG12: &str = include_str!("../../tests/fixtures/pgconf/pg12-initdb.conf");
const CRLF_BOM: &str = include_str!("../../tests/fixtures/pgconf/crlf-bom.conf");
const ODD: &str = include_str!("../../tests/fixtures/pgconf/odd-quoting.conf");

fn parse(text: &str) -> ConfFile {
    ConfFile::parse(text, Path::new("postgresql.conf")).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> String {
    ConfFile::parse(text, Path::new("postgresql.conf")).expect_err("a syntax error").to_string()
}

fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(1).header("before", "after").to_string()
}

fn values(file: &ConfFile) -> Vec<(String, String)> {
    file.settings().map(|s| (s.name.clone(), s.value.clone())).collect()
}

// ---------------------------------------------------------------- parsing and round trips

#[test]
fn fixtures_round_trip_byte_for_byte() {
    for text in [PG16, PG12, CRLF_BOM, ODD, "", "\n", "port = 1", "\u{feff}", "# only a comment"] {
        let file = parse(text);
        assert_eq!(file.render(), text);
        assert_eq!(file.to_string(), text);
    }
}

#[test]
fn initdb_samples_set_what_initdb_uncomments() {
    for text in [PG16, PG12] {
        let file = parse(text);
        let max = file.get("max_connections").expect("max_connections is active");
        assert_eq!((max.value.as_str(), max.line), ("100", 65));
        assert_eq!(max.comment.as_deref(), Some("# (change requires restart)"));
        assert_eq!(file.get("shared_buffers").map(|s| s.value.as_str()), Some("128MB"));
        assert!(file.get("port").is_none());
        assert!(file.get("listen_addresses").is_none());
        assert_eq!(file.includes().count(), 0);
    }
}

#[test]
fn odd_quoting_decodes_like_the_server() {
    let file = parse(ODD);
    let got = values(&file);
    let expect = [
        ("application_name", "it's"),
        ("cluster_name", "a'b"),
        ("log_line_prefix", "#not a comment "),
        ("search_path", "\"$user\", public"),
        ("Max_Connections", "110"),
        ("auto_explain.log_min_duration", "250ms"),
        ("default_text_search_config", "pg_catalog.english"),
        ("lc_messages", "en_US.UTF-8"),
        ("random_page_cost", "1.1"),
        ("checkpoint_completion_target", ".9"),
        ("work_mem", "0x1000"),
        ("wal_buffers", "-1"),
        ("log_destination", ""),
        ("fsync", "TRUE"),
    ];
    let expect: Vec<(String, String)> = expect.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, expect);
    let max = file.get("max_connections").unwrap();
    assert_eq!((max.key.as_str(), max.value_kind, max.line), ("max_connections", TokenKind::Integer, 6));
    let prefix = file.get("log_line_prefix").unwrap();
    assert_eq!(prefix.comment.as_deref(), Some("# a real comment"));
    assert_eq!(&ODD[prefix.value_span.clone()], "'#not a comment '");
    assert_eq!(file.get("cluster_name").unwrap().comment.as_deref(), Some("#backslash quote, no spaces"));
    assert_eq!(file.get("lc_messages").unwrap().value_kind, TokenKind::UnquotedString);
}

#[test]
fn crlf_and_bom_are_kept_and_reported() {
    let file = parse(CRLF_BOM);
    assert!(file.has_bom());
    assert_eq!(file.line_ending(), LineEnding::CrLf);
    let port = file.get("port").unwrap();
    assert_eq!((port.value.as_str(), port.line, port.comment.clone()), ("4432", 3, None));
    assert_eq!(&CRLF_BOM[port.value_span.clone()], "4432");
    assert_eq!(file.get("log_directory").unwrap().value, r"C:\ProgramData\Qlik\Sense\Log");
    assert_eq!(file.get("listen_addresses").unwrap().comment.as_deref(), Some("# what IP address(es) to listen on"));
}

#[test]
fn every_value_form() {
    let cases = [
        ("a = on", "on", TokenKind::Id),
        ("a on", "on", TokenKind::Id),
        ("a=on", "on", TokenKind::Id),
        ("a = 128MB", "128MB", TokenKind::Integer),
        ("a = 5min", "5min", TokenKind::Integer),
        ("a = -1", "-1", TokenKind::Integer),
        ("a = +10s", "+10s", TokenKind::Integer),
        ("a = 0x1F", "0x1F", TokenKind::Integer),
        ("a = 0.9", "0.9", TokenKind::Real),
        ("a = -.5e3", "-.5e3", TokenKind::Real),
        ("a = .", ".", TokenKind::Real),
        ("a = 'x y'", "x y", TokenKind::String),
        ("a = ''", "", TokenKind::String),
        ("a = '\\t'", "\t", TokenKind::String),
        ("a = foo/bar.conf", "foo/bar.conf", TokenKind::UnquotedString),
        ("a = C:x", "C:x", TokenKind::UnquotedString),
        ("a = \u{e9}t\u{e9}", "\u{e9}t\u{e9}", TokenKind::Id),
        ("a.b = 1 # c", "1", TokenKind::Integer),
        ("  a  =  1  ", "1", TokenKind::Integer),
        ("a = 1\r", "1", TokenKind::Integer),
    ];
    for (line, value, kind) in cases {
        let file = parse(line);
        let s = file.settings().next().unwrap_or_else(|| panic!("{line:?} has a setting"));
        assert_eq!((s.value.as_str(), s.value_kind), (value, kind), "{line:?}");
        assert_eq!(&line[s.value_span.clone()], s.raw_value, "{line:?}");
    }
}

#[test]
fn syntax_errors_name_line_and_column() {
    assert_eq!(
        parse_err("# c\nport =\n"),
        "postgresql.conf:2:7: syntax error near end of line: missing value for \"port\""
    );
    assert_eq!(
        parse_err("port   # no value"),
        "postgresql.conf:1:5: syntax error near end of line: missing value for \"port\""
    );
    let e = parse_err("work_mem = 1.5MB\n");
    assert!(e.starts_with("postgresql.conf:1:15: syntax error near token \"MB\""), "{e}");
    assert!(e.contains("must be quoted"), "{e}");
    let e = parse_err("a = 1e3");
    assert!(e.starts_with("postgresql.conf:1:7: syntax error near token \"3\""), "{e}");
    assert!(parse_err("include foo.conf").starts_with("postgresql.conf:1:9: syntax error near token \"foo.conf\""));
    assert!(parse_err("include /etc/x.conf").starts_with("postgresql.conf:1:9: syntax error near token \"/\""));
    assert!(parse_err("a.b.c = 1").starts_with("postgresql.conf:1:1: syntax error near token \"a.b.c\""));
    assert!(parse_err("= 1").starts_with("postgresql.conf:1:1: syntax error near token \"=\""));
    assert!(parse_err("port = 1 2").starts_with("postgresql.conf:1:10: syntax error near token \"2\""));
    assert!(parse_err("a = 'open").starts_with("postgresql.conf:1:5: syntax error near token \"'\""));
    assert!(parse_err("a = 'x'\u{c}").starts_with("postgresql.conf:1:8:"));
    assert!(parse_err("a = = 1").starts_with("postgresql.conf:1:5: syntax error near token \"=\""));
    // Columns count characters, not bytes.
    assert!(parse_err("\u{e9}\u{e9} = 1 x").starts_with("postgresql.conf:1:8:"));
}

#[test]
fn include_directives_are_entries() {
    let file = parse("INCLUDE 'a.conf'\ninclude_if_exists = sub/b.conf\ninclude_dir 'conf.d' # all\nport = 1\n");
    let got: Vec<(IncludeKind, &str, usize)> = file.includes().map(|i| (i.kind, i.path.as_str(), i.line)).collect();
    assert_eq!(
        got,
        [
            (IncludeKind::Include, "a.conf", 1),
            (IncludeKind::IncludeIfExists, "sub/b.conf", 2),
            (IncludeKind::IncludeDir, "conf.d", 3)
        ]
    );
    assert_eq!(file.settings().count(), 1);
}

#[test]
fn old_aliases_map_to_their_settings() {
    let file = parse("sort_mem = 1MB\nWork_Mem = 2MB\nvacuum_mem = 5MB\n");
    assert_eq!(file.get("work_mem").unwrap().line, 2);
    assert_eq!(file.get("maintenance_work_mem").unwrap().value, "5MB");
    assert_eq!(canonical_name("SORT_MEM"), "work_mem");
}

// ---------------------------------------------------------------- format_value

#[test]
fn format_value_quotes_only_what_needs_it() {
    let cases = [
        ("110", "110"),
        ("128MB", "128MB"),
        ("-1", "-1"),
        ("0.9", "0.9"),
        ("on", "on"),
        ("replica", "replica"),
        ("*", "'*'"),
        ("", "''"),
        ("localhost, 127.0.0.1", "'localhost, 127.0.0.1'"),
        ("pg_catalog.english", "'pg_catalog.english'"),
        ("en_US.UTF-8", "'en_US.UTF-8'"),
        ("1.5GB", "'1.5GB'"),
        ("/var/log", "'/var/log'"),
        ("it's", "'it''s'"),
        (r"C:\data", r"'C:\\data'"),
        ("a\nb", r"'a\nb'"),
        ("#x", "'#x'"),
        (" on", "' on'"),
    ];
    for (value, expect) in cases {
        assert_eq!(format_value(value).unwrap(), expect, "{value:?}");
        let file = parse(&format!("x = {expect}\n"));
        assert_eq!(file.get("x").unwrap().value, value, "{expect} reads back");
    }
    assert_eq!(format_value("a\0b"), Err(NulInValue));
}

// ---------------------------------------------------------------- editing

#[test]
fn set_on_the_initdb_samples_makes_minimal_diffs() {
    for (version, text) in [("pg16", PG16), ("pg12", PG12)] {
        let mut file = parse(text);
        let c1 = file.set("max_connections", "110").unwrap();
        let c2 = file.set("listen_addresses", "*").unwrap();
        let c3 = file.set("port", "4432").unwrap();
        assert_eq!(c1.action, SetAction::Replaced);
        assert_eq!(c1.old_value.as_deref(), Some("100"));
        assert_eq!(
            (c2.action.clone(), c2.after_comment_line, c2.line),
            (SetAction::InsertedAfterComment, Some(60), 61)
        );
        assert_eq!(c2.new_text, "'*'");
        assert_eq!(c3.action, SetAction::InsertedAfterComment);
        let out = file.render();
        insta::assert_snapshot!(format!("set_three_{version}"), diff(text, &out));
        let reparsed = parse(&out);
        assert_eq!(reparsed.get("listen_addresses").unwrap().value, "*");
        assert_eq!(reparsed.get("port").unwrap().value, "4432");
        assert_eq!(reparsed.get("max_connections").unwrap().value, "110");
        // Running it again is a no-op that says so.
        assert_eq!(file.set("port", "4432").unwrap().action, SetAction::Unchanged);
        assert_eq!(file.render(), out);
    }
}

#[test]
fn set_keeps_crlf_bom_and_comments() {
    let mut file = parse(CRLF_BOM);
    file.set("listen_addresses", "localhost").unwrap();
    file.set("max_connections", "50").unwrap();
    file.set("work_mem", "16MB").unwrap();
    file.set("log_directory", r"D:\Logs").unwrap();
    let out = file.render();
    assert!(out.starts_with('\u{feff}'));
    assert_eq!(out.matches('\n').count(), out.matches("\r\n").count(), "only CRLF line breaks");
    insta::assert_snapshot!("set_crlf_bom", diff(CRLF_BOM, &out).replace('\r', "␍"));
}

#[test]
fn set_replaces_the_last_duplicate_and_reports_the_others() {
    let text = "port = 1\nPORT = 2 # second\nport = 3\t# third\n";
    let mut file = parse(text);
    let change = file.set("Port", "5433").unwrap();
    assert_eq!(change.line, 3);
    assert_eq!(change.earlier_duplicates, [1, 2]);
    assert_eq!(change.old_value.as_deref(), Some("3"));
    assert_eq!(file.render(), "port = 1\nPORT = 2 # second\nport = 5433\t# third\n");
}

#[test]
fn set_appends_with_the_files_line_endings() {
    let mut file = parse("a = 1");
    let change = file.set("b", "x y").unwrap();
    assert_eq!((change.action, change.line), (SetAction::Appended, 2));
    assert_eq!(file.render(), "a = 1\nb = 'x y'");
    let mut file = parse("a = 1\r\n");
    file.set("b", "2").unwrap();
    assert_eq!(file.render(), "a = 1\r\nb = 2\r\n");
    let mut file = parse("");
    file.set("b", "2").unwrap();
    assert_eq!(file.render(), "b = 2\n");
    // Prose that merely starts with the name is not a commented-out setting.
    let mut file = parse("# port forwarding is not used here\nx = 1\n");
    assert_eq!(file.set("port", "1").unwrap().action, SetAction::Appended);
}

#[test]
fn set_inserts_under_the_last_commented_out_line() {
    let mut file = parse("#port = 5432\n\n  ## port = 5433  # old\nz = 1");
    let change = file.set("port", "6000").unwrap();
    assert_eq!((change.after_comment_line, change.line), (Some(3), 4));
    assert_eq!(file.render(), "#port = 5432\n\n  ## port = 5433  # old\nport = 6000\nz = 1");
    let mut file = parse("x = 1\n#port = 5432");
    file.set("port", "6000").unwrap();
    assert_eq!(file.render(), "x = 1\n#port = 5432\nport = 6000");
}

#[test]
fn set_separates_a_value_glued_to_the_name() {
    let mut file = parse("application_name'x'\n");
    file.set("application_name", "y").unwrap();
    assert_eq!(file.render(), "application_name y\n");
    assert_eq!(file.get("application_name").unwrap().value, "y");
}

#[test]
fn set_refuses_bad_names_and_values() {
    let mut file = parse("");
    assert!(matches!(file.set("a b", "1"), Err(EditError::InvalidName(_))));
    assert!(matches!(file.set("a.b.c", "1"), Err(EditError::InvalidName(_))));
    assert!(matches!(file.set("", "1"), Err(EditError::InvalidName(_))));
    assert!(matches!(file.set("Include", "x"), Err(EditError::IncludeDirective(_))));
    assert!(matches!(file.set("a", "\0"), Err(EditError::NulInValue { .. })));
    assert_eq!(file.render(), "");
}

#[test]
fn remove_comments_out_every_active_line() {
    let mut file = parse("port = 1\r\n  Port = 2 # x\r\nwork_mem = 4MB\r\n");
    let change = file.remove("PORT").unwrap();
    assert_eq!(change.commented_out, [1, 2]);
    assert_eq!(file.render(), "#port = 1\r\n#  Port = 2 # x\r\nwork_mem = 4MB\r\n");
    assert!(file.get("port").is_none());
    assert!(file.remove("port").unwrap().commented_out.is_empty());
    // A later set goes right under the commented-out line.
    file.set("port", "3").unwrap();
    assert_eq!(file.render(), "#port = 1\r\n#  Port = 2 # x\r\nport = 3\r\nwork_mem = 4MB\r\n");
}

// ---------------------------------------------------------------- the include tree

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }
}

#[test]
fn tree_follows_includes_in_order_and_auto_conf_wins() {
    let d = Dir::new();
    d.write(
        "data/postgresql.conf",
        "port = 5432\ninclude 'extra.conf'\ninclude_dir 'conf.d'\ninclude_if_exists 'missing.conf'\nwork_mem = 8MB\n",
    );
    d.write("data/extra.conf", "port = 5433\nshared_buffers = 1GB\n");
    d.write("data/conf.d/10-b.conf", "port = 5434\n");
    d.write("data/conf.d/9-a.conf", "port = 5435\nwork_mem = 1MB\n");
    d.write("data/conf.d/B.conf", "max_connections = 300\n");
    d.write("data/conf.d/.hidden.conf", "port = 1\n");
    d.write("data/conf.d/notes.txt", "port = 2\n");
    d.write("data/conf.d/sub.conf/x.conf", "port = 3\n");
    d.write("data/postgresql.auto.conf", "# Do not edit this file manually!\nmax_connections = '200'\n");
    let tree = ConfTree::load(&d.path("data")).unwrap();
    let main = d.path("data/postgresql.conf");
    let conf_d = |n: &str| d.path("data/conf.d").join(n);

    let read: Vec<PathBuf> = tree.files().iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        read,
        [
            main.clone(),
            d.path("data/extra.conf"),
            conf_d("10-b.conf"),
            conf_d("9-a.conf"),
            conf_d("B.conf"),
            d.path("data/postgresql.auto.conf")
        ],
        "include_dir in byte order: digits before upper case, `10` before `9`; hidden, non-.conf and directories skipped"
    );

    let port = tree.effective("port").unwrap();
    assert_eq!(
        (port.file.clone(), port.line, port.value.as_str(), port.auto_conf),
        (conf_d("9-a.conf"), 1, "5435", false)
    );
    let overridden: Vec<(PathBuf, usize, &str)> =
        port.overridden.iter().map(|a| (a.file.clone(), a.line, a.value.as_str())).collect();
    assert_eq!(
        overridden,
        [(main.clone(), 1, "5432"), (d.path("data/extra.conf"), 1, "5433"), (conf_d("10-b.conf"), 1, "5434")]
    );

    // A line after an include overrides what the include set.
    assert_eq!(tree.effective("work_mem").unwrap().line, 5);

    let max = tree.effective("Max_Connections").unwrap();
    assert!(max.auto_conf && max.auto_conf_overrides_file());
    assert_eq!(max.value, "200");
    let target = tree.edit_target("max_connections");
    assert_eq!((target.file.clone(), target.line), (conf_d("B.conf"), Some(1)));
    assert_eq!(target.shadowed_by.map(|a| a.value), Some("200".to_owned()));
    let target = tree.edit_target("listen_addresses");
    assert_eq!((target.file, target.line, target.shadowed_by), (main.clone(), None, None));

    assert!(tree.effective("listen_addresses").is_none());
    assert_eq!(tree.notes().len(), 1);
    assert_eq!(tree.notes()[0].line, Some(4));
    assert!(tree.notes()[0].message.contains("skipping missing configuration file"));
    assert_eq!(tree.file(&d.path("data/extra.conf")).unwrap().get("shared_buffers").unwrap().value, "1GB");
}

#[test]
fn tree_from_a_main_file_elsewhere_uses_data_directory() {
    let d = Dir::new();
    let etc = d
        .write("etc/main/postgresql.conf", &format!("data_directory = '{}'\nport = 1\n", d.path("lib/main").display()));
    d.write("lib/main/postgresql.auto.conf", "port = 2\n");
    let tree = ConfTree::load(&etc).unwrap();
    assert_eq!(tree.data_dir(), d.path("lib/main"));
    assert_eq!(tree.effective("port").unwrap().value, "2");
    // Without data_directory the file's own directory is the data directory; no auto file is fine.
    let lone = d.write("lone/postgresql.conf", "port = 3\n");
    let tree = ConfTree::load(&lone).unwrap();
    assert_eq!(tree.effective("port").unwrap().value, "3");
    assert!(tree.notes().iter().any(|n| n.message.contains("postgresql.auto.conf")));
}

#[test]
fn tree_errors() {
    let d = Dir::new();
    let main = d.write("a/postgresql.conf", "include 'nope.conf'\n");
    let e = ConfTree::load(&main).unwrap_err();
    assert!(matches!(&e, LoadError::Read { from: Some(o), .. } if o.line == 1), "{e}");
    assert!(e.to_string().contains("nope.conf") && e.to_string().contains("hint: "), "{e}");

    let main = d.write("b/postgresql.conf", "include 'x.conf'\n");
    d.write("b/x.conf", "include_if_exists 'y.conf'\n");
    d.write("b/y.conf", "include '../b/x.conf'\n");
    let e = ConfTree::load(&main).unwrap_err();
    let LoadError::Cycle { chain, from, .. } = &e else { panic!("{e}") };
    assert_eq!(chain, &[d.path("b/x.conf"), d.path("b/y.conf"), d.path("b/x.conf")]);
    assert_eq!(from.file, d.path("b/y.conf"));

    let main = d.write("c/postgresql.conf", "include 'postgresql.conf'\n");
    assert!(matches!(ConfTree::load(&main), Err(LoadError::Cycle { .. })));

    let main = d.write("d/postgresql.conf", "include_dir 'none.d'\n");
    assert!(matches!(ConfTree::load(&main), Err(LoadError::ReadDir { .. })));

    let main = d.write("e/postgresql.conf", "include ' '\n");
    assert!(matches!(ConfTree::load(&main), Err(LoadError::EmptyName { kind: IncludeKind::Include, .. })));

    let main = d.write("f/postgresql.conf", "ok = 1\nport 'x' y\n");
    let e = ConfTree::load(&main).unwrap_err();
    assert!(matches!(&e, LoadError::Parse(p) if p.line == 2 && p.column == 10), "{e}");

    fs::write(d.path("g.conf"), b"port = '\xff'\n").unwrap();
    assert!(matches!(ConfTree::load(&d.path("g.conf")), Err(LoadError::NotUtf8 { offset: 8, .. })));
}

#[test]
fn tree_depth_limit_is_the_servers() {
    // Main file at depth 0 and ten nested includes load; an eleventh level is refused.
    for (levels, ok) in [(10, true), (11, false)] {
        let d = Dir::new();
        d.write("postgresql.conf", "include 'l1.conf'\n");
        for i in 1..=levels {
            let next = if i == levels { "port = 1\n".to_owned() } else { format!("include 'l{}.conf'\n", i + 1) };
            d.write(&format!("l{i}.conf"), &next);
        }
        let result = ConfTree::load(&d.path("postgresql.conf"));
        if ok {
            result.unwrap_or_else(|e| panic!("{levels} levels: {e}"));
        } else {
            let e = result.expect_err("eleven levels of includes must be refused");
            let LoadError::TooDeep { path, from } = &e else { panic!("{levels} levels: {e}") };
            assert_eq!(path, &d.path("l11.conf"), "{e}");
            assert_eq!((&from.file, from.line), (&d.path("l10.conf"), 1), "{e}");
        }
    }
}

#[test]
fn tree_notes_a_byte_order_mark() {
    let d = Dir::new();
    d.write("postgresql.conf", "\u{feff}port = 1\n");
    let tree = ConfTree::load(&d.path("postgresql.conf")).unwrap();
    assert!(tree.notes().iter().any(|n| n.message.contains("byte order mark")));
}

// ---------------------------------------------------------------- validation

fn info(name: &str, vartype: VarType, unit: Option<&str>, min: &str, max: &str) -> SettingInfo {
    SettingInfo {
        name: name.to_owned(),
        vartype,
        unit: unit.map(str::to_owned),
        min_val: (!min.is_empty()).then(|| min.to_owned()),
        max_val: (!max.is_empty()).then(|| max.to_owned()),
        enumvals: Vec::new(),
        context: "user".to_owned(),
    }
}

fn ok(value: &str, i: &SettingInfo) -> String {
    validate(value, i).unwrap_or_else(|e| panic!("{value:?}: {e}")).setting()
}

fn err(value: &str, i: &SettingInfo) -> String {
    validate(value, i).expect_err(value).to_string()
}

#[test]
fn booleans_like_parse_bool() {
    let fsync = info("fsync", VarType::Bool, None, "", "");
    for v in ["on", "ON", "t", "TR", "true", "y", "yes", "1"] {
        assert_eq!(validate(v, &fsync), Ok(Normalized::Bool { value: true }), "{v}");
    }
    for v in ["of", "off", "f", "false", "n", "no", "0"] {
        assert_eq!(validate(v, &fsync), Ok(Normalized::Bool { value: false }), "{v}");
    }
    assert_eq!(ok("of", &fsync), "off");
    assert_eq!(ok("Ye", &fsync), "on");
    for v in ["o", "", "2", "truex", "onn", " on", "01"] {
        assert_eq!(err(v, &fsync), "parameter \"fsync\" requires a Boolean value", "{v:?}");
    }
}

#[test]
fn integers_with_units_convert_and_round_like_the_server() {
    // Every expectation here is what PostgreSQL 12 and 16 printed for `postgres -C name -c name=value`.
    let work_mem = info("work_mem", VarType::Integer, Some("kB"), "64", "2147483647");
    let shared_buffers = info("shared_buffers", VarType::Integer, Some("8kB"), "16", "1073741823");
    let statement_timeout = info("statement_timeout", VarType::Integer, Some("ms"), "0", "2147483647");
    let naptime = info("autovacuum_naptime", VarType::Integer, Some("s"), "1", "2147483");
    let rotation = info("log_rotation_age", VarType::Integer, Some("min"), "0", "35791394");
    let max_wal = info("max_wal_size", VarType::Integer, Some("MB"), "2", "2147483647");
    let max_conn = info("max_connections", VarType::Integer, None, "1", "262143");
    let wal_buffers = info("wal_buffers", VarType::Integer, Some("8kB"), "-1", "262143");
    let cases: &[(&SettingInfo, &str, &str)] = &[
        (&work_mem, "1.5MB", "1536"),
        (&work_mem, "1.5 MB ", "1536"),
        (&work_mem, "1e3", "1000"),
        (&work_mem, "0x40", "64"),
        (&work_mem, "+64", "64"),
        (&work_mem, "2147483647kB", "2147483647"),
        (&shared_buffers, "1000kB", "125"),
        (&shared_buffers, "128MB", "16384"),
        (&shared_buffers, "1TB", "134217728"),
        (&statement_timeout, "1.5", "2"),
        (&statement_timeout, "2.5", "2"),
        (&statement_timeout, "0.5", "0"),
        (&statement_timeout, "1.5us", "0"),
        (&statement_timeout, "1500us", "2"),
        (&statement_timeout, "5min", "300000"),
        (&statement_timeout, "1d", "86400000"),
        (&naptime, "1.5min", "90"),
        (&naptime, "1499ms", "1"),
        (&rotation, "90s", "2"),
        (&rotation, "1.5h", "90"),
        (&max_wal, "1.5GB", "1536"),
        (&max_conn, "010", "8"),
        (&max_conn, " 7 ", "7"),
        (&wal_buffers, "-1", "-1"),
        (&wal_buffers, "1GB", "131072"),
    ];
    for (i, value, expect) in cases {
        assert_eq!(ok(value, i), *expect, "{} = {value:?}", i.name);
    }
    let errors: &[(&SettingInfo, &str, &str)] = &[
        (&max_conn, "abc", "invalid value for parameter \"max_connections\": \"abc\""),
        (&max_conn, "0", "0 is outside the valid range for parameter \"max_connections\" (1 .. 262143)"),
        (&max_conn, "-0", "0 is outside the valid range for parameter \"max_connections\" (1 .. 262143)"),
        (&max_conn, "5kB", "invalid value for parameter \"max_connections\": \"5kB\""),
        (&max_conn, "inf", "invalid value for parameter \"max_connections\": \"inf\""),
        (
            &shared_buffers,
            "100kB",
            "12 8kB is outside the valid range for parameter \"shared_buffers\" (16 .. 1073741823)",
        ),
        (&work_mem, "1000B", "1 kB is outside the valid range for parameter \"work_mem\" (64 .. 2147483647)"),
        (&work_mem, "1536B", "2 kB is outside the valid range for parameter \"work_mem\" (64 .. 2147483647)"),
        (&naptime, "500ms", "0 s is outside the valid range for parameter \"autovacuum_naptime\" (1 .. 2147483)"),
        (&max_wal, "100kB", "0 MB is outside the valid range for parameter \"max_wal_size\" (2 .. 2147483647)"),
        (
            &work_mem,
            "64mb",
            "invalid value for parameter \"work_mem\": \"64mb\"\n\nhint: Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".",
        ),
        (
            &work_mem,
            "1.5MBx",
            "invalid value for parameter \"work_mem\": \"1.5MBx\"\n\nhint: Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".",
        ),
        (
            &statement_timeout,
            "5sec",
            "invalid value for parameter \"statement_timeout\": \"5sec\"\n\nhint: Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".",
        ),
        (
            &work_mem,
            "2048GB",
            "invalid value for parameter \"work_mem\": \"2048GB\"\n\nhint: Value exceeds integer range.",
        ),
        (
            &work_mem,
            "99999999999",
            "invalid value for parameter \"work_mem\": \"99999999999\"\n\nhint: Value exceeds integer range.",
        ),
    ];
    for (i, value, expect) in errors {
        assert_eq!(err(value, i), *expect, "{} = {value:?}", i.name);
    }
    let e = validate("5XB", &work_mem).unwrap_err();
    assert_eq!(e.message, "invalid value for parameter \"work_mem\": \"5XB\"");
    assert!(e.hint.is_some());
}

#[test]
fn reals_like_parse_real() {
    let rpc = info("random_page_cost", VarType::Real, None, "0", "1.79769e+308");
    let delay = info("vacuum_cost_delay", VarType::Real, Some("ms"), "0", "100");
    let frac = info("cursor_tuple_fraction", VarType::Real, None, "0", "1");
    assert_eq!(ok("0x10", &rpc), "16");
    assert_eq!(ok("1.1", &rpc), "1.1");
    assert_eq!(ok(".5e1", &rpc), "5");
    assert_eq!(ok("1500us", &delay), "1.5");
    assert_eq!(ok("0.1", &frac), "0.1");
    assert_eq!(err("-1", &rpc), "-1 is outside the valid range for parameter \"random_page_cost\" (0 .. 1.79769e+308)");
    assert_eq!(
        err("inf", &rpc),
        "Infinity is outside the valid range for parameter \"random_page_cost\" (0 .. 1.79769e+308)"
    );
    assert_eq!(err("nan", &rpc), "invalid value for parameter \"random_page_cost\": \"nan\"");
    assert_eq!(err("1e400", &rpc), "invalid value for parameter \"random_page_cost\": \"1e400\"");
    assert_eq!(err("500", &delay), "500 ms is outside the valid range for parameter \"vacuum_cost_delay\" (0 .. 100)");
    assert_eq!(
        err("1.5s", &delay),
        "1500 ms is outside the valid range for parameter \"vacuum_cost_delay\" (0 .. 100)"
    );
    assert_eq!(err("2", &frac), "2 is outside the valid range for parameter \"cursor_tuple_fraction\" (0 .. 1)");
}

#[test]
fn enums_case_insensitive_with_hidden_aliases() {
    let mut wal_level = info("wal_level", VarType::Enum, None, "", "");
    wal_level.enumvals = vec!["minimal".into(), "replica".into(), "logical".into()];
    wal_level.context = "postmaster".into();
    assert_eq!(ok("LOGICAL", &wal_level), "logical");
    assert_eq!(ok("hot_standby", &wal_level), "replica");
    assert_eq!(ok("archive", &wal_level), "replica");
    assert_eq!(
        err("HOT", &wal_level),
        "invalid value for parameter \"wal_level\": \"HOT\"\n\nhint: Available values: minimal, replica, logical."
    );
    assert!(needs_restart(&wal_level));
    let mut sync = info("synchronous_commit", VarType::Enum, None, "", "");
    sync.enumvals = ["local", "remote_write", "remote_apply", "on", "off"].map(String::from).to_vec();
    assert_eq!(ok("yes", &sync), "on");
    assert_eq!(ok("0", &sync), "off");
    assert_eq!(
        err("t", &sync),
        "invalid value for parameter \"synchronous_commit\": \"t\"\n\nhint: Available values: local, remote_write, remote_apply, on, off.",
        "no prefixes for enums"
    );
    assert!(!needs_restart(&sync));
    let mut wal_compression = info("wal_compression", VarType::Enum, None, "", "");
    wal_compression.enumvals = ["pglz", "lz4", "on", "off"].map(String::from).to_vec();
    assert_eq!(ok("true", &wal_compression), "pglz");
    let mut pe = info("password_encryption", VarType::Enum, None, "", "");
    pe.enumvals = ["md5", "scram-sha-256"].map(String::from).to_vec();
    assert_eq!(
        err("on", &pe),
        "invalid value for parameter \"password_encryption\": \"on\"\n\nhint: Available values: md5, scram-sha-256.",
        "refused on 14+; the 12–13 alias is not modelled"
    );
    let s = info("search_path", VarType::String, None, "", "");
    assert_eq!(ok("\"$user\", public", &s), "\"$user\", public");
}

#[test]
fn format_g_matches_printf() {
    let cases = [
        (0.0, "0"),
        (1.5, "1.5"),
        (100.0, "100"),
        (0.1, "0.1"),
        (123456.0, "123456"),
        (1234567.0, "1.23457e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (f64::MAX, "1.79769e+308"),
        (-2.5, "-2.5"),
        (f64::INFINITY, "Infinity"),
    ];
    for (v, expect) in cases {
        assert_eq!(format_g(v), expect);
    }
}

// The serde derives must hold (the CLI prints these): checked when this file compiles, not by a test run.
const _: fn() = || {
    fn is_serialize<T: serde::Serialize>() {}
    is_serialize::<Setting>();
    is_serialize::<Entry>();
    is_serialize::<SetChange>();
    is_serialize::<RemoveChange>();
    is_serialize::<Source>();
    is_serialize::<EditTarget>();
    is_serialize::<Note>();
    is_serialize::<TreeFile>();
    is_serialize::<Normalized>();
    is_serialize::<InvalidValue>();
    is_serialize::<SettingInfo>();
};

// ---------------------------------------------------------------- property tests

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,12}",
        "[A-Za-z_][A-Za-z0-9_]{0,6}\\.[a-z_][a-z0-9_]{0,6}",
        Just("max_connections".to_owned()),
        Just("Port".to_owned()),
    ]
    .prop_filter("not an include keyword", |n| {
        !matches!(n.to_ascii_lowercase().as_str(), "include" | "include_if_exists" | "include_dir")
    })
}

fn raw_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,8}",
        "[-+]?[0-9]{1,6}(kB|MB|GB|ms|s|min|h|d)?",
        "0x[0-9a-f]{1,4}",
        "[-+]?[0-9]{0,3}\\.[0-9]{0,3}",
        "[a-z][a-z0-9/.:_-]{0,10}[a-z0-9]\\.[a-z0-9]{1,3}[-/]",
        // Quoted: plain text, doubled quotes, backslash escapes, `#`, tabs and CRs inside.
        "'([a-zA-Z0-9 #*,./:\t\r\u{e9}-]|''|\\\\[nrtbf'\\\\0-7a-z]){0,12}'",
    ]
}

fn line() -> impl Strategy<Value = String> {
    let ws = "[ \t]{0,3}";
    prop_oneof![
        3 => (ws, name(), ws, prop_oneof![Just("="), Just(" "), Just("\t")], ws, raw_value(), ws, proptest::option::of("#[ -~\t]{0,15}"))
            .prop_map(|(a, n, b, eq, c, v, d, comment)| format!("{a}{n}{b}{eq}{c}{v}{d}{}", comment.unwrap_or_default())),
        1 => "[ \t]{0,3}(#[ -~\t]{0,20})?",
        1 => (name(), raw_value()).prop_map(|(n, v)| format!("#{n} = {v}")),
        1 => (prop_oneof![Just("include"), Just("INCLUDE_IF_EXISTS"), Just("include_dir")], "'[a-z./]{1,10}'")
            .prop_map(|(k, p)| format!("{k} {p}")),
    ]
}

fn file_text() -> impl Strategy<Value = String> {
    (any::<bool>(), any::<bool>(), any::<bool>(), proptest::collection::vec(line(), 0..12)).prop_map(
        |(bom, crlf, final_newline, lines)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = if bom { "\u{feff}".to_owned() } else { String::new() };
            text.push_str(&lines.join(eol));
            if final_newline && !lines.is_empty() {
                text.push_str(eol);
            }
            text
        },
    )
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![raw_value(), "[ -~\t\n\\\\']{0,12}", "\\PC{0,6}"].prop_filter("no NUL", |v| !v.contains('\0'))
}

proptest! {
    #[test]
    fn render_of_parse_is_identity(text in file_text()) {
        let file = ConfFile::parse(&text, Path::new("p.conf")).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        prop_assert_eq!(file.render(), text);
    }

    #[test]
    fn set_changes_only_its_target_lines(text in file_text(), n in name(), v in any_value()) {
        let mut file = ConfFile::parse(&text, Path::new("p.conf")).unwrap();
        let before: Vec<(String, String)> = values(&file);
        let change = file.set(&n, &v).unwrap();
        let out = file.render();
        // The file reads back with the new value, through the same parser the server's scanner mirrors.
        let reread = ConfFile::parse(&out, Path::new("p.conf")).map_err(|e| TestCaseError::fail(format!("{e}\n{out:?}")))?;
        prop_assert_eq!(reread.get(&n).map(|s| s.value.clone()), Some(v.clone()));
        // Every other setting is untouched, and so is every line but the target.
        let key = canonical_name(&n);
        let others = |vals: Vec<(String, String)>| vals.into_iter().filter(|(k, _)| canonical_name(k) != key).collect::<Vec<_>>();
        prop_assert_eq!(others(before.clone()), others(values(&reread)));
        let old_lines: Vec<&str> = text.split('\n').collect();
        let new_lines: Vec<&str> = out.split('\n').collect();
        match change.action {
            SetAction::Unchanged => prop_assert_eq!(&out, &text),
            SetAction::Replaced => {
                prop_assert_eq!(old_lines.len(), new_lines.len());
                for (i, (a, b)) in old_lines.iter().zip(&new_lines).enumerate() {
                    if i + 1 != change.line {
                        prop_assert_eq!(a, b);
                    }
                }
            }
            SetAction::InsertedAfterComment | SetAction::Appended => {
                let mut without = new_lines.clone();
                without.remove(change.line - 1);
                let mut expected = old_lines.clone();
                // Appending to a file without a final line break moves the (empty) tail, nothing else.
                if change.action == SetAction::Appended && without.len() != expected.len() {
                    expected.retain(|l| !l.is_empty() || !text.is_empty());
                    without.retain(|l| !l.is_empty() || !text.is_empty());
                }
                let strip = |v: Vec<&str>| v.into_iter().map(|l| l.trim_end_matches('\r').trim_start_matches('\u{feff}').to_owned()).filter(|l| !l.is_empty()).collect::<Vec<_>>();
                prop_assert_eq!(strip(expected), strip(without));
            }
        }
        prop_assert_eq!(reread.has_bom(), file.has_bom());
    }

    #[test]
    fn remove_then_nothing_is_set(text in file_text(), n in name()) {
        let mut file = ConfFile::parse(&text, Path::new("p.conf")).unwrap();
        let others: Vec<_> = values(&file).into_iter().filter(|(k, _)| canonical_name(k) != canonical_name(&n)).collect();
        file.remove(&n).unwrap();
        prop_assert!(file.get(&n).is_none());
        let left: Vec<_> = values(&file);
        prop_assert_eq!(left, others);
    }

    #[test]
    fn format_value_reads_back(v in any_value()) {
        let text = format!("x = {}\n", format_value(&v).unwrap());
        let file = ConfFile::parse(&text, Path::new("p.conf")).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        prop_assert_eq!(&file.get("x").unwrap().value, &v);
    }
}
