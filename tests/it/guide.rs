//! Equivalence with the vendor guide: one server provisioned by qrd, another by the guide's own script for
//! PostgreSQL 15/16 run with psql (ON_ERROR_STOP); role attributes, memberships, owners, encodings and the
//! raw ACLs of every database and of each public schema must be equal.

use crate::common::*;

const GUIDE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/guide-pg15-16.sql");

fn qrd_equals_the_guide(major: u32) {
    let (by_qrd, by_guide) = (Server::start(major), Server::start(major));
    let scratch = Scratch::new();
    provision(&by_qrd, &scratch, "Same-pw-1");

    let out = run(by_guide.psql("postgres").args(["-v", "repo_password=Same-pw-1", "-f", GUIDE_SCRIPT]));
    assert!(out.status.success(), "the guide's script failed: {}", stderr(&out));

    let (a, b) = (block_on(catalog_state(&by_qrd, ROLE)), block_on(catalog_state(&by_guide, ROLE)));
    assert_eq!(a, b, "qrd and the guide's script disagree");
    assert_eq!(a.databases.len(), 4);
    // The same password works on both.
    block_on(async {
        can_login(&by_qrd, "QSR", ROLE, "Same-pw-1").await.unwrap();
        can_login(&by_guide, "QSR", ROLE, "Same-pw-1").await.unwrap();
    });
    // And qrd sees nothing to do on the guide's server.
    let out = provision(&by_guide, &scratch, "Same-pw-1");
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
}
all_majors!(qrd_equals_the_guide);
