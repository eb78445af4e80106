//! The undo journal of a change made of several steps (files edited, files installed, directories made),
//! so that a failure part-way puts back everything done so far, last first — and says what it could not
//! put back instead of dropping it.

use std::path::PathBuf;

use qrd_conf::write::{Applied, Installed, WriteError};
use qrd_pg::Session;
use qrd_pg::serverconf;

#[derive(Debug)]
enum Step {
    Edited(Applied),
    Installed(Installed),
    CreatedDir(PathBuf),
}

/// What a change did so far, in order.
#[derive(Debug, Default)]
pub struct Journal {
    steps: Vec<Step>,
}

/// A step that could not be undone.
#[derive(Debug, thiserror::Error)]
#[error("could not put back {}: {reason}{}", path.display(), backup.as_ref().map(|b| format!(" (its previous content is in {})", b.display())).unwrap_or_default())]
pub struct UndoProblem {
    pub path: PathBuf,
    /// Where the previous content still is, for the DBA to copy back by hand.
    pub backup: Option<PathBuf>,
    pub reason: String,
}

impl Journal {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// A configuration file edit ([`qrd_conf::write::FileEdit::apply`]).
    pub fn edited(&mut self, a: Applied) {
        self.steps.push(Step::Edited(a));
    }

    /// A file installed whole ([`qrd_conf::write::install`]).
    pub fn installed(&mut self, i: Installed) {
        self.steps.push(Step::Installed(i));
    }

    /// A directory that did not exist before (removed with its contents on undo).
    pub fn created_dir(&mut self, dir: PathBuf) {
        self.steps.push(Step::CreatedDir(dir));
    }

    /// Appends another journal's steps (they happened after this one's).
    pub fn append(&mut self, other: Journal) {
        self.steps.extend(other.steps);
    }

    /// Undoes every step, last first, without stopping at a problem; then, with `reload`, has the server
    /// reload what is back. Returns what could not be undone (empty when everything is as before).
    #[must_use = "the problems say what the DBA must put back by hand"]
    pub async fn undo(self, reload: Option<&Session>) -> Vec<UndoProblem> {
        let mut problems = self.undo_files();
        if let Some(session) = reload
            && let Err(e) = serverconf::reload(session).await
        {
            problems.push(UndoProblem {
                path: "the server's configuration".into(),
                backup: None,
                reason: e.to_string(),
            });
        }
        if problems.is_empty() {
            tracing::info!(
                "rolled back: the previous files are in place{}",
                if reload.is_some() { " and the server reloaded them" } else { "" }
            );
        }
        problems
    }

    /// [`Journal::undo`] without a server.
    #[must_use = "the problems say what the DBA must put back by hand"]
    pub fn undo_files(self) -> Vec<UndoProblem> {
        let mut problems = Vec::new();
        for step in self.steps.into_iter().rev() {
            let (path, backup, result): (PathBuf, Option<PathBuf>, Result<(), WriteError>) = match &step {
                Step::Edited(a) => (a.path.clone(), Some(a.backup.clone()), a.undo()),
                Step::Installed(i) => (i.path.clone(), i.backup.clone(), i.undo()),
                Step::CreatedDir(d) => (
                    d.clone(),
                    None,
                    std::fs::remove_dir_all(d).map_err(|source| WriteError::Io {
                        what: "cannot remove",
                        path: d.clone(),
                        source,
                    }),
                ),
            };
            if let Err(e) = result {
                problems.push(UndoProblem { path, backup, reason: e.to_string() });
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use qrd_conf::write::{FileEdit, Perms, install};

    use super::*;

    #[test]
    fn undo_puts_back_every_step_last_first_and_reports_what_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::fs::metadata(dir.path()).unwrap();
        let perms = Perms { mode: 0o600, uid: me.uid(), gid: me.gid() };
        let conf = dir.path().join("postgresql.conf");
        std::fs::write(&conf, "ssl = off\n").unwrap();
        let saved = dir.path().join("saved");
        std::fs::create_dir(&saved).unwrap();

        let mut j = Journal::new();
        j.created_dir(saved.clone());
        j.installed(install(&dir.path().join("server.pem"), b"cert", perms).unwrap());
        j.edited(FileEdit::new(&conf, "ssl = off\n", "ssl = on\n").apply().unwrap());
        assert!(j.undo_files().is_empty());
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), "ssl = off\n");
        assert!(!dir.path().join("server.pem").exists());
        assert!(!saved.exists());

        // A step that cannot be undone is reported with where its content is, and the others still run.
        let mut j = Journal::new();
        j.installed(install(&dir.path().join("root.pem"), b"ca", perms).unwrap());
        let a = FileEdit::new(&conf, "ssl = off\n", "ssl = on\n").apply().unwrap();
        std::fs::remove_file(&a.backup).unwrap();
        j.edited(a.clone());
        let problems = j.undo_files();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, a.path);
        assert!(!dir.path().join("root.pem").exists(), "the other step was undone anyway");
    }
}
