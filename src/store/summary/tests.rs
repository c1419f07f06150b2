use super::*;

fn summary(latest: u64, latest_good: Option<u64>) -> TaskSummary {
    let facts = Facts {
        status: Status::Running,
        timestamp: "2024-02-05T23:30:00Z".into(),
        progress: Progress::new(45, Some(100)),
        budget: BudgetFigures::new(Some("5".parse().unwrap()), "2.13".parse().unwrap()),
        message: None,
        failures: 0,
        retries: 0,
        written_at: Some("2024-02-05T23:30:00.123456789Z".into()),
    };
    TaskSummary::from_facts(
        "t",
        latest,
        latest_good,
        3,
        "2024-02-05T23:00:00Z".into(),
        &facts,
        Seal { crc: 7, len: 512 },
    )
}

#[test]
fn summaries_and_index_rows_read_back_as_written() {
    for s in [summary(3, Some(3)), summary(u64::MAX - 1, None)] {
        let json = serde_json::to_vec(&s).unwrap();
        assert_eq!(serde_json::from_slice::<TaskSummary>(&json).unwrap(), s);
        let index = IndexFile {
            version: FORMAT_VERSION.into(),
            tasks: HashMap::from([("t".to_owned(), s.clone())]),
        };
        let json = serde_json::to_vec(&index).unwrap();
        let back: IndexFile = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.tasks["t"], s);
    }
}

// Regression: a sealed metadata.json or index.json row naming checkpoint
// 18446744073709551615 parsed, and the freshness checks' `latest + 1`
// overflowed on it (found reviewing what the parse_summary target
// checks; fuzz/regressions/parse_summary/ holds both files, on which
// the target failed until this fix).
#[test]
fn checkpoint_numbers_without_a_successor_are_refused() {
    for (latest, good) in [
        (u64::MAX, Some(1)),
        (0, None),
        (3, Some(u64::MAX)),
        (3, Some(0)),
    ] {
        let mut s = summary(3, Some(3));
        s.latest_checkpoint = latest;
        s.latest_good_checkpoint = good;
        let json = serde_json::to_string(&s).unwrap();
        let e = serde_json::from_str::<TaskSummary>(&json).unwrap_err();
        assert!(e.to_string().contains("not one the store writes"), "{e}");
        let index = format!(r#"{{"version":"52.0","tasks":{{"t":{json}}}}}"#);
        assert!(serde_json::from_str::<IndexFile>(&index).is_err());
    }
    let json = serde_json::to_string(&summary(3, None)).unwrap();
    let json = json.replace(r#""latest_good_checkpoint":null"#, "");
    assert!(serde_json::from_str::<TaskSummary>(&json.replace(",,", ",")).is_ok());
}
