//! Planning a change of settings across the configuration tree: each setting is edited where the server
//! reads it last outside `postgresql.auto.conf` (an included file, possibly), so the edit is not silently
//! overridden by a later line; one [`FileEdit`] per file touched, in the order the files were first touched.
//!
//! `qrd conf set` and `qrd ssl enable/disable` both plan their postgresql.conf edits here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::pgconf::{ConfFile, ConfTree, EditError, SetChange, parse_bool};
use crate::write::FileEdit;

/// How to treat settings whose value is already what is asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Leave a setting alone when its effective value already says the same (booleans compared as the
    /// server reads them: `on` = `true` = `1`), including when that value comes from `ALTER SYSTEM`.
    /// Without it every setting is written to its file (an unchanged line stays byte for byte), and any
    /// `ALTER SYSTEM` value that would override the file is refused.
    pub skip_effective: bool,
}

/// The planned edits and what the planner noticed.
#[derive(Debug, Clone, Default)]
pub struct ConfPlan {
    pub edits: Vec<FileEdit>,
    /// One per setting written: where, and what the file said before.
    pub changes: Vec<(PathBuf, SetChange)>,
}

impl ConfPlan {
    /// The edits that really change a file.
    pub fn changed(&self) -> impl Iterator<Item = &FileEdit> {
        self.edits.iter().filter(|e| e.is_change())
    }

    pub fn is_change(&self) -> bool {
        self.changed().next().is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `ALTER SYSTEM` (postgresql.auto.conf) sets the name to something else, and wins over every file.
    #[error(
        "{name} is set with ALTER SYSTEM ({}:{line}, value {value:?}), which overrides postgresql.conf",
        file.display()
    )]
    ShadowedByAlterSystem { name: String, file: PathBuf, line: usize, value: String },
    #[error("{}: {source}", file.display())]
    Edit {
        file: PathBuf,
        #[source]
        source: EditError,
    },
    #[error("{} is not part of the configuration tree", .0.display())]
    NotInTree(PathBuf),
}

/// Plans `wanted` (name, value) over `tree`. Nothing is written.
pub fn plan_settings(tree: &ConfTree, wanted: &[(String, String)], opts: PlanOptions) -> Result<ConfPlan, PlanError> {
    let mut edited: BTreeMap<PathBuf, ConfFile> = BTreeMap::new();
    let mut order: Vec<PathBuf> = Vec::new();
    let mut changes = Vec::new();
    for (name, value) in wanted {
        let target = tree.edit_target(name);
        if let Some(a) = &target.shadowed_by {
            if opts.skip_effective && same_value(&a.value, value) {
                continue;
            }
            return Err(PlanError::ShadowedByAlterSystem {
                name: name.clone(),
                file: a.file.clone(),
                line: a.line,
                value: a.value.clone(),
            });
        }
        if opts.skip_effective && tree.effective(name).is_some_and(|s| same_value(&s.value, value)) {
            continue;
        }
        if !edited.contains_key(&target.file) {
            let f = tree.file(&target.file).cloned().ok_or_else(|| PlanError::NotInTree(target.file.clone()))?;
            edited.insert(target.file.clone(), f);
            order.push(target.file.clone());
        }
        let file = edited.get_mut(&target.file).expect("inserted above");
        let change = file.set(name, value).map_err(|source| PlanError::Edit { file: target.file.clone(), source })?;
        changes.push((target.file.clone(), change));
    }
    let edits = order
        .into_iter()
        .map(|path| {
            let before = tree.file(&path).map(ConfFile::render).unwrap_or_default();
            let after = edited[&path].render();
            FileEdit::new(path, before, after)
        })
        .collect();
    Ok(ConfPlan { edits, changes })
}

/// The same value as the server would read it: booleans by meaning, everything else by text.
fn same_value(have: &str, want: &str) -> bool {
    match (parse_bool(have), parse_bool(want)) {
        (Some(a), Some(b)) => a == b,
        _ => have == want,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn tree(dir: &Path, main: &str, auto: &str) -> ConfTree {
        std::fs::write(dir.join("postgresql.conf"), main).unwrap();
        std::fs::write(dir.join("postgresql.auto.conf"), auto).unwrap();
        std::fs::write(dir.join("extra.conf"), "ssl_ciphers = 'HIGH'\n").unwrap();
        ConfTree::load_with_data_dir(&dir.join("postgresql.conf"), dir).unwrap()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn each_setting_goes_where_it_takes_effect() {
        let dir = tempfile::tempdir().unwrap();
        let t = tree(dir.path(), "ssl = off\ninclude 'extra.conf'\n", "");
        let plan =
            plan_settings(&t, &pairs(&[("ssl", "on"), ("ssl_ciphers", "DEFAULT")]), PlanOptions::default()).unwrap();
        let files: Vec<_> = plan.edits.iter().map(|e| e.path.file_name().unwrap().to_owned()).collect();
        assert_eq!(files, ["postgresql.conf", "extra.conf"]);
        assert!(plan.edits[0].after.contains("ssl = on"), "{}", plan.edits[0].after);
        assert!(plan.edits[1].after.contains("ssl_ciphers = DEFAULT"), "{}", plan.edits[1].after);
    }

    #[test]
    fn skip_effective_leaves_equal_values_alone_booleans_by_meaning() {
        let dir = tempfile::tempdir().unwrap();
        let t = tree(dir.path(), "ssl = true\nport = 4432\n", "");
        let opts = PlanOptions { skip_effective: true };
        let plan = plan_settings(&t, &pairs(&[("ssl", "on"), ("port", "4432")]), opts).unwrap();
        assert!(plan.edits.is_empty(), "{:?}", plan.edits);
        // Without it, the line is visited (and stays byte for byte).
        let plan = plan_settings(&t, &pairs(&[("ssl", "on")]), PlanOptions::default()).unwrap();
        assert_eq!(plan.edits.len(), 1);
    }

    #[test]
    fn alter_system_refuses_unless_it_already_says_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let t = tree(dir.path(), "ssl = off\n", "ssl = 'on'\n");
        let err = plan_settings(&t, &pairs(&[("ssl", "off")]), PlanOptions { skip_effective: true }).unwrap_err();
        assert!(matches!(err, PlanError::ShadowedByAlterSystem { ref name, .. } if name == "ssl"), "{err}");
        let plan = plan_settings(&t, &pairs(&[("ssl", "1")]), PlanOptions { skip_effective: true }).unwrap();
        assert!(plan.edits.is_empty());
        // `conf set` (no skipping) refuses even an equal value: the file edit would change nothing.
        let err = plan_settings(&t, &pairs(&[("ssl", "on")]), PlanOptions::default()).unwrap_err();
        assert!(
            matches!(&err, PlanError::ShadowedByAlterSystem { name, line: 1, value, .. } if name == "ssl" && value == "on"),
            "{err}"
        );
    }
}
