//! The whole file: raw lines kept verbatim, grouped into entries (a record, an include directive, or a
//! line the server ignores), with edits that splice text and re-parse.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Address;
use super::record::{self, ConnType, Method, Record, RecordError, Token};
use super::token::{self, Pos};
use crate::ParseError;

pub use super::record::Spans;

const BOM: char = '\u{feff}';

/// A parsed pg_hba.conf. [`HbaFile::render`] gives back the exact input until something is edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaFile {
    path: PathBuf,
    bom: bool,
    crlf: bool,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// 1-based number of the first physical line.
    line: usize,
    /// The physical lines, line endings included.
    raw: String,
    /// Each physical line without its line ending, as the server strips it (`pg_strip_crlf`).
    contents: Vec<String>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Blank, comment-only, or nothing but separators.
    Ignored,
    Record(Box<(Record, Spans)>),
    Include(Include),
}

pub use crate::IncludeKind;

/// An include directive. The file is not read here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Include {
    pub kind: IncludeKind,
    /// As written; relative paths are relative to the directory of the including file.
    pub path: String,
}

impl Include {
    /// Where the server looks for the file or directory.
    pub fn resolve(&self, including_file: &Path) -> PathBuf {
        let p = Path::new(&self.path);
        if p.is_absolute() { p.to_path_buf() } else { including_file.parent().unwrap_or(Path::new("")).join(p) }
    }
}

/// A record with its place in the file.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RecordRef<'a> {
    /// 1-based line number of the record's first line (the number the server logs).
    pub line: usize,
    pub record: &'a Record,
    pub spans: &'a Spans,
    /// The record's lines exactly as in the file.
    pub text: &'a str,
}

/// What [`HbaFile::find`] looks for; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordMatch {
    pub conn_type: Option<ConnType>,
    /// A token of the DATABASE list (`Token::keyword("all")` and `Token::name("all")` differ).
    pub database: Option<Token>,
    pub user: Option<Token>,
    pub address: Option<Address>,
    pub method: Option<Method>,
}

impl RecordMatch {
    pub fn matches(&self, r: &Record) -> bool {
        self.conn_type.is_none_or(|c| c == r.conn_type)
            && self.database.as_ref().is_none_or(|d| r.databases.contains(d))
            && self.user.as_ref().is_none_or(|u| r.users.contains(u))
            && self.address.as_ref().is_none_or(|a| r.address.as_ref() == Some(a))
            && self.method.is_none_or(|m| m == r.method)
    }
}

