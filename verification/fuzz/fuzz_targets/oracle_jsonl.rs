//! The oracle's JSON Lines path: any bytes, line by line, must give a result
//! or a case error — never a panic, never unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let base = std::path::Path::new("/nonexistent-entropic-fuzz-dir");
    for (i, line) in text.lines().enumerate().take(64) {
        let (_id, result) = entropic_cli::eval_line(line, base, i + 1);
        if let Err(e) = result {
            assert!(!e.field.is_empty() && !e.message.is_empty());
        }
    }
});
