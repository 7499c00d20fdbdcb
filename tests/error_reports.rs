//! Validation of client error batches (§4.4).

use serde_json::json;
use sidechain_edge::error_reports::{parse_batch, stats_hours, FieldIssue};

const NOW: u64 = 1_800_000_000_000;

fn item() -> serde_json::Value {
    json!({"source": "Audio", "severity": "Warning", "message": "glitch", "timestamp": NOW - 1000})
}

fn fields(issues: &[FieldIssue]) -> Vec<(Option<usize>, &str)> {
    issues.iter().map(|i| (i.index, i.field.as_str())).collect()
}

#[test]
fn a_valid_batch_parses_with_defaults() {
    let mut with_ctx = item();
    with_ctx["context"] = json!({"daw": "Ableton"});
    with_ctx["occurrences"] = json!(4);
    let reports = parse_batch(&json!({"errors": [item(), with_ctx]}), NOW).unwrap();
    assert_eq!(reports[0].occurrences, 1);
    assert_eq!(reports[0].context, None);
    assert_eq!(reports[1].occurrences, 4);
    assert_eq!(reports[1].context.as_deref(), Some(r#"{"daw":"Ableton"}"#));
}

#[test]
fn every_problem_is_named_by_index_and_field() {
    let mut bad = vec![item(); 6];
    bad[1]["source"] = json!("Kernel");
    bad[2]["message"] = json!("x".repeat(1001));
    bad[3]["timestamp"] = json!(NOW + 2 * 24 * 3600 * 1000);
    bad[4]["occurrences"] = json!(-1);
    bad[5] = json!("not an object");
    let issues = parse_batch(&json!({"errors": bad}), NOW).unwrap_err();
    assert_eq!(fields(&issues), [(Some(1), "source"), (Some(2), "message"), (Some(3), "timestamp"), (Some(4), "occurrences"), (Some(5), "")]);
}

#[test]
fn message_length_counts_characters() {
    let mut ok = item();
    ok["message"] = json!("🎧".repeat(1000));
    assert!(parse_batch(&json!({"errors": [ok]}), NOW).is_ok());
}

#[test]
fn batch_size_and_shape() {
    for body in [json!({}), json!({"errors": []}), json!({"errors": vec![item(); 101]}), json!({"errors": {}})] {
        assert_eq!(fields(&parse_batch(&body, NOW).unwrap_err()), [(None, "errors")]);
    }
    assert!(parse_batch(&json!({"errors": vec![item(); 100]}), NOW).is_ok());
}

#[test]
fn context_must_be_a_small_object() {
    let mut big = item();
    big["context"] = json!({"blob": "x".repeat(4100)});
    let mut list = item();
    list["context"] = json!([1, 2]);
    let issues = parse_batch(&json!({"errors": [big, list]}), NOW).unwrap_err();
    assert_eq!(fields(&issues), [(Some(0), "context"), (Some(1), "context")]);
}

#[test]
fn stats_hours_bounds() {
    assert_eq!(stats_hours(None), Ok(24));
    assert_eq!(stats_hours(Some("720")), Ok(720));
    for bad in ["0", "721", "-1", "1.5", "x"] {
        assert!(stats_hours(Some(bad)).is_err(), "{bad}");
    }
}

/// §4.4 [1.1]: the shipped plugin sends seconds (e.g. 1702569600); below 100,000,000,000 a
/// timestamp is seconds and is read as such.
#[test]
fn timestamps_in_seconds_are_accepted() {
    let mut seconds = item();
    seconds["timestamp"] = json!(1_702_569_600u64);
    let parsed = parse_batch(&json!({"errors": [seconds, item()]}), NOW).unwrap();
    assert_eq!(parsed[0].timestamp, 1_702_569_600_000);
    assert_eq!(parsed[1].timestamp, NOW - 1000);
    let mut too_old = item();
    too_old["timestamp"] = json!(1_000_000u64);
    assert!(parse_batch(&json!({"errors": [too_old]}), NOW).is_err());
}

mod listing {
    use sidechain_edge::error_reports::{parse_error_id, parse_list_query, parse_resolve, ListQuery, LIST_DEFAULT_LIMIT};
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse_list_query(|k| owned.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_and_filters_parse() {
        let all = q(&[]).unwrap();
        assert_eq!((all.resolved, all.limit, all.before), (None, LIST_DEFAULT_LIMIT, None));
        let f = q(&[("resolved", "false"), ("severity", "Critical"), ("source", "Audio"), ("limit", "7"), ("before", "1700000000000:42")]).unwrap();
        assert_eq!(f, ListQuery { resolved: Some(false), severity: Some("Critical".into()), source: Some("Audio".into()), limit: 7, before: Some((1_700_000_000_000, 42)) });
        assert_eq!(q(&[("before", "1700000000000")]).unwrap().before, Some((1_700_000_000_000, 0)));
    }

    #[test]
    fn hostile_parameters_get_clear_errors() {
        for bad in [("resolved", "maybe"), ("severity", "Fatal"), ("source", "audio"), ("limit", "0"), ("limit", "201"), ("limit", "-1"), ("before", "x:1"), ("before", "1:"), ("before", "99999999999999999999999")] {
            let err = q(&[bad]).unwrap_err();
            assert!(err.contains(bad.0), "{bad:?} → {err}");
        }
    }

    #[test]
    fn resolve_body_and_id() {
        assert_eq!(parse_resolve(&json!({"resolved": true})), Ok(true));
        assert_eq!(parse_resolve(&json!({"resolved": false})), Ok(false));
        assert!(parse_resolve(&json!({"resolved": "yes"})).is_err());
        assert!(parse_resolve(&json!({})).is_err());
        assert!(parse_resolve(&json!([])).is_err());
        assert_eq!(parse_error_id("12"), Ok(12));
        for bad in ["0", "-3", "abc", "1e3", "", "9007199254740993"] {
            assert!(parse_error_id(bad).is_err(), "{bad}");
        }
    }
}
