//! Holds the tests to the OpenAPI description (`src/api/openapi.json`):
//! every answer [`super::http::HttpClient`] gets from a route the
//! description has must have a status it lists (or its `default`), a
//! content type it lists, and a JSON body of the schema it gives. The
//! schemas are checked by the `jsonschema` crate (JSON Schema 2020-12, the
//! dialect of OpenAPI 3.1); this module only finds the operation's response
//! in the description.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use http::{Method, StatusCode};
use serde_json::{Value, json};

/// The description, as hookd serves it.
pub static DESCRIPTION: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../../src/api/openapi.json")).expect("openapi.json is JSON")
});

/// Compiled validators by the JSON pointer of their schema.
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = LazyLock::new(Mutex::default);

/// Panics, naming the route and what differs, when an answer is not one
/// the description gives; answers of routes it does not have (a
/// subscriber's, an unknown path) pass.
pub fn check(method: &Method, url: &str, status: StatusCode, content_type: Option<&str>, body: &[u8]) {
    let Some(template) = operation_of(method, url) else {
        return;
    };
    let operation = format!("/paths/{}/{}", escape(template), method.as_str().to_ascii_lowercase());
    let responses = &DESCRIPTION.pointer(&operation).expect("the operation")["responses"];
    let route = format!("{method} {url} ({template})");
    let code = status.as_str();
    let (key, response) = match responses.get(code) {
        Some(response) => (code, response),
        None => (
            "default",
            responses
                .get("default")
                .unwrap_or_else(|| panic!("{route} answered {status}, a status the OpenAPI description does not list")),
        ),
    };
    let mut pointer = format!("{operation}/responses/{key}");
    if let Some(target) = response.get("$ref").and_then(Value::as_str) {
        pointer = target.trim_start_matches('#').to_owned();
    }
    let Some(content) = DESCRIPTION.pointer(&format!("{pointer}/content")) else {
        return;
    };
    let media = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    assert!(
        content.get(media).is_some(),
        "{route} answered {status} as `{media}`; the OpenAPI description gives {:?}",
        content.as_object().map(|media| media.keys().collect::<Vec<_>>())
    );
    if media != "application/json" {
        return;
    }
    let answer: Value = serde_json::from_slice(body)
        .unwrap_or_else(|error| panic!("{route} answered {status} with a body that is not JSON: {error}"));
    let schema = format!("{pointer}/content/{}/schema", escape(media));
    let validator = validator(&schema);
    let problems: Vec<String> = validator
        .iter_errors(&answer)
        .map(|error| format!("at `{}`: {error}", error.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{route} answered {status} in a shape the OpenAPI description does not give:\n{}\nthe answer: {answer}",
        problems.join("\n")
    );
}

/// The path of the description's operation that a request of `method` to
/// `url` calls, if the description has one.
pub fn operation_of(method: &Method, url: &str) -> Option<&'static str> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |slash| &rest[slash..]));
    let path = path.split(['?', '#']).next().unwrap_or(path);
    template_of(path).filter(|template| {
        DESCRIPTION["paths"][template]
            .get(method.as_str().to_ascii_lowercase())
            .is_some()
    })
}

/// Every operation of the description, as `METHOD path`.
pub fn operations() -> Vec<String> {
    let mut all = Vec::new();
    for (path, item) in DESCRIPTION["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                all.push(format!("{} {path}", method.to_ascii_uppercase()));
            }
        }
    }
    all.sort();
    all
}

/// The description's path that `path` is an instance of: a literal one
/// first, else one whose `{param}` segments match any segment.
fn template_of(path: &str) -> Option<&'static str> {
    let paths = DESCRIPTION["paths"].as_object()?;
    if let Some((template, _)) = paths.get_key_value(path) {
        return Some(template.as_str());
    }
    let segments: Vec<&str> = path.split('/').collect();
    paths.keys().map(String::as_str).find(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(part, segment)| {
                (part.starts_with('{') && part.ends_with('}') && !segment.is_empty()) || part == segment
            })
    })
}

/// A JSON pointer's escape of one key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The validator of the schema at `pointer`, whose references resolve
/// within the description.
fn validator(pointer: &str) -> Arc<jsonschema::Validator> {
    let mut validators = VALIDATORS.lock().unwrap_or_else(PoisonError::into_inner);
    validators
        .entry(pointer.to_owned())
        .or_insert_with(|| {
            // The description itself, as a schema that refers to one of
            // its parts: its other keys are not schema keywords.
            let mut schema = DESCRIPTION.clone();
            schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
            let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
            schema["$ref"] = json!(format!("#{fragment}"));
            Arc::new(
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap_or_else(|error| panic!("the schema at {pointer} does not compile: {error}")),
            )
        })
        .clone()
}
