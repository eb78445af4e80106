//! A stopped server's `pg_control` as `pg_controldata` of its own major reads it: the cluster state and the
//! latest checkpoint. pg_controldata knows the file's layout in every release and checks its CRC; it prints
//! English field names only with `LC_ALL=C` (its messages are translated), so it runs with that.

use std::path::Path;

use qrd_pgbin::{FoundTool, run, scrubbed_command};

use crate::error::ReplicaError;

/// The cluster state of a server that shut down cleanly (`DB_SHUTDOWNED`).
pub const SHUT_DOWN: &str = "shut down";

/// What qrd needs from pg_control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlData {
    /// `Database cluster state`: `shut down`, `in production`, `shut down in recovery` …
    pub state: String,
    /// `Latest checkpoint location`, as PostgreSQL writes an LSN (`0/3000028`).
    pub checkpoint: String,
    /// `Latest checkpoint's TimeLineID`.
    pub timeline: u32,
}

/// Runs `pg_controldata` (a tool of the data directory's exact major) on `dir`.
pub async fn read(pg_controldata: &FoundTool, dir: &Path) -> Result<ControlData, ReplicaError> {
    let mut cmd = scrubbed_command(&pg_controldata.path);
    cmd.arg(dir).env("LC_ALL", "C").env_remove("LANGUAGE").current_dir("/");
    let out = run(cmd, "read the stopped server's pg_control (pg_controldata)").await?;
    parse(&String::from_utf8_lossy(&out.stdout))
        .map_err(|message| ReplicaError::ControlData { dir: dir.to_path_buf(), message })
}

/// Reads pg_controldata's `Field: value` lines. Its warnings (a CRC that does not match, a byte order
/// it cannot read) come on stdout before the fields: any of them makes the values worthless.
pub fn parse(text: &str) -> Result<ControlData, String> {
    if let Some(warning) = text.lines().find(|l| l.starts_with("WARNING")) {
        let rest: Vec<&str> = text.lines().skip_while(|l| *l != warning).take_while(|l| !l.is_empty()).collect();
        return Err(rest.join(" "));
    }
    let field = |name: &str| -> Result<String, String> {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
            .ok_or_else(|| format!("no {name:?} line in its output"))
    };
    let checkpoint = field("Latest checkpoint location")?;
    if !is_lsn(&checkpoint) {
        return Err(format!("the latest checkpoint location {checkpoint:?} is not an LSN"));
    }
    let timeline = field("Latest checkpoint's TimeLineID")?;
    Ok(ControlData {
        state: field("Database cluster state")?,
        checkpoint,
        timeline: timeline.parse().map_err(|_| format!("the timeline {timeline:?} is not a number"))?,
    })
}

/// `16/B374D848`: two hexadecimal numbers.
fn is_lsn(s: &str) -> bool {
    s.split_once('/').is_some_and(|(hi, lo)| {
        [hi, lo].iter().all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pg_controldata 15 of a cleanly stopped cluster (with LC_ALL=C), cut after the fields qrd reads.
    const STOPPED: &str = "pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7715077620993745186
Database cluster state:               shut down
pg_control last modified:             Thu Dec  3 14:01:30 2026
Latest checkpoint location:           0/1500718
Latest checkpoint's REDO location:    0/1500718
Latest checkpoint's REDO WAL file:    000000010000000000000001
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
Latest checkpoint's oldestCommitTsXid:0
Time of latest checkpoint:            Thu Dec  3 14:01:30 2026
";

    #[test]
    fn a_clean_stop_reads_as_shut_down_with_its_checkpoint() {
        let c = parse(STOPPED).unwrap();
        assert_eq!(c, ControlData { state: SHUT_DOWN.into(), checkpoint: "0/1500718".into(), timeline: 1 });
    }

    #[test]
    fn a_running_or_crashed_server_reads_as_such() {
        let c = parse(&STOPPED.replace("shut down", "in production")).unwrap();
        assert_eq!(c.state, "in production");
    }

    /// A damaged pg_control: pg_controldata warns on stdout and still prints (garbage) values.
    #[test]
    fn a_crc_mismatch_is_an_error_not_values() {
        let damaged = format!(
            "WARNING: Calculated CRC checksum does not match value stored in file.\nEither the file is corrupt, \
             or it has a different layout than this program\nis expecting.  The results below are untrustworthy.\n\n{STOPPED}"
        );
        let e = parse(&damaged).unwrap_err();
        assert!(e.starts_with("WARNING: Calculated CRC checksum does not match"), "{e}");
        assert!(e.contains("untrustworthy"), "{e}");
    }

    #[test]
    fn output_without_the_fields_is_an_error() {
        assert_eq!(parse("").unwrap_err(), "no \"Latest checkpoint location\" line in its output");
        let e = parse(
            &STOPPED.replace("0/1500718\nLatest checkpoint's REDO location", "x\nLatest checkpoint's REDO location"),
        )
        .unwrap_err();
        assert!(e.contains("is not an LSN"), "{e}");
    }
}
