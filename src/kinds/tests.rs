use super::*;
use std::borrow::Cow;

#[test]
fn reads_what_the_writer_writes() {
    let row = write::hash(Some(None), &[]).unwrap();
    let rows = write::array(3, &[(0, row.clone()), (1, row.clone()), (2, row)]).unwrap();
    let mixed = write::hash(
        Some(Some(&["app/models/user.rb".to_owned()])),
        &[
            ("rows".into(), rows),
            ("status".into(), Cow::Borrowed(write::SYMBOL)),
        ],
    )
    .unwrap();
    let doc = write::document(&[("state", &mixed)]).unwrap();
    let text = std::str::from_utf8(&doc).unwrap();
    let state = member_json(text, "state").unwrap().unwrap();
    let kind = Kind::parse(state.get()).unwrap();
    assert!(kind.keys().is_string("app/models/user.rb"));
    assert!(!kind.keys().is_string("rows"));
    assert_eq!(kind.member("status"), Some(&Kind::Symbol));
    let rows = kind.member("rows").unwrap();
    for i in 0..3 {
        assert!(rows.item(i).unwrap().keys().is_string("anything"));
    }
    assert!(member_json(text, "error").unwrap().is_none());
}

#[test]
fn arrays_with_some_items_list_them() {
    let node = write::array(5, &[(1, Cow::Borrowed(write::SYMBOL))]).unwrap();
    let kind = Kind::parse(std::str::from_utf8(&node).unwrap()).unwrap();
    assert_eq!(kind.item(1), Some(&Kind::Symbol));
    assert_eq!(kind.item(0), None);
    assert_eq!(write::array(2, &[]), None);
    assert_eq!(write::hash(None, &[]), None);
}

#[test]
fn refuses_nodes_the_writer_never_writes() {
    for bad in [
        r#""string""#,
        r#"{"items":{"x":"symbol"}}"#,
        r#"{"colour":1}"#,
        r#"{"string_keys":"yes"}"#,
        "[1]",
    ] {
        assert!(Kind::parse(bad).is_err(), "{bad}");
    }
    let deep = format!("{}\"symbol\"{}", r#"{"each":"#.repeat(200), "}".repeat(200));
    assert!(Kind::parse(&deep).is_err());
}
