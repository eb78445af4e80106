//! `qrd conf` on real servers: edits land in the file the server reads, values are checked against
//! pg_settings first, reloads are confirmed, restarts are named or done.

use crate::common::*;

fn show(server: &Server, name: &str) -> String {
    block_on(async { server.connect("postgres").await.query_one(&format!("SHOW {name}"), &[]).await.unwrap().get(0) })
}

fn set_edits_the_file_reloads_and_restarts(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let conf = server.data_dir().join("postgresql.conf");
    let before = std::fs::read_to_string(&conf).unwrap();

    // Dry run: a diff, no change.
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=8MB", "--dry-run"]), 0);
    assert!(stdout(&out).contains("+work_mem = 8MB"), "{}", stdout(&out));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    // A value the server would refuse: refused with the server's wording, nothing written.
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "max_connections=lots"]), 4);
    assert!(stderr(&out).contains("invalid value for parameter \"max_connections\""), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    // A reloadable setting takes effect at once; a postmaster one is pending until a restart.
    let out = run_expect(qrd(&server, &scratch).args(["conf", "set", "work_mem=8MB", "max_connections=120"]), 0);
    assert!(stderr(&out).contains("restart needed for: max_connections"), "{}", stderr(&out));
    assert_eq!(show(&server, "work_mem"), "8MB");
    assert_eq!(show(&server, "max_connections"), "100");
    let after = std::fs::read_to_string(&conf).unwrap();
    assert!(after.lines().any(|l| l.starts_with("max_connections = 120")), "{after}");
    let backups: Vec<_> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("postgresql.conf.qrd-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read_to_string(server.data_dir().join(&backups[0])).unwrap(), before);

    // Again: nothing to write. With --restart, pg_ctl restarts the server as its owner.
    // (The harness's port stands in for 4432: the test must still find its server after the restart.)
    let port = server.port().to_string();
    let tune = ["conf", "tune", "--nodes", "2", "--listen", "127.0.0.1", "--set-port", &port];
    let out = run_expect(qrd(&server, &scratch).args(tune), 0);
    assert!(stderr(&out).contains("max_connections = 2 × (90 + 20) = 220"), "{}", stderr(&out));
    assert!(stderr(&out).contains("restart needed for: max_connections"), "{}", stderr(&out));
    let bin = server.installation().server_bin.clone();
    let out = run_expect(qrd(&server, &scratch).args(tune).arg("--restart").arg("--pg-bin-dir").arg(bin), 0);
    assert!(stderr(&out).contains("nothing to write"), "{}", stderr(&out));
    assert!(stderr(&out).contains("restarted"), "{}", stderr(&out));
    assert_eq!(show(&server, "max_connections"), "220");
    assert_eq!(show(&server, "listen_addresses"), "127.0.0.1");
    let conf_now = std::fs::read_to_string(&conf).unwrap();
    assert!(conf_now.lines().any(|l| l.starts_with("max_connections = 220")), "{conf_now}");
}
every_run!(set_edits_the_file_reloads_and_restarts);
