//! Rule-level edits a DBA asks for: add a rule where it takes effect (or says it is already there), remove
//! rules, and the guide's "let the Qlik nodes in" step as one rule per node.

use serde::Serialize;

use super::file::{EditError, HbaFile, RecordMatch};
use super::{Address, AddressError, ConnType, Method, Record, Token};

/// Where [`HbaFile::add_rule`] puts a new rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// [`HbaFile::default_position`]: before the first rule of its kind, never above an overlapping reject.
    Default,
    /// At the end of the file (after rules that may match first).
    Append,
    /// Before this line.
    BeforeLine(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AddOutcome {
    Added {
        line: usize,
    },
    /// The file already has the rule (layout and comments aside).
    Present {
        line: usize,
    },
}

/// Why a rule typed on the command line is not a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("local rules take no --address; every other type needs one")]
    AddressForType,
    #[error("option {0:?} is not NAME=VALUE")]
    Option(String),
}

/// A rule from command-line words: databases and users as typed (`all`, `+group`, `@file`, names),
/// an ADDRESS field for every type but `local`, options as `NAME=VALUE`.
pub fn rule_from_words(
    conn_type: ConnType,
    databases: &[String],
    users: &[String],
    address: Option<&str>,
    method: Method,
    options: &[String],
) -> Result<Record, RuleError> {
    let address = address.map(Address::parse).transpose().map_err(RuleError::Address)?;
    if (conn_type == ConnType::Local) != address.is_none() {
        return Err(RuleError::AddressForType);
    }
    let mut record = Record::new(
        conn_type,
        databases.iter().map(|d| Token::from_word(d)).collect(),
        users.iter().map(|u| Token::from_word(u)).collect(),
        address,
        method,
    );
    for o in options {
        let (n, v) = o.split_once('=').ok_or_else(|| RuleError::Option(o.clone()))?;
        record = record.with_option(n, v);
    }
    Ok(record)
}

/// The guide's step for the Qlik nodes: one rule per node admitting `user` to `databases`.
#[derive(Debug, Clone)]
pub struct NodeRules {
    pub nodes: Vec<Address>,
    pub databases: Vec<Token>,
    pub user: Token,
    pub conn_type: ConnType,
    pub method: Method,
    /// Put the rules where the default `host all all 127.0.0.1/32` line was, and remove that line (the
    /// guide's wording); TCP connections from the server's own machine then need a rule of their own.
    pub replace_localhost: bool,
}

/// What [`HbaFile::allow_nodes`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeRulesReport {
    /// The localhost line removed, with its text.
    pub replaced: Option<(usize, String)>,
    /// `replace_localhost` was asked but there was no such line.
    pub no_localhost_rule: bool,
    pub added: Vec<(usize, Record)>,
    /// Nodes whose rule was there already, with its line.
    pub present: Vec<(usize, Address)>,
}

impl HbaFile {
    /// Adds `record` unless the file has it already.
    pub fn add_rule(&mut self, record: &Record, at: Placement) -> Result<AddOutcome, EditError> {
        if let Some(existing) = self.find_same(record) {
            return Ok(AddOutcome::Present { line: existing.line });
        }
        let line = match at {
            Placement::Append => self.push(record)?,
            Placement::BeforeLine(line) => self.insert_before_line(line, record)?,
            Placement::Default => self.insert(self.default_position(record), record)?,
        };
        Ok(AddOutcome::Added { line })
    }

    /// Removes the records on `lines` (bottom up, so the numbers stay valid); returns each line's text.
    pub fn remove_lines(&mut self, lines: &[usize]) -> Result<Vec<(usize, String)>, EditError> {
        let mut sorted = lines.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut removed = Vec::new();
        for line in sorted.iter().rev() {
            removed.push((*line, self.remove(*line)?));
        }
        removed.reverse();
        Ok(removed)
    }

