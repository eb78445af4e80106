//! The `qrd` binary. Everything lives in `qrd_cli`, where it can be tested.

fn main() -> std::process::ExitCode {
    qrd_cli::main(std::env::args_os())
}
