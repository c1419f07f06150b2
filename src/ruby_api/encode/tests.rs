use super::plain;

#[test]
fn plain_agrees_with_the_byte_by_byte_rule() {
    let slow = |b: &[u8]| b.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\');
    let mut cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"app/models/file_1.rb".to_vec(),
        "caf\u{e9} \u{1f600}".into(),
    ];
    for len in 0..20 {
        for bad in [
            0u8, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']',
        ] {
            for at in 0..len {
                let mut v = vec![b'a'; len];
                v[at] = bad;
                cases.push(v);
            }
        }
    }
    for case in cases {
        assert_eq!(plain(&case), slow(&case), "{case:?}");
    }
}
