//! Turning the JSON of one posted event into a [`NewEvent`].
//!
//! Each field is taken raw and checked on its own, so an error names the
//! field and says what it should be. `data` is never decoded and
//! re-encoded: its bytes go into the wire body exactly as sent.

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::error::{ApiError, json_error};
use crate::catalog::TEST_EVENT;
use crate::config::Settings;
use crate::event::{check_event_id, format_received_at, generate_event_id, normalize_created_at, wire_body};
use crate::store::NewEvent;
use crate::tenant::check_tenant_id;

/// How deep `data` may nest: what serde_json allows elsewhere, so every
/// subscriber's parser can read what hookd accepts.
const MAX_DATA_DEPTH: usize = 128;

/// The posted fields, still raw JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields<'a> {
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    created_at: Option<&'a RawValue>,
    #[serde(borrow)]
    tenant: Option<&'a RawValue>,
    #[serde(borrow)]
    ordering_key: Option<&'a RawValue>,
}

/// What one request shares between its events.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub now: OffsetDateTime,
    pub traceparent: Option<&'a str>,
}

/// Parses a single event posted as the whole body.
pub fn parse_event(json: &str, context: &Context<'_>) -> Result<NewEvent, ApiError> {
    let fields: Fields<'_> = serde_json::from_str(json).map_err(json_error)?;
    build(fields, context)
}

/// Parses one item of a batch; its errors carry the item's index.
pub fn parse_batch_item(item: &RawValue, index: usize, context: &Context<'_>) -> Result<NewEvent, ApiError> {
    let fields: Fields<'_> = serde_json::from_str(item.get())
        .map_err(|error| ApiError::invalid_field(format!("events[{index}]: {error}")).at(index))?;
    build(fields, context).map_err(|error| error.at(index))
}

/// The longest `ordering_key`, in bytes.
const MAX_ORDERING_KEY_BYTES: usize = 256;

fn build(fields: Fields<'_>, context: &Context<'_>) -> Result<NewEvent, ApiError> {
    let event = required_string(fields.event, "event")?;
    if event == TEST_EVENT {
        return Err(ApiError::unknown_event(format!(
            "`{TEST_EVENT}` is reserved for test pings from the admin API"
        )));
    }
    if !context.settings.catalog.contains(&event) {
        return Err(ApiError::unknown_event(format!(
            "`{event}` is not in the event catalog (the `events` key of the config)"
        )));
    }
    let data = fields
        .data
        .ok_or_else(|| ApiError::invalid_field("`data` is required"))?
        .get();
    if !data.starts_with('{') {
        return Err(ApiError::invalid_field("`data` must be a JSON object"));
    }
    if nesting_depth(data) > MAX_DATA_DEPTH {
        return Err(ApiError::invalid_json(format!(
            "`data` is nested more than {MAX_DATA_DEPTH} levels deep"
        )));
    }
    let (id, id_generated) = match fields.id {
        Some(raw) => {
            let id = string_field(raw, "id")?;
            check_event_id(&id).map_err(|reason| ApiError::invalid_field(format!("`id` {reason}")))?;
            (id, false)
        }
        None => (generate_event_id(context.now), true),
    };
    let (created_at, created_at_given) = match fields.created_at {
        Some(raw) => {
            let text = string_field(raw, "created_at")?;
            let (_, normalized) = normalize_created_at(&text)
                .map_err(|reason| ApiError::invalid_field(format!("`created_at` {reason}")))?;
            (normalized, true)
        }
        None => (format_received_at(context.now), false),
    };
    let tenant = match fields.tenant {
        Some(raw) => {
            let tenant = string_field(raw, "tenant")?;
            check_tenant_id(&tenant).map_err(|reason| ApiError::invalid_field(format!("`tenant`: {reason}")))?;
            Some(tenant)
        }
        None => None,
    };
    let ordering_key = match fields.ordering_key {
        Some(raw) => {
            let key = string_field(raw, "ordering_key")?;
            if key.is_empty() || key.len() > MAX_ORDERING_KEY_BYTES {
                return Err(ApiError::invalid_field(format!(
                    "`ordering_key` must be 1 to {MAX_ORDERING_KEY_BYTES} bytes of UTF-8"
                )));
            }
            Some(key)
        }
        None => None,
    };
    let (body, data_range) = wire_body(&id, &event, &created_at, data);
    let endpoints = context.settings.endpoints.routed(&event, tenant.as_deref());
    let keyed_endpoints = match ordering_key {
        Some(_) => endpoints
            .iter()
            .filter(|id| {
                context
                    .settings
                    .endpoints
                    .get(id)
                    .is_some_and(|endpoint| endpoint.ordered)
            })
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    Ok(NewEvent {
        id,
        id_generated,
        event,
        created_at,
        created_at_given,
        tenant,
        ordering_key,
        keyed_endpoints,
        body: body.into(),
        data: data_range,
        traceparent: context.traceparent.map(str::to_owned),
        endpoints,
        received_at: crate::clock::unix_millis(context.now),
    })
}

/// The deepest nesting of objects and arrays in well-formed JSON `raw`.
fn nesting_depth(raw: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in raw.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn required_string(raw: Option<&RawValue>, name: &str) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::invalid_field(format!("`{name}` is required")))?;
    string_field(raw, name)
}

