//! The server's tokenizer for authentication files (`next_token` and `next_field_expand` in `hba.c`),
//! reproduced step for step so that odd quoting splits exactly as PostgreSQL splits it.

use serde::Serialize;

/// A place in the file: 1-based line and 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One token as the server sees it: quotes removed, `quoted` set only when the token *starts* with a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawToken {
    pub text: String,
    pub quoted: bool,
    pub pos: Pos,
}

/// A whitespace-separated field: one token, or several joined by commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawField {
    pub tokens: Vec<RawToken>,
}

impl RawField {
    pub fn pos(&self) -> Pos {
        self.tokens[0].pos
    }
}

/// `pg_isblank`: the server's idea of whitespace; a stray carriage return counts.
pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r'
}

/// Splits one logical line (continuations already joined) into fields. `pos[i]` is where `chars[i]` sits.
pub(crate) fn tokenize(chars: &[char], pos: &[Pos], end: Pos) -> Vec<RawField> {
    let mut fields = Vec::new();
    let mut i = 0;
    // `while (*lineptr && err_msg == NULL)` in tokenize_auth_file
    while i < chars.len() {
        let mut tokens = Vec::new();
        loop {
            let (token, trailing_comma) = next_token(chars, pos, end, &mut i);
            match token {
                Some(t) => tokens.push(t),
                None => break,
            }
            if !trailing_comma {
                break;
            }
        }
        if !tokens.is_empty() {
            fields.push(RawField { tokens });
        }
    }
    fields
}

fn next_token(chars: &[char], pos: &[Pos], end: Pos, i: &mut usize) -> (Option<RawToken>, bool) {
    // The C code reads a NUL at the end of the string; `get` plays that part.
    let get = |k: usize| chars.get(k).copied().unwrap_or('\0');
    let mut buf = String::new();
    let (mut in_quote, mut was_quote, mut saw_quote, mut initial_quote, mut trailing_comma) =
        (false, false, false, false, false);

    // Move over whitespace and commas preceding the token.
    let mut c = get(*i);
    *i += 1;
    while c != '\0' && (is_blank(c) || c == ',') {
        c = get(*i);
        *i += 1;
    }
    let start = pos.get(*i - 1).copied().unwrap_or(end);

    while c != '\0' && (!is_blank(c) || in_quote) {
        if c == '#' && !in_quote {
            // A comment runs to the end of the line; the token so far still counts.
            *i = chars.len() + 1;
            break;
        }
        if c == ',' && !in_quote {
            trailing_comma = true;
            break;
        }
        if c != '"' || was_quote {
            buf.push(c);
        }
        // Two double quotes inside quotes are one literal quote.
        if in_quote && c == '"' {
            was_quote = !was_quote;
        } else {
            was_quote = false;
        }
        if c == '"' {
            in_quote = !in_quote;
            saw_quote = true;
            if buf.is_empty() {
                initial_quote = true;
            }
        }
        c = get(*i);
        *i += 1;
    }
    // Un-eat the character after the token.
    *i -= 1;

    if saw_quote || !buf.is_empty() {
        (Some(RawToken { text: buf, quoted: initial_quote, pos: start }), trailing_comma)
    } else {
        (None, trailing_comma)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<Vec<(String, bool)>> {
        let chars: Vec<char> = line.chars().collect();
        let pos: Vec<Pos> = (0..chars.len()).map(|k| Pos { line: 1, column: k + 1 }).collect();
        let end = Pos { line: 1, column: chars.len() + 1 };
        tokenize(&chars, &pos, end)
            .into_iter()
            .map(|f| f.tokens.into_iter().map(|t| (t.text, t.quoted)).collect())
            .collect()
    }

    fn plain(v: &[&[&str]]) -> Vec<Vec<(String, bool)>> {
        v.iter().map(|f| f.iter().map(|t| (t.to_string(), false)).collect()).collect()
    }

    #[test]
    fn blanks_separate_fields_and_commas_tokens() {
        assert_eq!(
            fields("host all all 1.2.3.4/32 md5"),
            plain(&[&["host"], &["all"], &["all"], &["1.2.3.4/32"], &["md5"]])
        );
        assert_eq!(fields("\thost\r a,b, c d"), plain(&[&["host"], &["a", "b", "c"], &["d"]]));
        // A blank before the comma ends the field; the next field starts after the comma.
        assert_eq!(fields("a ,b"), plain(&[&["a"], &["b"]]));
        // A trailing comma with nothing after it is dropped.
        assert_eq!(fields("a,"), plain(&[&["a"]]));
        assert_eq!(fields(",,,"), Vec::<Vec<(String, bool)>>::new());
    }

    #[test]
    fn comments_end_the_line_but_keep_the_token_before_them() {
        assert_eq!(fields("# all of it"), Vec::<Vec<(String, bool)>>::new());
        assert_eq!(fields("local all#x y"), plain(&[&["local"], &["all"]]));
        assert_eq!(fields("\"a#b\" # c"), vec![vec![("a#b".to_string(), true)]]);
    }

    #[test]
    fn quoting_follows_the_server() {
        assert_eq!(fields("\"all\""), vec![vec![("all".to_string(), true)]]);
        // Only a leading quote makes a token quoted.
        assert_eq!(fields("a\"ll\""), vec![vec![("all".to_string(), false)]]);
        assert_eq!(fields("+\"c d\""), vec![vec![("+c d".to_string(), false)]]);
        assert_eq!(fields("\"a\"\"b\""), vec![vec![("a\"b".to_string(), true)]]);
        assert_eq!(fields("\"\""), vec![vec![(String::new(), true)]]);
        assert_eq!(fields("\"a,b c\",d"), vec![vec![("a,b c".to_string(), true), ("d".to_string(), false)]]);
        // An unterminated quote runs to the end of the line without complaint.
        assert_eq!(fields("\"abc def"), vec![vec![("abc def".to_string(), true)]]);
    }

    #[test]
    fn positions_point_at_the_first_character() {
        let chars: Vec<char> = "  a, \"b\"  c".chars().collect();
        let pos: Vec<Pos> = (0..chars.len()).map(|k| Pos { line: 7, column: k + 1 }).collect();
        let f = tokenize(&chars, &pos, Pos { line: 7, column: 12 });
        let cols: Vec<Vec<usize>> = f.iter().map(|f| f.tokens.iter().map(|t| t.pos.column).collect()).collect();
        assert_eq!(cols, vec![vec![3, 6], vec![11]]);
    }
}
