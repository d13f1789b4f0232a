//! The OpenAPI document as a client generator reads it.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeSet;

use utoipa::OpenApi;

#[test]
fn every_parameter_is_where_the_server_reads_it() {
    let doc = serde_json::to_value(chat_http::ApiDoc::openapi()).unwrap();
    let mut problems = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, operation) in operations.as_object().unwrap() {
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let declared: BTreeSet<&str> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if declared != in_template {
                problems.push(format!(
                    "{method} {path}: path parameters {declared:?}, template {in_template:?}"
                ));
            }
            for parameter in &parameters {
                let required = parameter["required"].as_bool().unwrap_or(false);
                if parameter["in"] == "path" && !required {
                    problems.push(format!("{method} {path}: {parameter} must be required"));
                }
                if parameter["in"] == "query" && required {
                    problems.push(format!("{method} {path}: {parameter} is optional"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn list_endpoints_declare_their_query_parameters() {
    let doc = serde_json::to_value(chat_http::ApiDoc::openapi()).unwrap();
    let query = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let names = |list: &[&str]| {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(query("/rooms"), names(&["cursor", "limit", "mine", "q"]));
    assert_eq!(
        query("/rooms/{id}/messages"),
        names(&["after", "before", "limit", "thread_root"])
    );
    assert_eq!(query("/rooms/{id}/threads"), names(&["cursor", "limit"]));
    assert_eq!(query("/messages/mentions"), names(&["cursor", "limit"]));
    assert_eq!(
        query("/search"),
        names(&["cursor", "limit", "q", "room_id"])
    );
    assert_eq!(query("/rooms/{id}/changes"), names(&["limit", "since"]));
    assert_eq!(query("/rooms/{id}/members"), names(&["cursor", "limit"]));
    assert_eq!(query("/events"), names(&["ticket"]));
}