fn string_field(raw: &RawValue, name: &str) -> Result<String, ApiError> {
    serde_json::from_str(raw.get()).map_err(|_| ApiError::invalid_field(format!("`{name}` must be a string")))
}

#[cfg(test)]
mod tests {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::config::default_settings;

    /// Any JSON value, nested a few levels.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN", |number| number.is_finite())
                .prop_map(Value::from),
            ".{0,10}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                btree_map(".{0,6}", inner, 0..4).prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// An event body: known and unknown event types, any `data`, odd ids
    /// and timestamps, sometimes an unknown field.
    fn event_body() -> impl Strategy<Value = String> {
        (
            prop_oneof!["payment.completed", "enrollment.created", ".{0,12}"],
            json(),
            proptest::option::of("[a-zA-Z0-9_.:-]{0,8}|.{0,8}"),
            proptest::option::of("[0-9T:.+Z-]{0,25}"),
            proptest::option::of(json()),
        )
            .prop_map(|(event, data, id, created_at, extra)| {
                let mut body = serde_json::Map::new();
                body.insert("event".into(), Value::from(event));
                body.insert("data".into(), data);
                if let Some(id) = id {
                    body.insert("id".into(), Value::from(id));
                }
                if let Some(created_at) = created_at {
                    body.insert("created_at".into(), Value::from(created_at));
                }
                if let Some(extra) = extra {
                    body.insert("extra".into(), extra);
                }
                Value::Object(body).to_string()
            })
    }

    /// Endpoints of two tenants, of every tenant, and of none, each
    /// subscribed to every event.
    fn tenant_settings() -> Settings {
        let endpoints: String = [("acme", Some("acme")), ("globex", Some("globex")), ("platform", Some("*")), ("plain", None)]
            .iter()
            .map(|(id, tenant)| {
                let tenant = tenant.map(|tenant| format!("tenant = \"{tenant}\"\n")).unwrap_or_default();
                format!("[[endpoints]]\nid = \"{id}\"\nurl = \"https://{id}.example\"\nevents = [\"*\"]\nsecret = \"s\"\n{tenant}")
            })
            .collect();
        use figment::providers::{Format, Toml};
        let figment = figment::Figment::from(Toml::string(crate::config::DEFAULTS)).merge(Toml::string(&endpoints));
        crate::config::from_figment(&figment).unwrap()
    }

    fn context(settings: &Settings) -> Context<'_> {
        Context {
            settings,
            now: OffsetDateTime::now_utc(),
            traceparent: None,
        }
    }

    proptest! {
        #[test]
        fn any_body_is_an_event_or_a_4xx(text in "(?s).{0,200}") {
            let settings = default_settings();
            if let Err(error) = parse_event(&text, &context(&settings)) {
                prop_assert!(error.status.is_client_error(), "{error:?}");
            }
        }

        /// Whatever tenant an event names (or none), ingest routes it only
        /// to endpoints that admit it: never to another tenant's.
        #[test]
        fn no_event_is_routed_to_another_tenants_endpoint(
            tenant in proptest::option::of(prop_oneof![
                Just("acme".to_owned()),
                Just("globex".to_owned()),
                "[a-z.]{1,8}",
            ]),
            event in prop_oneof![Just("payment.completed"), Just("enrollment.created"), Just("course.published")],
        ) {
            let settings = tenant_settings();
            let mut body = serde_json::json!({ "event": event, "data": {} });
            if let Some(tenant) = &tenant {
                body["tenant"] = Value::from(tenant.clone());
            }
            let routed = parse_event(&body.to_string(), &context(&settings)).unwrap();
            prop_assert_eq!(&routed.tenant, &tenant);
            prop_assert!(routed.endpoints.contains(&"platform".to_owned()));
            for id in &routed.endpoints {
                let endpoint = settings.endpoints.get(id).unwrap();
                prop_assert!(endpoint.audience.admits(tenant.as_deref()), "{} got {:?}", id, tenant);
            }
            let own = match tenant.as_deref() {
                Some("acme") => Some("acme"),
                Some("globex") => Some("globex"),
                Some(_) => None,
                None => Some("plain"),
            };
            prop_assert_eq!(routed.endpoints.len(), 1 + usize::from(own.is_some()));
        }

        #[test]
        fn json_events_keep_their_data_bytes_or_get_a_4xx(body in event_body()) {
            let settings = default_settings();
            match parse_event(&body, &context(&settings)) {
                Ok(event) => {
                    // The very bytes the app sent, not a re-serialisation.
                    let sent: std::collections::HashMap<String, &RawValue> = serde_json::from_str(&body).unwrap();
                    prop_assert_eq!(&event.body[event.data.clone()], sent["data"].get().as_bytes());
                    let wire: std::collections::HashMap<String, &RawValue> =
                        serde_json::from_slice(&event.body).unwrap();
                    prop_assert_eq!(wire["data"].get(), sent["data"].get());
                }
                Err(error) => prop_assert!(error.status.is_client_error(), "{error:?}"),
            }
        }
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(nesting_depth("{}"), 1);
        assert_eq!(nesting_depth(r#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(nesting_depth(r#"{"a":"[[[{{{\"]]]"}"#), 1);
        assert_eq!(nesting_depth(r#"{"a":"\\","b":[]}"#), 2);
    }
}
