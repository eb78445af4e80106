//! One `postgresql.conf`-syntax file as a lossless model: every byte is kept, settings and include directives
//! are located by line and byte span, and edits splice only the bytes they change.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::lexer::{self, LineTokens, Token, TokenKind};
pub use crate::IncludeKind;
use crate::ParseError;

const BOM: &str = "\u{feff}";

/// `name = value` (the `=` is optional), one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The name as written (`Max_Connections`).
    pub name: String,
    /// The name folded to lower case (ASCII only, as the server's `guc_name_compare`): `max_connections`.
    pub key: String,
    /// The value as the server sees it: quotes removed and escapes decoded.
    pub value: String,
    /// The value token exactly as written, quotes and escapes included.
    pub raw_value: String,
    /// Which scanner token the value is.
    pub value_kind: TokenKind,
    /// Byte range of `raw_value` in the rendered file (a leading byte order mark counts).
    pub value_span: Range<usize>,
    /// 1-based line number.
    pub line: usize,
    /// The trailing `#` comment, `#` included, without the line break.
    pub comment: Option<String>,
}

/// An include directive. Its path may be any value token, so `include 'a.conf'`, `include sub/a.conf`
/// and `include a.conf.d` work, but unquoted `include a.conf` is a syntax error (a QUALIFIED_ID) and so is
/// unquoted `include /etc/a.conf` (a path cannot start with `/` unquoted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Include {
    pub kind: IncludeKind,
    /// The path as the server sees it (decoded); relative paths are relative to this file's directory.
    pub path: String,
    /// The path token as written.
    pub raw_path: String,
    /// Byte range of `raw_path` in the rendered file.
    pub path_span: Range<usize>,
    /// 1-based line number.
    pub line: usize,
}

/// A line that does something: a setting or an include directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Setting(Setting),
    Include(Include),
}

/// The line ending a file uses, detected from its first line break (LF when it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LineEnding {
    #[serde(rename = "lf")]
    Lf,
    #[serde(rename = "crlf")]
    CrLf,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// Byte range of the line's content in `text`, without its `\n` (a CR before it stays in the content;
    /// the scanner treats it as blank space).
    content: Range<usize>,
    /// Whether a `\n` follows the content.
    terminated: bool,
    entry: Option<Entry>,
}

/// A `postgresql.conf`, `postgresql.auto.conf` or included file. [`ConfFile::render`] gives back the input
/// byte for byte until it is edited; edits change only the lines they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile {
    path: PathBuf,
    text: String,
    bom: bool,
    lines: Vec<Line>,
}

/// What [`ConfFile::set`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetAction {
    /// The last active line already had this value; nothing was written.
    Unchanged,
    /// The value text of the last active line was replaced in place.
    Replaced,
    /// A new line was inserted right after the commented-out sample line `#name = …`.
    InsertedAfterComment,
    /// A new line was appended at the end of the file.
    Appended,
}

/// The change summary of [`ConfFile::set`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetChange {
    pub name: String,
    pub action: SetAction,
    /// The line (1-based, after the edit) that now holds the setting.
    pub line: usize,
    /// The value this file gave before (decoded), if it set one.
    pub old_value: Option<String>,
    /// The value text written (quoted where needed), as returned by [`format_value`].
    pub new_text: String,
    /// The commented-out line the new line was put under ([`SetAction::InsertedAfterComment`]).
    pub after_comment_line: Option<usize>,
    /// Earlier active lines for the same setting. They stay as they are (the last one wins in the server),
    /// but a reader of the file may be misled by them, so they are reported.
    pub earlier_duplicates: Vec<usize>,
}

/// The change summary of [`ConfFile::remove`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoveChange {
    pub name: String,
    /// The lines that were commented out (empty when the file did not set the name).
    pub commented_out: Vec<usize>,
}

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error(
        "invalid setting name {0:?}: a name is letters, digits and underscores, optionally qualified by one dot (`auto_explain.log_min_duration`)"
    )]
    InvalidName(String),
    #[error("{0:?} is an include directive, not a setting; edit the include line itself")]
    IncludeDirective(String),
    #[error("a value for {name:?} cannot contain a NUL character (the server stores values as C strings)")]
    NulInValue { name: String },
}