/// Something the server will do differently from what the file seems to say, for one major version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why an edit was refused. The file is unchanged when an edit fails.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("line {line} does not exist (the file has {lines} lines)")]
    NoSuchLine { line: usize, lines: usize },
    #[error("line {0} is not a record")]
    NotARecord(usize),
    #[error("there is no record number {index} (the file has {count} records)")]
    NoSuchIndex { index: usize, count: usize },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the edited file no longer parses: {0}")]
    Reparse(#[from] ParseError),
    /// A quoted connection type (`"host"`) works but is rare: an edit says so rather than guess its layout.
    #[error("line {line}: the connection type is not written plainly as {word}")]
    QuotedConnType { line: usize, word: &'static str },
    /// The text edit would have changed more than it should (a bug guard; nothing is written).
    #[error("internal: the edit would change more than {0}")]
    Inconsistent(&'static str),
}

impl HbaFile {
    /// Parses `text` as the server would (PostgreSQL 14+ line continuation; see [`HbaFile::diagnostics`]
    /// for 12 and 13). `path` only names the file in errors and anchors relative include paths.
    pub fn parse(text: &str, path: &Path) -> Result<HbaFile, ParseError> {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let physical: Vec<&str> = body.split_inclusive('\n').collect();
        let (mut crlf_count, mut lf_count) = (0, 0);
        for l in &physical {
            if l.ends_with("\r\n") {
                crlf_count += 1;
            } else if l.ends_with('\n') {
                lf_count += 1;
            }
        }
        let mut entries = Vec::new();
        let mut k = 0;
        while k < physical.len() {
            let start = k;
            let mut contents = vec![strip_crlf(physical[k])];
            // The backslash must be the very last character; a blank after it breaks the continuation.
            while contents.last().is_some_and(|c| c.ends_with('\\')) && k + 1 < physical.len() {
                k += 1;
                contents.push(strip_crlf(physical[k]));
            }
            k += 1;
            let raw: String = physical[start..k].concat();
            let line = start + 1;
            let kind = parse_entry(&contents, line).map_err(|(p, m)| ParseError::new(path, p.line, p.column, m))?;
            entries.push(Entry { line, raw, contents: contents.into_iter().map(str::to_string).collect(), kind });
        }
        Ok(HbaFile { path: path.to_path_buf(), bom, crlf: crlf_count > lf_count, entries })
    }

    /// The file's text: the input byte for byte unless edited.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.entries.iter().map(|e| e.raw.len()).sum::<usize>() + 3);
        if self.bom {
            out.push(BOM);
        }
        for e in &self.entries {
            out.push_str(&e.raw);
        }
        out
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file starts with a UTF-8 byte-order mark (which the server refuses; see the module docs).
    pub fn has_bom(&self) -> bool {
        self.bom
    }

    /// Drops a byte-order mark; returns whether there was one.
    pub fn strip_bom(&mut self) -> bool {
        std::mem::replace(&mut self.bom, false)
    }

    /// `"\r\n"` when most lines end that way, else `"\n"`; new lines use it.
    pub fn line_ending(&self) -> &'static str {
        if self.crlf { "\r\n" } else { "\n" }
    }

    /// Number of physical lines.
    pub fn line_count(&self) -> usize {
        self.entries.last().map_or(0, |e| e.line + e.contents.len() - 1)
    }

    /// Records in file order, which is the order the server tries them.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> {
        self.entries.iter().filter_map(|e| match &e.kind {
            Kind::Record(rs) => Some(RecordRef { line: e.line, record: &rs.0, spans: &rs.1, text: &e.raw }),
            _ => None,
        })
    }

    /// Include directives with their line numbers.
    pub fn includes(&self) -> impl Iterator<Item = (usize, &Include)> {
        self.entries.iter().filter_map(|e| match &e.kind {
            Kind::Include(i) => Some((e.line, i)),
            _ => None,
        })
    }

    /// `@file` references in DATABASE and USER fields, with their lines (the server reads them when it
    /// loads the file, relative to its directory).
    pub fn file_refs(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for r in self.records() {
            for t in r.record.databases.iter().chain(&r.record.users) {
                if let Some(f) = t.file_ref() {
                    out.push((r.line, f.to_string()));
                }
            }
        }
        out
    }

    /// Records matching `m`, in file order.
    pub fn find<'a>(&'a self, m: &'a RecordMatch) -> impl Iterator<Item = RecordRef<'a>> + 'a {
        self.records().filter(move |r| m.matches(r.record))
    }

    /// Appends `record` at the end of the file (after a line ending if the last line has none) and returns
    /// its line number.
    pub fn push(&mut self, record: &Record) -> Result<usize, EditError> {
        let line = record.to_line()?;
        let eol = self.line_ending();
        let mut text = self.render();
        let body_len = text.len() - if self.bom { BOM.len_utf8() } else { 0 };
        if body_len > 0 && !text.ends_with('\n') {
            text.push_str(eol);
        }
        // A last line ending in a backslash would swallow ours; give it an empty line to continue onto.
        if self.entries.last().and_then(|e| e.contents.last()).is_some_and(|c| c.ends_with('\\')) {
            text.push_str(eol);
        }
        text.push_str(&line);
        text.push_str(eol);
        self.reparse(&text)?;
        Ok(self.line_count())
    }

    /// Inserts `record` before the `index`-th record (0-based; `index == count` appends), so that it is
    /// tried just before that record. Returns its line number.
    pub fn insert(&mut self, index: usize, record: &Record) -> Result<usize, EditError> {
        let lines: Vec<usize> = self.records().map(|r| r.line).collect();
        match lines.get(index) {
            Some(&line) => self.insert_before_line(line, record),
            None if index == lines.len() => match lines.last() {
                // Right after the last record, before any trailing comments.
                Some(&last) => {
                    let after = self.entry_at(last).map(|e| e.line + e.contents.len()).unwrap_or(last + 1);
                    if after > self.line_count() { self.push(record) } else { self.insert_before_line(after, record) }
                }
                None => self.push(record),
            },
            None => Err(EditError::NoSuchIndex { index, count: lines.len() }),
        }
    }

    /// Inserts `record` before the entry containing `line` (`line_count() + 1` appends). Returns the new
    /// record's line number.
    pub fn insert_before_line(&mut self, line: usize, record: &Record) -> Result<usize, EditError> {
        if line == self.line_count() + 1 {
            return self.push(record);
        }
        let idx = self.entry_index(line)?;
        let at = self.entries[idx].line;
        let text = record.to_line()? + self.line_ending();
        self.splice(idx, 0, &text)?;
        Ok(at)
    }

    /// Removes the record or include directive that contains `line` (all its continuation lines); returns
    /// the removed text.
    pub fn remove(&mut self, line: usize) -> Result<String, EditError> {
        let idx = self.entry_index(line)?;
        if matches!(self.entries[idx].kind, Kind::Ignored) {
            return Err(EditError::NotARecord(line));
        }
        let removed = self.entries[idx].raw.clone();
        self.splice(idx, 1, "")?;
        Ok(removed)
    }

    /// Replaces the record that contains `line` with `record`, keeping that line's line ending.
    pub fn replace(&mut self, line: usize, record: &Record) -> Result<(), EditError> {
        let idx = self.entry_index(line)?;
        let e = &self.entries[idx];
        if !matches!(e.kind, Kind::Record(..)) {
            return Err(EditError::NotARecord(line));
        }
        let last = last_line(&e.raw);
        let ending = &last[strip_crlf(last).len()..];
        let text = record.to_line()? + ending;
        self.splice(idx, 1, &text)
    }

    /// Changes only the METHOD word of the record that contains `line` (the rest of the line, options and
    /// comments included, stays as written). The method must be a plain unquoted word in the file, as every
    /// method keyword is.
    pub fn set_method(&mut self, line: usize, method: Method) -> Result<(), EditError> {
        let idx = self.entry_index(line)?;
        let e = &self.entries[idx];
        let Kind::Record(rs) = &e.kind else {
            return Err(EditError::NotARecord(line));
        };
        let (record, spans) = (&rs.0, &rs.1);
        let old = record.method.to_string();
        let pos = spans.method;
        // The physical lines of this entry with their endings; the method sits on line `pos.line`.
        let mut lines: Vec<String> = e.raw.split_inclusive('\n').map(str::to_owned).collect();
        let k = pos.line - e.line;
        let target = &lines[k];
        let start: usize = target.char_indices().nth(pos.column - 1).map(|(b, _)| b).unwrap_or(target.len());
        if !target[start..].starts_with(old.as_str()) {
            return Err(EditError::NotARecord(line));
        }
        let new = format!("{}{}{}", &target[..start], method, &target[start + old.len()..]);
        lines[k] = new;
        let text = lines.concat();
        self.splice(idx, 1, &text)
    }

    /// Rewrites the connection type word of every `from` rule to `to`, in place: the rest of each line and
    /// every other byte stay as they were (spaces after the word absorb the length change so columns stay
    /// aligned). host → hostssl leaves `reject` rules alone (as `host` they already refuse both plain and
    /// TLS connections); hostssl → host retypes them too, or with ssl off they would never match and the
    /// clients they refuse would fall through to the rules below. Returns the lines changed.
    pub fn retype(&mut self, from: ConnType, to: ConnType) -> Result<Vec<usize>, EditError> {
        let text = self.render();
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(rest) => (BOM.to_string(), rest),
            None => (String::new(), text.as_str()),
        };
        let skip = |r: &Record| r.conn_type != from || (to == ConnType::HostSsl && r.method == Method::Reject);
        let mut lines: Vec<String> = body.split_inclusive('\n').map(str::to_owned).collect();
        let mut changed = Vec::new();
        for r in self.records() {
            if skip(r.record) {
                continue;
            }
            let pos = r.spans.conn_type;
            let line = lines.get_mut(pos.line - 1).ok_or(EditError::Inconsistent("the connection types"))?;
            let start: usize = line.char_indices().nth(pos.column - 1).map(|(i, _)| i).unwrap_or(line.len());
            let word = from.as_str();
            if !line[start..].starts_with(word) {
                return Err(EditError::QuotedConnType { line: pos.line, word });
            }
            let after = start + word.len();
            let spaces = line[after..].chars().take_while(|&c| c == ' ').count();
            let (new_word, old_len) = (to.as_str(), word.len());
            let (end, replacement) = if new_word.len() > old_len {
                // Eat the spaces the longer word needs, keeping at least one separator.
                let eat = (new_word.len() - old_len).min(spaces.saturating_sub(1));
                (after + eat, new_word.to_owned())
            } else {
                let pad = if spaces > 0 { " ".repeat(old_len - new_word.len()) } else { String::new() };
                (after, format!("{new_word}{pad}"))
            };
            line.replace_range(start..end, &replacement);
            changed.push(pos.line);
        }
        let out = format!("{bom}{}", lines.concat());
        // The edit must change exactly the types of exactly those rules.
        let back = HbaFile::parse(&out, &self.path)?;
        let old: Vec<Record> = self.records().map(|r| r.record.clone()).collect();
        let new: Vec<Record> = back.records().map(|r| r.record.clone()).collect();
        let consistent = old.len() == new.len()
            && old.iter().zip(&new).all(|(o, n)| {
                let mut o = o.clone();
                if !skip(&o) {
                    o.conn_type = to;
                }
                &o == n
            });
        if !consistent {
            return Err(EditError::Inconsistent("the connection types"));
        }
        *self = back;
        Ok(changed)
    }

    /// Where a new rule goes by default (an index for [`HbaFile::insert`]): before the first rule of its
    /// kind (local rules before the first rule, TCP rules before the first TCP rule), so that catch-all
    /// rules further down cannot shadow it — but never above a `reject` rule whose addresses overlap the new
    /// rule's: a deny the site wrote must keep winning.
    pub fn default_position(&self, record: &Record) -> usize {
        let records: Vec<_> = self.records().collect();
        let local = record.conn_type == ConnType::Local;
        let mut position =
            records.iter().position(|r| local || r.record.conn_type != ConnType::Local).unwrap_or(records.len());
        for (i, r) in records.iter().enumerate().skip(position) {
            let both_local = local == (r.record.conn_type == ConnType::Local);
            if r.record.method == Method::Reject
                && both_local
                && Address::may_overlap(r.record.address.as_ref(), record.address.as_ref())
            {
                position = i + 1;
            }
        }
        position
    }

    /// The first record that is `record` already (type, databases, users, address, method, options).
    pub fn find_same(&self, record: &Record) -> Option<RecordRef<'_>> {
        self.records().find(|r| r.record.same_rule(record))
    }

    /// The contents of the `@file` lists the rules refer to (and the lists those name), read the way the
    /// server reads them: relative to the directory of this file. Unreadable ones stay unknown; at most
    /// 100 files are read (a guard against a runaway chain).
    pub fn read_token_files(&self) -> std::collections::BTreeMap<String, String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut out = std::collections::BTreeMap::new();
        let mut pending: Vec<String> = self.file_refs().into_iter().map(|(_, name)| name).collect();
        while let Some(name) = pending.pop() {
            if out.contains_key(&name) || out.len() >= 100 {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(dir.join(&name)) else { continue };
            pending.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or_default())
                    .flat_map(|l| l.split([' ', '\t', ',']))
                    .filter_map(|w| w.strip_prefix('@'))
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned),
            );
            out.insert(name, text);
        }
        out
    }

    fn entry_at(&self, line: usize) -> Option<&Entry> {
        self.entries.iter().find(|e| e.line <= line && line < e.line + e.contents.len())
    }

    fn entry_index(&self, line: usize) -> Result<usize, EditError> {
        self.entries
            .iter()
            .position(|e| e.line <= line && line < e.line + e.contents.len())
            .ok_or(EditError::NoSuchLine { line, lines: self.line_count() })
    }

    fn splice(&mut self, idx: usize, remove: usize, insert: &str) -> Result<(), EditError> {
        let mut text = String::new();
        if self.bom {
            text.push(BOM);
        }
        for e in &self.entries[..idx] {
            text.push_str(&e.raw);
        }
        text.push_str(insert);
        for e in &self.entries[idx + remove..] {
            text.push_str(&e.raw);
        }
        self.reparse(&text)
    }

    fn reparse(&mut self, text: &str) -> Result<(), EditError> {
        *self = HbaFile::parse(text, &self.path)?;
        Ok(())
    }

    /// What `major` will do differently from what the file seems to say: a byte-order mark, continuation
    /// lines on 12/13, comments that swallow the next line, include directives and regular expressions
    /// before 16, `clientcert`/`clientname` values a major refuses.
    pub fn diagnostics(&self, major: u32) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let mut add = |line, column, message: String| out.push(Diagnostic { line, column, message });
        if self.bom {
            add(
                1,
                1,
                "the file starts with a UTF-8 byte-order mark: PostgreSQL reads it as part of line 1 and \
                 refuses the file (invalid connection type \"\u{feff}\"); save it without one"
                    .into(),
            );
        }
        for e in &self.entries {
            let dangling = e.contents.last().is_some_and(|c| c.ends_with('\\'));
            if major < 14 && (e.contents.len() > 1 || dangling) {
                let last = e.line + e.contents.len() - 1;
                add(
                    e.line,
                    e.contents[0].chars().count(),
                    format!(
                        "PostgreSQL {major} does not join lines ending with a backslash (14 and later do): it reads \
                         the backslash as text and lines {}-{last} as separate lines",
                        e.line
                    ),
                );
            }
            if e.contents.len() > 1
                && major >= 14
                && let Some((k, col)) = comment_start(&e.contents)
            {
                let swallowed = (k + 1..e.contents.len()).find(|&j| !e.contents[j].trim().is_empty());
                if let Some(j) = swallowed {
                    add(
                        e.line + j,
                        1,
                        format!(
                            "line {} is part of the comment at line {}, column {col}, because the line before \
                             it ends with a backslash; PostgreSQL ignores it",
                            e.line + j,
                            e.line + k
                        ),
                    );
                }
            }
            match &e.kind {
                Kind::Include(_) if major < 16 => add(
                    e.line,
                    1,
                    format!(
                        "include directives need PostgreSQL 16; {major} reads this as an invalid connection type \
                         and refuses the file"
                    ),
                ),
                Kind::Record(rs) => record_diagnostics(&rs.0, &rs.1, major, &mut add),
                _ => {}
            }
        }
        out
    }

    /// Which line `req` would match, first match wins as in the server; what the server alone knows comes in
    /// `facts`, and a missing fact gives [`super::Outcome::Undecided`] rather than a guess.
    pub fn explain(&self, req: &super::Request, facts: &super::Facts) -> super::Outcome {
        let entries = self.entries.iter().filter_map(|e| match &e.kind {
            Kind::Record(rs) => Some((e.line, Ok(&rs.0))),
            Kind::Include(i) => Some((e.line, Err(i))),
            Kind::Ignored => None,
        });
        super::explain::explain(entries, req, facts)
    }
}

