//! One line of `postgresql.conf` split into tokens exactly as the server's scanner (`guc-file.l`) does.
//!
//! The server's scanner is a flex lexer: at each position it takes the longest match among its rules and,
//! on a tie, the rule listed first (ID, QUALIFIED_ID, STRING, UNQUOTED_STRING, INTEGER, REAL, `=`). That
//! tie-break is why `foo.conf` is a QUALIFIED_ID and therefore not a valid *value* (PostgreSQL 12–16 report
//! `syntax error … near token "foo.conf"`), while `foo.conf.d` and `en_US.UTF-8` are UNQUOTED_STRINGs and
//! fine. No token spans a line break, so the file can be scanned line by line.
//!
//! Everything works on bytes: the scanner treats every byte >= 0x80 as a letter, so non-ASCII text is part
//! of identifiers and tokens always begin and end on ASCII bytes (valid `str` boundaries).

use serde::Serialize;

/// The kind of a value token, as `guc-file.l` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A letter or `_` (or any byte >= 0x80) followed by letters, digits and `_`: `on`, `replica`.
    Id,
    /// Exactly two IDs joined by one dot: `auto_explain.log_min_duration`. Valid as a name, not as a value.
    QualifiedId,
    /// A single-quoted string with `''` and backslash escapes.
    String,
    /// A letter followed by letters, digits and `-._:/`: `en_US.UTF-8`, `foo/bar.conf`.
    UnquotedString,
    /// Optional sign, decimal digits or `0x` hex digits, then any letters: `128MB`, `-1`, `0x1F`, `5min`.
    Integer,
    /// Optional sign, digits with one `.`, optional exponent: `0.9`, `.5`, `1.5e-3`. No unit may follow.
    Real,
    /// `=`.
    Equals,
    /// Any other byte: the server reports a syntax error "near token" it.
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

/// The tokens of one line (without its `\n`) and where a trailing `#` comment starts, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineTokens {
    pub tokens: Vec<Token>,
    pub comment: Option<usize>,
}

fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_letter_or_digit(b: u8) -> bool {
    is_letter(b) || b.is_ascii_digit()
}

/// Whitespace for the scanner: space, tab and carriage return only (so CRLF files work, and a form feed or
/// vertical tab is a syntax error).
pub(crate) fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

fn count_while(s: &[u8], f: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|&&b| f(b)).count()
}

fn match_id(s: &[u8]) -> usize {
    match s.first() {
        Some(&b) if is_letter(b) => 1 + count_while(&s[1..], is_letter_or_digit),
        _ => 0,
    }
}

fn match_qualified_id(s: &[u8]) -> usize {
    let first = match_id(s);
    if first == 0 || s.get(first) != Some(&b'.') {
        return 0;
    }
    match match_id(&s[first + 1..]) {
        0 => 0,
        second => first + 1 + second,
    }
}

/// `'([^'\\\n]|\\.|'')*'`: the longest prefix that is a complete string. A `''` inside may either be an
/// escaped quote or the end of the string followed by a stray quote; the longest match wins.
fn match_string(s: &[u8]) -> usize {
    if s.first() != Some(&b'\'') {
        return 0;
    }
    let mut best = 0;
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => match s.get(i + 1) {
                Some(&b) if b != b'\n' => i += 2,
                _ => break,
            },
            b'\'' => {
                best = i + 1;
                if s.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    break;
                }
            }
            b'\n' => break,
            _ => i += 1,
        }
    }
    best
}

fn match_unquoted_string(s: &[u8]) -> usize {
    match s.first() {
        Some(&b) if is_letter(b) => {
            1 + count_while(&s[1..], |b| is_letter_or_digit(b) || matches!(b, b'-' | b'.' | b'_' | b':' | b'/'))
        }
        _ => 0,
    }
}

fn sign_len(s: &[u8]) -> usize {
    usize::from(matches!(s.first(), Some(b'-' | b'+')))
}

/// `{SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*`. The `0x` is lower case only: `0X1F` is not hex here.
fn match_integer(s: &[u8]) -> usize {
    let sign = sign_len(s);
    let rest = &s[sign..];
    let mut best = 0;
    let digits = count_while(rest, |b| b.is_ascii_digit());
    if digits > 0 {
        best = digits + count_while(&rest[digits..], |b| b.is_ascii_alphabetic());
    }
    if rest.starts_with(b"0x") {
        let hex = count_while(&rest[2..], |b| b.is_ascii_hexdigit());
        if hex > 0 {
            let len = 2 + hex + count_while(&rest[2 + hex..], |b| b.is_ascii_alphabetic());
            best = best.max(len);
        }
    }
    if best == 0 { 0 } else { sign + best }
}

/// `{SIGN}?{DIGIT}*"."{DIGIT}*{EXPONENT}?`: note that a lone `.` is a REAL, and `1e5` (no dot) is not.
fn match_real(s: &[u8]) -> usize {
    let mut i = sign_len(s);
    i += count_while(&s[i..], |b| b.is_ascii_digit());
    if s.get(i) != Some(&b'.') {
        return 0;
    }
    i += 1;
    i += count_while(&s[i..], |b| b.is_ascii_digit());
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        j += sign_len(&s[j..]);
        let exp = count_while(&s[j..], |b| b.is_ascii_digit());
        if exp > 0 {
            i = j + exp;
        }
    }
    i
}