    /// Adds one rule per node (see [`NodeRules`]); a node whose rule is already there is left alone.
    pub fn allow_nodes(&mut self, req: &NodeRules) -> Result<NodeRulesReport, EditError> {
        let records: Vec<Record> = req
            .nodes
            .iter()
            .map(|a| {
                Record::new(req.conn_type, req.databases.clone(), vec![req.user.clone()], Some(a.clone()), req.method)
            })
            .collect();
        let mut report = NodeRulesReport::default();
        let mut position = records.iter().map(|r| self.default_position(r)).max().unwrap_or(0);
        if req.replace_localhost {
            let m = RecordMatch {
                conn_type: Some(ConnType::Host),
                database: Some(Token::keyword("all")),
                user: Some(Token::keyword("all")),
                address: Some(Address::parse("127.0.0.1/32").expect("a valid address")),
                method: None,
            };
            let found =
                self.find(&m).find(|r| r.record.databases.len() == 1 && r.record.users.len() == 1).map(|r| r.line);
            match found {
                Some(line) => {
                    position = self.records().position(|r| r.line == line).expect("found above");
                    let text = self.remove(line)?;
                    report.replaced = Some((line, text.trim_end().to_owned()));
                }
                None => report.no_localhost_rule = true,
            }
        }
        for record in records {
            if let Some(existing) = self.find_same(&record) {
                report.present.push((existing.line, record.address.clone().expect("a host rule")));
                continue;
            }
            let line = self.insert(position + report.added.len(), &record)?;
            report.added.push((line, record));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> HbaFile {
        HbaFile::parse(text, Path::new("/d/pg_hba.conf")).unwrap()
    }

    const INITDB: &str =
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n";

    fn nodes(addrs: &[&str], replace: bool) -> NodeRules {
        NodeRules {
            nodes: addrs.iter().map(|a| Address::parse_node(a).unwrap()).collect(),
            databases: ["QSR", "SenseServices", "QSMQ", "Licenses"].iter().map(|d| Token::name(d)).collect(),
            user: Token::name("qliksenserepository"),
            conn_type: ConnType::Host,
            method: Method::ScramSha256,
            replace_localhost: replace,
        }
    }

    #[test]
    fn node_rules_go_before_tcp_rules_once() {
        let mut f = parse(INITDB);
        let report = f.allow_nodes(&nodes(&["10.0.4.11", "10.0.4.12"], false)).unwrap();
        assert_eq!(report.added.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3]);
        let second = f.render().lines().nth(1).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(second, "host QSR,SenseServices,QSMQ,Licenses qliksenserepository 10.0.4.11/32 scram-sha-256");
        let again = f.allow_nodes(&nodes(&["10.0.4.11"], false)).unwrap();
        assert!(again.added.is_empty());
        assert_eq!(again.present[0].0, 2);
    }

    #[test]
    fn the_guides_localhost_replacement() {
        let mut f = parse(INITDB);
        let report = f.allow_nodes(&nodes(&["10.0.4.0/24"], true)).unwrap();
        assert_eq!(report.replaced, Some((2, "host all all 127.0.0.1/32 scram-sha-256".to_owned())));
        assert!(!f.render().contains("127.0.0.1/32"), "{}", f.render());
        assert_eq!(report.added[0].0, 2, "the node rule takes the localhost line's place");
        let report = f.allow_nodes(&nodes(&["10.0.5.0/24"], true)).unwrap();
        assert!(report.no_localhost_rule);
    }

    #[test]
    fn rules_from_words_add_once_and_remove() {
        let r = rule_from_words(
            ConnType::Host,
            &["QSR".into()],
            &["+qlik".into()],
            Some("10.0.0.0/8"),
            Method::ScramSha256,
            &[],
        )
        .unwrap();
        assert_eq!(r.users, [Token::member_of("qlik")]);
        assert_eq!(
            rule_from_words(ConnType::Local, &["all".into()], &["all".into()], Some("10.0.0.0/8"), Method::Peer, &[]),
            Err(RuleError::AddressForType)
        );
        assert!(matches!(
            rule_from_words(
                ConnType::Host,
                &["all".into()],
                &["all".into()],
                Some("10.0.0.0/8"),
                Method::Cert,
                &["x".into()]
            ),
            Err(RuleError::Option(_))
        ));
        let mut f = parse(INITDB);
        assert_eq!(f.add_rule(&r, Placement::Default).unwrap(), AddOutcome::Added { line: 2 });
        assert_eq!(f.add_rule(&r, Placement::Append).unwrap(), AddOutcome::Present { line: 2 });
        let removed = f.remove_lines(&[4, 2]).unwrap();
        assert_eq!(removed.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(f.records().count(), 2);
    }
}