fn record_diagnostics(r: &Record, spans: &Spans, major: u32, add: &mut impl FnMut(usize, usize, String)) {
    if major < 16 {
        let tokens = r.databases.iter().chain(&r.users);
        if tokens.clone().any(|t| t.value.starts_with('/')) {
            add(
                spans.databases.line,
                spans.databases.column,
                format!(
                    "a name starting with '/' is a regular expression only from PostgreSQL 16 on; {major} \
                     compares it as a plain name"
                ),
            );
        }
    }
    for (o, pos) in r.options.iter().zip(&spans.options) {
        let bad = match (o.name.as_str(), o.value.as_str()) {
            ("clientcert", "verify-ca") if r.method == Method::Cert && major >= 14 => {
                Some("clientcert only accepts \"verify-full\" when using \"cert\" authentication".to_string())
            }
            ("clientcert", "verify-ca" | "verify-full") => None,
            ("clientcert", "1" | "0" | "no-verify") if major < 14 => None,
            ("clientcert", v) => Some(format!("invalid value for clientcert: \"{v}\" (PostgreSQL {major})")),
            ("clientname", _) if major < 14 => {
                Some(format!("unrecognized authentication option name: \"clientname\" (PostgreSQL {major})"))
            }
            ("clientname", "CN" | "DN") => None,
            ("clientname", v) => Some(format!("invalid value for clientname: \"{v}\"")),
            _ => None,
        };
        if let Some(m) = bad {
            add(pos.line, pos.column, m);
        }
    }
}