/// The longest-match, first-rule-wins choice of the next token at the start of `s` (not blank, not `#`).
fn next_token(s: &[u8]) -> (TokenKind, usize) {
    let candidates = [
        (TokenKind::Id, match_id(s)),
        (TokenKind::QualifiedId, match_qualified_id(s)),
        (TokenKind::String, match_string(s)),
        (TokenKind::UnquotedString, match_unquoted_string(s)),
        (TokenKind::Integer, match_integer(s)),
        (TokenKind::Real, match_real(s)),
        (TokenKind::Equals, usize::from(s.first() == Some(&b'='))),
    ];
    let mut best = (TokenKind::Error, 0);
    for (kind, len) in candidates {
        if len > best.1 {
            best = (kind, len);
        }
    }
    if best.1 == 0 { (TokenKind::Error, 1) } else { best }
}

/// Splits one line (without the `\n`) into tokens.
pub(crate) fn lex_line(line: &[u8]) -> LineTokens {
    let mut out = LineTokens::default();
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if is_blank(b) {
            i += 1;
        } else if b == b'#' {
            out.comment = Some(i);
            break;
        } else {
            let (kind, len) = next_token(&line[i..]);
            out.tokens.push(Token { kind, start: i, end: i + len });
            i += len;
        }
    }
    out
}

/// The value of a quoted string token, decoded as the server's `DeescapeQuotedString` does: `''` is one
/// quote; `\b \f \n \r \t` are control characters; `\` with one to three octal digits is that byte; a
/// backslash before any other character just yields that character. So `'C:\Logs\new'` means `C:Logs`,
/// a line feed, `ew` — Windows paths need doubled backslashes or forward slashes. The server keeps the
/// value as a C string, so an octal `\0` ends it there. Bytes that are not UTF-8 (from octal escapes)
/// are replaced with U+FFFD.
pub(crate) fn decode_string(token: &[u8]) -> String {
    let inner = &token[1..token.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        if b == b'\\' && i + 1 < inner.len() {
            i += 1;
            let e = inner[i];
            let decoded = match e {
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'0'..=b'7' => {
                    let digits = count_while(&inner[i..(i + 3).min(inner.len())], |d| (b'0'..=b'7').contains(&d));
                    let value = inner[i..i + digits].iter().fold(0u32, |acc, d| (acc << 3) + u32::from(d - b'0'));
                    i += digits - 1;
                    // The server stores `(char) octVal`: `\777` wraps to 0xFF.
                    value as u8
                }
                other => other,
            };
            out.push(decoded);
        } else if b == b'\'' && inner.get(i + 1) == Some(&b'\'') {
            out.push(b'\'');
            i += 1;
        } else {
            out.push(b);
        }
        i += 1;
    }
    if let Some(nul) = out.iter().position(|&b| b == 0) {
        out.truncate(nul);
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<(TokenKind, &str)> {
        lex_line(line.as_bytes()).tokens.iter().map(|t| (t.kind, &line[t.start..t.end])).collect()
    }

    #[test]
    fn longest_match_then_first_rule() {
        use TokenKind::*;
        assert_eq!(kinds("foo.conf"), [(QualifiedId, "foo.conf")]);
        assert_eq!(kinds("foo.conf.d"), [(UnquotedString, "foo.conf.d")]);
        assert_eq!(kinds("en_US.UTF-8"), [(UnquotedString, "en_US.UTF-8")]);
        assert_eq!(kinds("a.b.c"), [(UnquotedString, "a.b.c")]);
        assert_eq!(kinds("128MB"), [(Integer, "128MB")]);
        assert_eq!(kinds("0x1FkB"), [(Integer, "0x1FkB")]);
        assert_eq!(kinds("0X1F"), [(Integer, "0X"), (Integer, "1F")]);
        assert_eq!(kinds("1.5MB"), [(Real, "1.5"), (Id, "MB")]);
        assert_eq!(kinds("1e3"), [(Integer, "1e"), (Integer, "3")]);
        assert_eq!(kinds("-.e5 ."), [(Real, "-.e5"), (Real, ".")]);
        assert_eq!(kinds("1.5E+3x"), [(Real, "1.5E+3"), (Id, "x")]);
        assert_eq!(kinds("- /x"), [(Error, "-"), (Error, "/"), (Id, "x")]);
        assert_eq!(kinds("x'y'"), [(Id, "x"), (String, "'y'")]);
        assert_eq!(kinds("a=b"), [(Id, "a"), (Equals, "="), (Id, "b")]);
        assert_eq!(kinds("\u{e9}t\u{e9}"), [(Id, "\u{e9}t\u{e9}")]);
    }

    #[test]
    fn strings_take_the_longest_complete_match() {
        use TokenKind::*;
        assert_eq!(kinds("'it''s'"), [(String, "'it''s'")]);
        assert_eq!(kinds("'a''"), [(String, "'a'"), (Error, "'")]);
        assert_eq!(kinds("'a\\'b'"), [(String, "'a\\'b'")]);
        assert_eq!(kinds("'unterminated"), [(Error, "'"), (Id, "unterminated")]);
        assert_eq!(kinds("'#x' # c"), [(String, "'#x'")]);
        assert_eq!(lex_line(b"'#x' # c").comment, Some(5));
    }

    #[test]
    fn string_escapes_like_the_server() {
        let d = |s: &str| decode_string(s.as_bytes());
        assert_eq!(d("'it''s'"), "it's");
        assert_eq!(d("'a\\'b'"), "a'b");
        assert_eq!(d("'\\101\\x\\q\\\\'"), "Axq\\");
        assert_eq!(d("'C:\\Logs\\new'"), "C:Logs\new");
        assert_eq!(d("'\\b\\f\\n\\r\\t'"), "\u{8}\u{c}\n\r\t");
        assert_eq!(d("'ab\\0cd'"), "ab");
        assert_eq!(d("'\\1012'"), "A2");
        assert_eq!(d("''"), "");
    }
}