impl ConfFile {
    /// Parses `text` with the server's syntax. `path` only labels errors and resolves includes later.
    ///
    /// A leading UTF-8 byte order mark is kept for rendering but skipped while parsing, so a file saved by
    /// a Windows editor can still be inspected. The server does **not** skip it: it reads the mark as part
    /// of the first line's name (`unrecognized configuration parameter "\u{feff}port"`, or a syntax error
    /// when line 1 is a comment). [`ConfFile::has_bom`] tells; the tree loader reports it as a note.
    pub fn parse(text: &str, path: &Path) -> Result<ConfFile, ParseError> {
        let bom = text.starts_with(BOM);
        let body_start = if bom { BOM.len() } else { 0 };
        let mut lines = Vec::new();
        let mut start = body_start;
        while start < text.len() {
            let (end, terminated) = match text[start..].find('\n') {
                Some(i) => (start + i, true),
                None => (text.len(), false),
            };
            let content = start..end;
            let entry = parse_line(text, content.clone(), lines.len() + 1, path)?;
            lines.push(Line { content, terminated, entry });
            start = end + 1;
        }
        Ok(ConfFile { path: path.to_path_buf(), text: text.to_owned(), bom, lines })
    }

    /// The file's text: the input byte for byte, plus any edits.
    pub fn render(&self) -> String {
        self.text.clone()
    }

    /// The text without copying it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The path given to [`ConfFile::parse`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file starts with a UTF-8 byte order mark, which the server does not skip (see
    /// [`ConfFile::parse`]).
    pub fn has_bom(&self) -> bool {
        self.bom
    }

    /// The line ending of the first line break, used for lines this model adds.
    pub fn line_ending(&self) -> LineEnding {
        match self.lines.iter().find(|l| l.terminated) {
            Some(l) if self.text[l.content.clone()].ends_with('\r') => LineEnding::CrLf,
            _ => LineEnding::Lf,
        }
    }

