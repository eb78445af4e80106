//! Quoting for commands that qrd prints for a person to copy into a shell (hints, logs, error messages).
//! Never used to build a command that qrd runs itself: those get their arguments as separate argv entries.

/// Characters that stay unquoted. Letters, digits and these mean nothing special to a POSIX shell anywhere
/// in an argument word, so `--role qlik_admin` and `/var/lib/postgresql/15/main` print as they are. `~`
/// (tilde expansion at a word's start or after `=`/`:`), glob characters, `$`, quotes, blanks and the
/// rest are quoted.
const SAFE: &str = "-_./=:,@%+";

/// `s` as one POSIX shell word: unchanged when every character is plainly safe, else single-quoted (with
/// each `'` written as `'\''`). The empty string is `''`, so it still counts as an argument.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || SAFE.contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `program arg …` of a `Command`, each part quoted with [`shell_quote`], for messages and logs. Secrets
/// never appear here because they never travel in argv (see [`crate::Passfile`]).
pub fn display_command(cmd: &std::process::Command) -> String {
    let mut parts = vec![shell_quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn plain_words_stay_and_the_rest_is_single_quoted() {
        assert_eq!(shell_quote("qliksenserepository"), "qliksenserepository");
        assert_eq!(shell_quote("/var/lib/postgresql/15/main"), "/var/lib/postgresql/15/main");
        assert_eq!(shell_quote("a=b:c,d@e%f+g"), "a=b:c,d@e%f+g");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("Qlik Admin"), "'Qlik Admin'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        for risky in ["~root", "a*", "$HOME", "a;b", "a|b", "a`b`", "a\\b", "a\"b", "a\nb", "(x)", "a&", "#x", "a?"] {
            assert!(shell_quote(risky).starts_with('\''), "{risky:?} must be quoted");
        }
    }

    /// What the quoting is for: a shell reads each quoted word back as exactly the original text.
    #[test]
    fn sh_reads_the_words_back_unchanged() {
        let words = ["plain", "Qlik Admin", "it's", "", "~root", "$HOME", "a\"b", "tab\there", "line\nbreak", "é"];
        let script: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("for w in {}; do printf '%s\\0' \"$w\"; done", script.join(" ")))
            .output()
            .unwrap();
        let got: Vec<String> =
            String::from_utf8(out.stdout).unwrap().split_terminator('\0').map(str::to_owned).collect();
        assert_eq!(got, words);
    }

    #[test]
    fn commands_are_quoted_for_copy_and_paste() {
        let mut cmd = Command::new("/usr/bin/pg_ctl");
        cmd.args(["-D", "/tmp/a b", "-o", "-p 5432", "it's"]);
        assert_eq!(display_command(&cmd), r"/usr/bin/pg_ctl -D '/tmp/a b' -o '-p 5432' 'it'\''s'");
    }
}
