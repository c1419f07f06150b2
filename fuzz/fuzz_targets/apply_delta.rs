#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    master_fuzz::checks::apply_delta(data);
});
