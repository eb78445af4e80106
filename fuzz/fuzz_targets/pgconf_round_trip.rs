//! Any text postgresql.conf parses must render back byte for byte, and setting a value must leave a file
//! that parses again and reads the new value back.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use qrd_conf::pgconf::ConfFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut file) = ConfFile::parse(text, Path::new("postgresql.conf")) else { return };
    assert_eq!(file.render(), text, "round trip");
    for (name, value) in [("max_connections", "110"), ("listen_addresses", "*"), ("log_directory", r"C:\it's")] {
        if file.set(name, value).is_ok() {
            let out = file.render();
            let again = ConfFile::parse(&out, Path::new("postgresql.conf")).expect("an edited file parses");
            assert_eq!(again.get(name).map(|s| s.value.as_str()), Some(value), "{name} reads back from:\n{out}");
        }
    }
});
