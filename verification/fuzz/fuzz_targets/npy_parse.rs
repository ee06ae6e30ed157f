//! `.npy` parsing: any bytes give an array or an error, never a panic; an
//! accepted array's data matches its shape.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = entropic_cli::npy::parse(data) {
        let count: usize = a.shape.iter().product();
        assert_eq!(count, a.data.len());
        assert!(a.shape.len() <= 2);
    }
});
