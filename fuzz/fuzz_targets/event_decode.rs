//! The event log decoder: any bytes decode to a record or an error, never a panic; a
//! decoded record re-encodes to bytes that decode to the same record.
#![no_main]
use kezek_engine::EventRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = EventRecord::decode(data) {
        let again = EventRecord::decode(&rec.encode()).expect("re-encoded record decodes");
        assert_eq!(again, rec);
    }
});