/// The first unquoted `#` of a continued entry: (physical line index, column).
fn comment_start(contents: &[String]) -> Option<(usize, usize)> {
    let mut in_quote = false;
    for (k, c) in contents.iter().enumerate() {
        let last = k + 1 == contents.len();
        let text = if last { c.as_str() } else { &c[..c.len() - 1] };
        for (col, ch) in text.chars().enumerate() {
            match ch {
                '"' => in_quote = !in_quote,
                '#' if !in_quote => return Some((k, col + 1)),
                _ => {}
            }
        }
    }
    None
}

/// The line without its line ending, as `pg_strip_crlf` leaves it (every trailing CR and LF).
fn strip_crlf(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// The last physical line of an entry, line ending included.
fn last_line(raw: &str) -> &str {
    raw.split_inclusive('\n').next_back().unwrap_or("")
}

/// Joins continued lines and reads the entry.
fn parse_entry(contents: &[&str], line: usize) -> Result<Kind, (Pos, String)> {
    let mut chars = Vec::new();
    let mut pos = Vec::new();
    let mut end = Pos { line, column: 1 };
    for (k, c) in contents.iter().enumerate() {
        let continued = k + 1 < contents.len() || c.ends_with('\\');
        let text = if continued { &c[..c.len() - 1] } else { c };
        for (col, ch) in text.chars().enumerate() {
            if ch == '\0' {
                return Err((Pos { line: line + k, column: col + 1 }, "NUL character in the file".into()));
            }
            chars.push(ch);
            pos.push(Pos { line: line + k, column: col + 1 });
        }
        end = Pos { line: line + k, column: text.chars().count() + 1 };
    }
    let fields = token::tokenize(&chars, &pos, end);
    if fields.is_empty() {
        return Ok(Kind::Ignored);
    }
    if fields.len() == 2 {
        // Compared as text, quoted or not, like the connection type.
        let kind = IncludeKind::from_key(&fields[0].tokens[0].text);
        if let Some(kind) = kind {
            return Ok(Kind::Include(Include { kind, path: fields[1].tokens[0].text.clone() }));
        }
    }
    let (r, spans) = record::parse_record(&fields, end)?;
    Ok(Kind::Record(Box::new((r, spans))))
}

impl fmt::Display for HbaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}