    /// Settings and include directives in file order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|l| l.entry.as_ref())
    }

    /// The settings in file order (earlier duplicates included).
    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.entries().filter_map(|e| match e {
            Entry::Setting(s) => Some(s),
            Entry::Include(_) => None,
        })
    }

    /// The include directives in file order.
    pub fn includes(&self) -> impl Iterator<Item = &Include> {
        self.entries().filter_map(|e| match e {
            Entry::Include(i) => Some(i),
            Entry::Setting(_) => None,
        })
    }

    /// The last active line for `name` in this file (the one the server uses, includes aside). Matching is
    /// case-insensitive and knows the server's two old aliases (see [`canonical_name`]).
    pub fn get(&self, name: &str) -> Option<&Setting> {
        let key = canonical_name(name);
        self.settings().filter(|s| canonical_name(&s.key) == key).last()
    }

    /// The number of lines (a final line without a line break counts).
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Line `n` (1-based) without its line break (a CR of a CRLF file stays).
    pub fn line_text(&self, n: usize) -> Option<&str> {
        self.lines.get(n.checked_sub(1)?).map(|l| &self.text[l.content.clone()])
    }

    /// Sets `name` to `value` with the smallest edit that makes the file say so:
    ///
    /// 1. if the file sets `name`, the value text of its **last** active line is replaced in place, keeping
    ///    the spacing and the comment after it (earlier duplicates stay and are reported);
    /// 2. else, if a commented-out line `#name = …` exists (the sample file has one for nearly every
    ///    setting), a new line goes right under the last such line, so the setting stays in its section;
    /// 3. else the line is appended at the end.
    ///
    /// New lines use the file's line ending. The value is written by [`format_value`]. Setting a value the
    /// last line already has (compared decoded, so `'110'` equals `110`) changes nothing.
    pub fn set(&mut self, name: &str, value: &str) -> Result<SetChange, EditError> {
        check_name(name)?;
        let new_text = format_value(value).map_err(|_| EditError::NulInValue { name: name.to_owned() })?;
        let key = canonical_name(name);
        let active: Vec<&Setting> = self.settings().filter(|s| canonical_name(&s.key) == key).collect();
        if let Some((last, earlier)) = active.split_last() {
            let earlier_duplicates = earlier.iter().map(|s| s.line).collect();
            let mut change = SetChange {
                name: name.to_owned(),
                action: SetAction::Unchanged,
                line: last.line,
                old_value: Some(last.value.clone()),
                new_text: new_text.clone(),
                after_comment_line: None,
                earlier_duplicates,
            };
            if last.value == value {
                change.new_text = last.raw_value.clone();
                return Ok(change);
            }
            let span = last.value_span.clone();
            // `name'x'` is valid without a separator; a bare value needs one there (`namex` is a new name).
            let glued = !matches!(self.text.as_bytes()[span.start - 1], b'=' | b' ' | b'\t' | b'\r');
            let replacement = if glued { format!(" {new_text}") } else { new_text };
            self.splice(span, &replacement);
            change.action = SetAction::Replaced;
            return Ok(change);
        }

        let eol = self.line_ending().as_str();
        let new_line = format!("{name} = {new_text}");
        let commented = self.lines.iter().enumerate().rev().find(|(_, l)| self.is_commented_setting(l, &key));
        let (action, after_comment_line, line) = match commented {
            Some((index, l)) => {
                let at = if l.terminated { l.content.end + 1 } else { l.content.end };
                let inserted = if l.terminated { format!("{new_line}{eol}") } else { format!("{eol}{new_line}") };
                self.splice(at..at, &inserted);
                (SetAction::InsertedAfterComment, Some(index + 1), index + 2)
            }
            None => {
                let at = self.text.len();
                // A file without a final line break keeps lacking one.
                let missing_eol = self.lines.last().is_some_and(|l| !l.terminated);
                let inserted = if missing_eol { format!("{eol}{new_line}") } else { format!("{new_line}{eol}") };
                self.splice(at..at, &inserted);
                (SetAction::Appended, None, self.lines.len())
            }
        };
        Ok(SetChange {
            name: name.to_owned(),
            action,
            line,
            old_value: None,
            new_text,
            after_comment_line,
            earlier_duplicates: Vec::new(),
        })
    }

    /// Comments out every active line for `name` by putting `#` at the start of the line.
    ///
    /// Commenting out rather than deleting keeps the old value visible for the DBA who reads the file
    /// later, keeps line numbers stable (log messages and our own reports cite them), and leaves the
    /// `#name = …` line that a later [`ConfFile::set`] puts the new line under.
    pub fn remove(&mut self, name: &str) -> Result<RemoveChange, EditError> {
        check_name(name)?;
        let key = canonical_name(name);
        let targets: Vec<(usize, usize)> = self
            .lines
            .iter()
            .filter_map(|l| match &l.entry {
                Some(Entry::Setting(s)) if canonical_name(&s.key) == key => Some((l.content.start, s.line)),
                _ => None,
            })
            .collect();
        for &(start, _) in targets.iter().rev() {
            self.splice(start..start, "#");
        }
        Ok(RemoveChange { name: name.to_owned(), commented_out: targets.into_iter().map(|(_, line)| line).collect() })
    }

    /// Replaces `range` of the text and parses again, so spans and line numbers stay true.
    fn splice(&mut self, range: Range<usize>, with: &str) {
        let mut text = std::mem::take(&mut self.text);
        text.replace_range(range, with);
        // The edits above only ever write what `format_value` and `check_name` accept, so a failure here is
        // a bug in this module, not bad input.
        *self = ConfFile::parse(&text, &self.path).expect("an edited configuration file parses again");
    }

    /// A comment line whose text after the `#` is itself `key = value` (with the `=`, so prose such as
    /// `# port forwarding is …` does not count).
    fn is_commented_setting(&self, line: &Line, key: &str) -> bool {
        if line.entry.is_some() {
            return false;
        }
        let content = self.text[line.content.clone()].trim_start_matches([' ', '\t', '\r']);
        let Some(rest) = content.strip_prefix('#') else { return false };
        let rest = rest.trim_start_matches('#');
        let toks = lexer::lex_line(rest.as_bytes()).tokens;
        match toks.as_slice() {
            [name, eq, value, ..] => {
                matches!(name.kind, TokenKind::Id | TokenKind::QualifiedId)
                    && eq.kind == TokenKind::Equals
                    && is_value_kind(value.kind)
                    && canonical_name(&rest[name.start..name.end]) == key
            }
            _ => false,
        }
    }
}

impl fmt::Display for ConfFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The name the server files a setting under: lower case (ASCII), and the two pre-8.0 aliases the server
/// still maps in 12–16 (`map_old_guc_names`): `sort_mem` sets `work_mem` and `vacuum_mem` sets
/// `maintenance_work_mem`. A `sort_mem = 5MB` line in an old file really does change `work_mem`.
pub fn canonical_name(name: &str) -> String {
    let key = name.to_ascii_lowercase();
    match key.as_str() {
        "sort_mem" => "work_mem".to_owned(),
        "vacuum_mem" => "maintenance_work_mem".to_owned(),
        _ => key,
    }
}

