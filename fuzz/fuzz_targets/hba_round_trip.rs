//! Any text pg_hba.conf parses must render back byte for byte, and adding a rule must leave a file that
//! parses again and still holds every earlier line unchanged.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use qrd_conf::hba::{Address, ConnType, HbaFile, Method, Record, Token};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut file) = HbaFile::parse(text, Path::new("pg_hba.conf")) else { return };
    assert_eq!(file.render(), text, "round trip");
    let explained = file.records().count();
    let rule = Record::new(
        ConnType::Host,
        vec![Token::name("QSR")],
        vec![Token::name("qliksenserepository")],
        Some(Address::parse("127.0.0.2/32").expect("valid")),
        Method::ScramSha256,
    );
    if file.push(&rule).is_ok() {
        let out = file.render();
        let again = HbaFile::parse(&out, Path::new("pg_hba.conf")).expect("an edited file parses");
        assert_eq!(again.records().count(), explained + 1);
        assert!(out.starts_with(text), "appending keeps every byte before it");
    }
});
