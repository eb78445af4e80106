//! Passwords typed at a terminal: qrd asks only when it must, on the terminal, without echo. The test
//! runs qrd under `script` (util-linux) for a real pseudo-terminal and answers each prompt only after it
//! appears, so nothing is typed ahead (which the terminal itself would echo).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::common::*;

/// Runs `qrd args…` on a pseudo-terminal, answering `answers` = (prompt text, line to type) in order.
/// Returns the exit code and the terminal transcript.
fn on_terminal(server: &Server, scratch: &Scratch, args: &str, answers: &[(&str, &str)]) -> (i32, String) {
    let qrd = qrd(server, scratch);
    let mut cmd = Command::new("script");
    // The environment qrd() prepared, minus the password: it must be typed.
    cmd.env_clear();
    for (k, v) in qrd.get_envs() {
        if let Some(v) = v.filter(|_| k != "PGPASSWORD") {
            cmd.env(k, v);
        }
    }
    cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.args(["-qec", &format!("{} {args}", env!("CARGO_BIN_EXE_qrd")), "/dev/null"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    eprintln!("$ script -qec 'qrd {args}' (answers: {} prompts)", answers.len());
    let mut child = cmd.spawn().expect("script (util-linux) is needed for terminal tests");

    let transcript = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let transcript = transcript.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                transcript.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    // How many times each prompt has been answered: the same text may be asked more than once.
    let mut answered: std::collections::HashMap<&str, usize> = Default::default();
    // Generous, and not a performance assertion: it only turns a hang into a failure with the transcript.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (prompt, line) in answers {
        let done = answered.entry(prompt).or_default();
        while transcript.lock().unwrap().matches(prompt).count() <= *done {
            assert!(child.try_wait().unwrap().is_none(), "qrd exited before asking {prompt:?}");
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("no prompt {prompt:?} within 60 s; terminal so far:\n{}", transcript.lock().unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        *done += 1;
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let text = transcript.lock().unwrap().clone();
    eprintln!("--- terminal\n{text}---");
    (status.code().unwrap_or(-1), text)
}

#[test]
fn passwords_are_asked_on_the_terminal_without_echo() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    let superuser_pw = server.password().to_owned();
    let (code, text) = on_terminal(
        &server,
        &scratch,
        "provision",
        &[
            ("Password for user postgres at", &superuser_pw),
            ("New password for role qliksenserepository:", "Typed-repo-pw"),
            ("New password for role qliksenserepository (again):", "Typed-repo-pw"),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("provisioned: 22 changes"), "{text}");
    assert!(!text.contains(&superuser_pw), "the superuser's password was echoed");
    assert!(!text.contains("Typed-repo-pw"), "the repository password was echoed");
    block_on(can_login(&server, "QSR", ROLE, "Typed-repo-pw")).unwrap();

    // Mismatched confirmation: refused, nothing changed.
    let other = Server::start(16);
    let (code, text) = on_terminal(
        &other,
        &scratch,
        "provision",
        &[
            ("Password for user postgres at", other.password()),
            ("New password for role qliksenserepository:", "One-pw"),
            ("New password for role qliksenserepository (again):", "Other-pw"),
        ],
    );
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("the two passwords typed do not match"), "{text}");
    assert!(block_on(catalog_state(&other, ROLE)).roles.is_empty());
}
