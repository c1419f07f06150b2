use super::*;

const BODY: &[u8] = br#"{"task_id":"t","state":{"files":["a.rb","b.rb"]}"#;

#[test]
fn sealed_file_is_json_and_verifies() {
    let sealed = seal(BODY);
    let text = verify(&sealed).unwrap();
    let value: serde_json::Value = serde_json::from_slice(text).unwrap();
    assert_eq!(value["state"]["files"][1], "b.rb");
    assert!(value["checksum"].as_str().unwrap().starts_with("crc32:"));
    assert!(sealed.ends_with(b"\"}\n"));
}

#[test]
fn every_truncation_is_caught() {
    let sealed = seal(BODY);
    let full = sealed.len() - 1; // the trailing newline is not content
    for len in 0..full {
        assert!(verify(&sealed[..len]).is_err(), "truncated to {len} bytes");
    }
}

#[test]
fn every_single_character_change_is_caught() {
    let sealed = seal(BODY);
    for i in 0..sealed.len() - 1 {
        for replacement in [b'x', b'0', b' ', b'"'] {
            if sealed[i] == replacement {
                continue;
            }
            let mut damaged = sealed.clone();
            damaged[i] = replacement;
            assert!(
                verify(&damaged).is_err(),
                "byte {i} set to {}",
                replacement as char
            );
        }
    }
}

#[test]
fn hand_written_json_without_seal_is_refused() {
    assert!(verify(br#"{"task_id":"t"}"#).is_err());
    assert!(verify(b"").is_err());
    assert!(verify(b"\n\n").is_err());
}

#[test]
fn streaming_equals_in_memory() {
    let mut writer = SealedWriter::new(Vec::new());
    writer.write(&BODY[..10]).unwrap();
    writer.write(&BODY[10..]).unwrap();
    let (bytes, record) = writer.finish().unwrap();
    assert_eq!(bytes, seal(BODY));
    assert_eq!(record.len, bytes.len() as u64);
    let text = verify(&bytes).unwrap();
    assert_eq!(stated_crc(text), Some(record.crc));
    assert_eq!(stated_crc(&bytes[bytes.len() - 40..]), Some(record.crc));
    assert_eq!(stated_crc(b"x\"}"), None);
    assert_eq!(stated_crc(BODY), None);
}
