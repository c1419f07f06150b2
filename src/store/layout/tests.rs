use super::*;

#[test]
fn accepts_ordinary_ids() {
    for id in [
        "refactor-users-module",
        "a",
        "task_1.v2",
        "ünïcode tâche",
        &"x".repeat(255),
    ] {
        assert_eq!(TaskId::parse(id).unwrap().as_str(), id);
    }
}

#[test]
fn refuses_hostile_ids_naming_the_value() {
    for id in [
        "",
        ".",
        "..",
        "../etc",
        "a/b",
        "/abs",
        "nul\0byte",
        ".hidden",
        "index.json",
        "tab\there",
    ] {
        let err = TaskId::parse(id).unwrap_err().to_string();
        assert!(err.contains("task_id"), "{err}");
    }
    let long = "x".repeat(256);
    assert!(TaskId::parse(&long)
        .unwrap_err()
        .to_string()
        .contains("256 bytes"));
}

#[test]
fn debug_formats_as_the_quoted_id() {
    let id = TaskId::parse("refactor-users").unwrap();
    assert_eq!(format!("task {id:?}"), "task \"refactor-users\"");
}

#[test]
fn checkpoint_names_round_trip() {
    assert_eq!(checkpoint_file_name(1), "checkpoint_001.json");
    assert_eq!(checkpoint_file_name(999), "checkpoint_999.json");
    assert_eq!(checkpoint_file_name(1000), "checkpoint_1000.json");
    for n in [1, 42, 999, 1000, 123456] {
        assert_eq!(
            parse_checkpoint_file_name(&checkpoint_file_name(n)),
            Some(n)
        );
    }
    for name in [
        "checkpoint_01.json",
        "checkpoint_0001.json",
        "checkpoint_000.json",
        "checkpoint_abc.json",
        "metadata.json",
        "checkpoint_001.json.tmp",
    ] {
        assert_eq!(parse_checkpoint_file_name(name), None, "{name}");
    }
}

#[test]
fn temp_names_are_unique_and_recognised() {
    let a = temp_file_name("checkpoint_001.json");
    let b = temp_file_name("checkpoint_001.json");
    assert_ne!(a, b);
    assert!(is_temp_file_name(&a));
    assert!(!is_temp_file_name("checkpoint_001.json"));
}