/// A value NUL cannot be written: the server keeps values as C strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a configuration value cannot contain a NUL character")]
pub struct NulInValue;

/// Writes `value` so that the server reads back exactly `value`.
///
/// Numbers (`110`, `-1`, `0.9`), numbers with units (`128MB`, `5min`) and plain words (`on`, `replica`)
/// are written bare, as the sample file does. Everything else is single-quoted with `'` doubled and `\`,
/// line feed and carriage return escaped: `*` → `'*'`, `pg_catalog.english` → `'pg_catalog.english'` (a
/// bare dotted word is a syntax error as a value), `1.5GB` → `'1.5GB'` (a bare fraction cannot carry a
/// unit), `C:\data` → `'C:\\data'` (a single backslash would be eaten as an escape).
pub fn format_value(value: &str) -> Result<String, NulInValue> {
    if value.contains('\0') {
        return Err(NulInValue);
    }
    let toks = lexer::lex_line(value.as_bytes());
    if toks.comment.is_none()
        && let [tok] = toks.tokens.as_slice()
        && tok.start == 0
        && tok.end == value.len()
        && matches!(tok.kind, TokenKind::Id | TokenKind::Integer | TokenKind::Real)
    {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

fn check_name(name: &str) -> Result<(), EditError> {
    let toks = lexer::lex_line(name.as_bytes());
    let ok = toks.comment.is_none()
        && matches!(toks.tokens.as_slice(), [t] if t.start == 0 && t.end == name.len()
            && matches!(t.kind, TokenKind::Id | TokenKind::QualifiedId));
    if !ok {
        return Err(EditError::InvalidName(name.to_owned()));
    }
    if IncludeKind::from_key(&name.to_ascii_lowercase()).is_some() {
        return Err(EditError::IncludeDirective(name.to_owned()));
    }
    Ok(())
}

fn is_value_kind(kind: TokenKind) -> bool {
    matches!(kind, TokenKind::Id | TokenKind::String | TokenKind::Integer | TokenKind::Real | TokenKind::UnquotedString)
}

/// The grammar of `ParseConfigFp`: name, optional `=`, one value token, end of line.
fn parse_line(text: &str, content: Range<usize>, number: usize, path: &Path) -> Result<Option<Entry>, ParseError> {
    let line = &text[content.clone()];
    let LineTokens { tokens, comment } = lexer::lex_line(line.as_bytes());
    let column = |byte: usize| line[..byte].chars().count() + 1;
    let near = |t: &Token, why: &str| {
        ParseError::new(
            path,
            number,
            column(t.start),
            format!("syntax error near token \"{}\"{why}", &line[t.start..t.end]),
        )
    };
    const QUOTE_HINT: &str =
        " (a value that is not a single word or number must be quoted: '1.5GB', 'pg_catalog.english', '/path')";

    let mut toks = tokens.iter();
    let Some(name) = toks.next() else { return Ok(None) };
    if !matches!(name.kind, TokenKind::Id | TokenKind::QualifiedId) {
        return Err(near(name, " (a line must start with a setting name)"));
    }
    let name_text = &line[name.start..name.end];
    let mut next = toks.next();
    if next.is_some_and(|t| t.kind == TokenKind::Equals) {
        next = toks.next();
    }
    let Some(value) = next else {
        let end = tokens.last().map_or(0, |t| t.end);
        return Err(ParseError::new(
            path,
            number,
            column(end),
            format!("syntax error near end of line: missing value for \"{name_text}\""),
        ));
    };
    if !is_value_kind(value.kind) {
        return Err(near(value, QUOTE_HINT));
    }
    if let Some(extra) = toks.next() {
        return Err(near(extra, QUOTE_HINT));
    }
    let raw = &line[value.start..value.end];
    let decoded = if value.kind == TokenKind::String { lexer::decode_string(raw.as_bytes()) } else { raw.to_owned() };
    let span = content.start + value.start..content.start + value.end;
    let key = name_text.to_ascii_lowercase();
    if let Some(kind) = IncludeKind::from_key(&key) {
        return Ok(Some(Entry::Include(Include {
            kind,
            path: decoded,
            raw_path: raw.to_owned(),
            path_span: span,
            line: number,
        })));
    }
    Ok(Some(Entry::Setting(Setting {
        name: name_text.to_owned(),
        key,
        value: decoded,
        raw_value: raw.to_owned(),
        value_kind: value.kind,
        value_span: span,
        line: number,
        comment: comment.map(|c| line[c..].trim_end_matches('\r').to_owned()),
    })))
}
