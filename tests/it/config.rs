//! `hookd check-config`: precedence of defaults, file and environment, and
//! every validation error as `SOURCE: KEY: REASON` with exit code 2.

use std::path::{Path, PathBuf};

use crate::support::process::check_config;

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const ONE_ENDPOINT: &str = r#"
[[endpoints]]
id = "crm"
url = "https://crm.example.com/webhooks"
events = ["enrollment.*"]
secret = "top-secret-value"
"#;

#[test]
fn defaults_then_file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "hookd.toml",
        &format!("[delivery]\ntimeout = \"5s\"\nconcurrency = 32\n{ONE_ENDPOINT}"),
    );

    let output = check_config(&path, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let effective: toml::Value = toml::from_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(
        effective["delivery"]["timeout"].as_str(),
        Some("5s"),
        "the file beats the defaults"
    );
    assert_eq!(
        effective["delivery"]["endpoint_concurrency"].as_integer(),
        Some(16),
        "a default fills the gap"
    );
    assert_eq!(effective["ingest"]["listen"].as_str(), Some("127.0.0.1:8787"));
    assert_eq!(effective["events"].as_array().unwrap().len(), 17, "the default catalog");

    let output = check_config(
        &path,
        &[
            ("HOOKD_DELIVERY__TIMEOUT", "7s"),
            ("HOOKD_INGEST__MAX_BATCH_EVENTS", "10"),
        ],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let effective: toml::Value = toml::from_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(
        effective["delivery"]["timeout"].as_str(),
        Some("7s"),
        "the environment beats the file"
    );
    assert_eq!(
        effective["delivery"]["concurrency"].as_integer(),
        Some(32),
        "untouched file keys stay"
    );
    assert_eq!(effective["ingest"]["max_batch_events"].as_integer(), Some(10));
}

#[test]
fn the_cli_variables_are_not_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "hookd.toml", ONE_ENDPOINT);
    let output = check_config(
        &path,
        &[
            ("HOOKD_ADMIN_URL", "http://127.0.0.1:8788"),
            ("HOOKD_ADMIN_TOKEN", "x"),
            ("HOOKD_CONFIG", "/elsewhere.toml"),
        ],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn yaml_files_are_read_as_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "hookd.yaml",
        "delivery:\n  timeout: 3s\nendpoints:\n  - id: crm\n    url: https://crm.example.com/hook\n    events: [\"payment.*\"]\n    secret: s\n",
    );
    let output = check_config(&path, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let effective: toml::Value = toml::from_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(effective["delivery"]["timeout"].as_str(), Some("3s"));
}

#[test]
fn a_yaml_alias_bomb_is_refused_not_expanded() {
    let dir = tempfile::tempdir().unwrap();
    // Each level doubles ten times over: fully expanded, 10^9 strings.
    let mut bomb =
        String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!("{name}: &{name} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"));
    }
    bomb.push_str("events: *i\n");
    let path = write_config(dir.path(), "bomb.yaml", &bomb);
    let started = std::time::Instant::now();
    let output = check_config(&path, &[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "refused without expanding"
    );
}

#[test]
fn secrets_are_redacted_in_the_effective_config() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_config(dir.path(), "crm-secret", "from-a-file\n");
    let path = write_config(
        dir.path(),
        "hookd.toml",
        &format!(
            r#"
[admin]
token = "admin-token-value"
{ONE_ENDPOINT}
[[endpoints.previous_secrets]]
secret = "old-secret-value"
until = "2030-01-01T00:00:00Z"

[[endpoints]]
id = "billing"
url = "https://billing.example.com/webhooks"
events = ["payment.*"]
secret_file = "{}"
"#,
            secret_file.display()
        ),
    );
    let output = check_config(&path, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    for secret in [
        "top-secret-value",
        "admin-token-value",
        "old-secret-value",
        "from-a-file",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked:\n{printed}");
    }
    assert_eq!(printed.matches("\"<redacted>\"").count(), 3, "{printed}");
    assert!(
        printed.contains(&secret_file.display().to_string()),
        "file paths are not secret"
    );
}

#[test]
fn header_values_are_redacted_like_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "hookd.toml",
        &format!("{ONE_ENDPOINT}headers = {{ Authorization = \"Bearer header-credential\", X-Tenant = \"euron\" }}\n"),
    );
    let output = check_config(&path, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        !printed.contains("header-credential") && !printed.contains("euron"),
        "{printed}"
    );
    let effective: toml::Value = toml::from_str(&printed).unwrap();
    assert_eq!(
        effective["endpoints"][0]["headers"]["Authorization"].as_str(),
        Some("<redacted>")
    );
}

/// A config that is wrong somewhere near a secret: its name, its text and
/// its environment.
type LeakCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

#[test]
fn no_error_repeats_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [LeakCase<'_>; 6] = [
        ("a token of the wrong type", "[admin]\ntoken = 4242424242\n", vec![]),
        (
            "a secret of the wrong type",
            "[[endpoints]]\nid = \"crm\"\nurl = \"https://crm.example.com/\"\nevents = [\"*\"]\nsecret = 4242424242\n",
            vec![],
        ),
        (
            "a header value of the wrong type",
            &format!("{ONE_ENDPOINT}headers = {{ Authorization = 4242424242 }}\n"),
            vec![],
        ),
        (
            "a URL with a password",
            "[[endpoints]]\nid = \"crm\"\nurl = \"https://crm:4242424242@crm.example.com/\"\nevents = [\"*\"]\nsecret = \"s\"\n",
            vec![],
        ),
        (
            "a collector URL with a password",
            "[telemetry]\notlp_endpoint = \"http://otel:4242424242@127.0.0.1:4318\"\n",
            vec![],
        ),
        (
            "a token from the environment beside another problem",
            "[delivery]\ntimeout = \"soon\"\n",
            vec![
                ("HOOKD_ADMIN__TOKEN", "4242424242"),
                ("HOOKD_INGEST__TOKEN", "4242424242"),
            ],
        ),
    ];
    for (n, (name, text, env)) in cases.iter().enumerate() {
        let path = write_config(dir.path(), &format!("case{n}.toml"), text);
        let output = check_config(&path, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(!stderr.contains("4242424242"), "{name} leaked:\n{stderr}");
        assert!(
            stderr.lines().all(|line| line.split(": ").count() >= 3),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn tokens_of_any_text_from_the_environment_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "hookd.toml", "");
    for token in ["0042", "true", "[abc]", "1.50"] {
        let output = check_config(&path, &[("HOOKD_ADMIN__TOKEN", token), ("HOOKD_INGEST__TOKEN", token)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{token}: {stderr}");
        let printed = String::from_utf8(output.stdout).unwrap();
        let effective: toml::Value = toml::from_str(&printed).unwrap();
        assert_eq!(effective["admin"]["token"].as_str(), Some("<redacted>"), "{token}");
        assert_eq!(effective["ingest"]["token"].as_str(), Some("<redacted>"), "{token}");
    }
}

/// One invalid config and the error line it must produce.
struct Case {
    name: &'static str,
    toml: String,
    env: Vec<(&'static str, &'static str)>,
    /// `KEY: REASON` fragments expected after `SOURCE: `.
    expect: &'static str,
    /// The source the line must name; `None` means the config file.
    source: Option<&'static str>,
}

fn case(name: &'static str, toml: &str, expect: &'static str) -> Case {
    Case {
        name,
        toml: toml.to_owned(),
        env: Vec::new(),
        expect,
        source: None,
    }
}

fn endpoint(fields: &str) -> String {
    format!("[[endpoints]]\n{fields}\n")
}

#[test]
fn every_validation_error_names_source_key_and_reason() {
    let good = r#"id = "crm"
url = "https://crm.example.com/webhooks"
events = ["payment.*"]"#;
    let cases = vec![
        case(
            "duplicate ids",
            &format!(
                "{}{}",
                endpoint(&format!("{good}\nsecret = \"a\"")),
                endpoint(&format!("{good}\nsecret = \"b\""))
            ),
            "endpoints[1].id: duplicate endpoint id `crm`",
        ),
        case(
            "relative url",
            &endpoint("id = \"a\"\nurl = \"/webhooks\"\nevents = [\"payment.*\"]\nsecret = \"s\""),
            "endpoints[0].url: `/webhooks` is not an absolute http(s) URL",
        ),
        case(
            "ftp url",
            &endpoint("id = \"a\"\nurl = \"ftp://x.example.com/\"\nevents = [\"payment.*\"]\nsecret = \"s\""),
            "endpoints[0].url: `ftp://x.example.com/` is not an absolute http(s) URL",
        ),
        case(
            "event matching nothing",
            &endpoint("id = \"a\"\nurl = \"https://x.example.com/\"\nevents = [\"invoice.*\"]\nsecret = \"s\""),
            "endpoints[0].events[0]: `invoice.*` matches no event in the catalog",
        ),
        case(
            "missing secret",
            &endpoint(good),
            "endpoints[0].secret: missing secret: set one of secret, secret_env or secret_file",
        ),
        case(
            "unset secret variable",
            &endpoint(&format!("{good}\nsecret_env = \"HOOKD_TEST_UNSET_SECRET\"")),
            "endpoints[0].secret: environment variable HOOKD_TEST_UNSET_SECRET is not set",
        ),
        Case {
            env: vec![("CRM_EMPTY_SECRET", "")],
            ..case(
                "empty secret variable",
                &endpoint(&format!("{good}\nsecret_env = \"CRM_EMPTY_SECRET\"")),
                "endpoints[0].secret: environment variable CRM_EMPTY_SECRET is empty",
            )
        },
        case(
            "missing secret file",
            &endpoint(&format!("{good}\nsecret_file = \"/nonexistent/crm-secret\"")),
            "endpoints[0].secret: cannot read secret file /nonexistent/crm-secret",
        ),
        case(
            "two secret sources",
            &endpoint(&format!("{good}\nsecret = \"a\"\nsecret_env = \"B\"")),
            "endpoints[0].secret: set only one of secret, secret_env or secret_file",
        ),
        case(
            "reserved header",
            &endpoint(&format!(
                "{good}\nsecret = \"s\"\nheaders = {{ \"X-Webhook-Signature\" = \"forged\" }}"
            )),
            "endpoints[0].headers.X-Webhook-Signature: `X-Webhook-Signature` is reserved",
        ),
        case(
            "reserved content type",
            &endpoint(&format!(
                "{good}\nsecret = \"s\"\nheaders = {{ \"content-type\" = \"text/plain\" }}"
            )),
            "endpoints[0].headers.content-type: `content-type` is reserved",
        ),
        case(
            "standard webhooks secret",
            &endpoint(&format!(
                "{good}\nsecret = \"plain\"\nsignatures = [\"hex\", \"standard-webhooks\"]"
            )),
            "endpoints[0].secret: with standard-webhooks, the secret must start with `whsec_`",
        ),
        case(
            "malformed duration",
            "[delivery]\ntimeout = \"10 seconds\"\n",
            "delivery.timeout: invalid duration `10 seconds`",
        ),
        case(
            "malformed schedule entry",
            "[delivery]\nretry_schedule = [\"1m\", \"5x\"]\n",
            "delivery.retry_schedule[1]: invalid duration `5x`: unknown unit `x`",
        ),
        case(
            "zero timeout",
            "[delivery]\ntimeout = \"0s\"\n",
            "delivery.timeout: `0s` must be longer than zero",
        ),
        case(
            "unknown top-level key",
            "colour = \"blue\"\n",
            "colour: unknown key `colour`",
        ),
        case(
            "unknown nested key",
            "[delivery]\ntimeuot = \"5s\"\n",
            "delivery.timeuot: unknown key `timeuot`",
        ),
        case(
            "unknown endpoint key",
            &endpoint(&format!("{good}\nsecret = \"s\"\nenabeld = false")),
            "endpoints[0].enabeld: unknown key `enabeld`",
        ),
        case(
            "wrong type",
            "[ingest]\nmax_body_bytes = \"big\"\n",
            "ingest.max_body_bytes: invalid type",
        ),
        case(
            "jitter out of range",
            "[delivery]\nretry_jitter = 1.5\n",
            "delivery.retry_jitter: 1.5 is out of range",
        ),
        case(
            "bad network",
            "[delivery]\nallowed_networks = [\"10.0.0.0/33\"]\n",
            "delivery.allowed_networks[0]: `10.0.0.0/33` is not a network",
        ),
        case(
            "admin beyond loopback without a token",
            "[admin]\nlisten = \"0.0.0.0:8788\"\n",
            "admin.listen: 0.0.0.0:8788 is not a loopback address: set admin.token",
        ),
        case(
            "ingest beyond loopback without a token",
            "[ingest]\nlisten = \"0.0.0.0:8787\"\n",
            "ingest.listen: 0.0.0.0:8787 is not a loopback address: set ingest.token",
        ),
        case(
            "empty ingest token",
            "[ingest]\ntoken = \"\"\n",
            "ingest.token: must not be empty",
        ),
        case(
            "an allowed host with a port",
            "[admin]\nallowed_hosts = [\"hookd.internal:8788\"]\n",
            "admin.allowed_hosts[0]: `hookd.internal:8788` is not a host name",
        ),
        case(
            "concurrency past tokio's semaphore",
            "[delivery]\nconcurrency = 2305843009213693952\n",
            "delivery.concurrency: 2305843009213693952 is out of range: must be from 1 to 1000000",
        ),
        case(
            "endpoint concurrency past a million",
            "[delivery]\nendpoint_concurrency = 1000001\n",
            "delivery.endpoint_concurrency: 1000001 is out of range",
        ),
        case(
            "a malformed rate limit",
            &endpoint(&format!("{good}\nsecret = \"s\"\nrate_limit = \"50/h\"")),
            "endpoints[0].rate_limit: `50/h` is not a rate limit",
        ),
        case(
            "an unknown ordering",
            &endpoint(&format!("{good}\nsecret = \"s\"\nordering = \"fifo\"")),
            "endpoints[0].ordering: unknown ordering `fifo`",
        ),
        case(
            "a rate limit of nothing",
            &endpoint(&format!("{good}\nsecret = \"s\"\nrate_limit = \"0/s\"")),
            "endpoints[0].rate_limit: `0/s` allows no request",
        ),
        case(
            "breaker failures past a million",
            "[delivery.breaker]\nfailures = 1000001\n",
            "delivery.breaker.failures: 1000001 is out of range",
        ),
        case(
            "a breaker's longest cooldown shorter than its first",
            "[delivery.breaker]\ncooldown = \"10m\"\nmax_cooldown = \"1m\"\n",
            "delivery.breaker.max_cooldown: `1m` is shorter than the cooldown (`10m`)",
        ),
        case(
            "an alert endpoint that is not there",
            &format!(
                "[operations]\nalert_endpoint = \"ops\"\n{}",
                endpoint(&format!("{good}\nsecret = \"s\""))
            ),
            "operations.alert_endpoint: no endpoint has the id `ops`",
        ),
        case(
            "hookd's own event names in the catalog",
            "events = [\"payment.completed\", \"hookd.delivery.failed\"]\n",
            "events[1]: names starting with `hookd.` are hookd's own events",
        ),
        case(
            "an endpoint subscribed to nothing that is not the alert endpoint",
            &endpoint("id = \"crm\"\nurl = \"https://crm.example.com\"\nevents = []\nsecret = \"s\""),
            "endpoints[0].events: subscribe to at least one event",
        ),
        case(
            "a batch past a million",
            "[ingest]\nmax_batch_events = 1000001\n",
            "ingest.max_batch_events: 1000001 is out of range",
        ),
        case(
            "a body past 1 GiB",
            "[ingest]\nmax_body_bytes = 1073741825\n",
            "ingest.max_body_bytes: 1073741825 is out of range: must be from 1 to 1 GiB",
        ),
        case(
            "a duration of u64::MAX milliseconds",
            "[delivery]\ntimeout = \"18446744073709551615ms\"\n",
            "delivery.timeout: invalid duration `18446744073709551615ms`: longer than 100 years",
        ),
        case(
            "a retry delay over 100 years",
            "[delivery]\nretry_schedule = [\"1m\", \"36526d\"]\n",
            "delivery.retry_schedule[1]: invalid duration `36526d`: longer than 100 years",
        ),
        case(
            "a retention over 100 years",
            "[storage]\nretention = \"876601h\"\n",
            "storage.retention: invalid duration `876601h`: longer than 100 years",
        ),
        case(
            "reserved catalog name",
            "events = [\"payment.completed\", \"webhook.test\"]\n",
            "events[1]: `webhook.test` is reserved for test pings",
        ),
        case(
            "bad listen address",
            "[ingest]\nlisten = \"localhost\"\n",
            "ingest.listen: `localhost` is not an address",
        ),
        case(
            "bad log format",
            "[telemetry]\nlog_format = \"xml\"\n",
            "telemetry.log_format: unknown format `xml`",
        ),
        case("toml syntax", "[delivery\ntimeout = 1\n", "(file): "),
        Case {
            env: vec![("HOOKD_DELIVERY__TIMEOUT", "soon")],
            source: Some("env HOOKD_DELIVERY__TIMEOUT"),
            ..case(
                "malformed duration from env",
                "",
                "delivery.timeout: invalid duration `soon`",
            )
        },
        Case {
            env: vec![("HOOKD_DELIVERY__TIMEUOT", "5s")],
            source: Some("env HOOKD_DELIVERY__TIMEUOT"),
            ..case("unknown key from env", "", "delivery.timeuot: unknown key `timeuot`")
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let path = write_config(dir.path(), &format!("case{n}.toml"), &case.toml);
        let output = check_config(&path, &case.env);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let source = case.source.map_or_else(|| path.display().to_string(), str::to_owned);
        let expected = format!("{source}: {}", case.expect);
        let ok = output.status.code() == Some(2)
            && output.stdout.is_empty()
            && stderr.lines().any(|line| line.contains(&expected));
        if !ok {
            failures.push(format!(
                "{}: exit {:?}, expected a line containing\n  {expected}\ngot:\n{stderr}",
                case.name,
                output.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "hookd.toml",
        "[delivery]\ntimeout = \"x\"\nshutdown_grace = \"y\"\n[[endpoints]]\nid = \"a b\"\nurl = \"nope\"\nevents = [\"payment.*\"]\nsecret = \"s\"\n",
    );
    let output = check_config(&path, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for key in [
        "delivery.timeout",
        "delivery.shutdown_grace",
        "endpoints[0].id",
        "endpoints[0].url",
    ] {
        assert!(stderr.contains(&format!(": {key}: ")), "{key} missing from:\n{stderr}");
    }
}

#[test]
fn problems_in_included_files_name_the_included_file() {
    let dir = tempfile::tempdir().unwrap();
    let included = dir.path().join("endpoints.d");
    std::fs::create_dir(&included).unwrap();
    let main = write_config(
        dir.path(),
        "hookd.toml",
        &format!("include = [\"endpoints.d/*.toml\", \"endpoints.d/*.yaml\", \"empty.d/*.toml\"]\n{ONE_ENDPOINT}"),
    );
    std::fs::write(
        included.join("acme.toml"),
        "[[endpoints]]\nid = \"acme-crm\"\ntenant = \"acme corp\"\nurl = \"https://acme.example\"\nevents = [\"payment.*\"]\nsecret = \"s\"\n",
    )
    .unwrap();
    std::fs::write(
        included.join("globex.yaml"),
        "endpoints:\n  - id: crm\n    url: https://globex.example\n    events: [\"payment.*\"]\n    secret: s\n",
    )
    .unwrap();
    let output = check_config(&main, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let acme = included.join("acme.toml").display().to_string();
    let globex = included.join("globex.yaml").display().to_string();
    assert!(
        stderr.contains(&format!("{acme}: endpoints[0].tenant: `acme corp` is not a tenant id")),
        "{stderr}"
    );
    let duplicate = stderr
        .lines()
        .find(|line| {
            line.starts_with(&format!(
                "{globex}: endpoints[0].id: duplicate endpoint id `crm` (also in "
            ))
        })
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(duplicate.ends_with("hookd.toml)"), "{duplicate}");

    // Fixed, the included endpoints are part of the config; the glob that
    // matches nothing is no error.
    std::fs::write(
        included.join("acme.toml"),
        "[[endpoints]]\nid = \"acme-crm\"\ntenant = \"acme\"\nurl = \"https://acme.example\"\nevents = [\"payment.*\"]\nsecret = \"s\"\n",
    )
    .unwrap();
    std::fs::remove_file(included.join("globex.yaml")).unwrap();
    let output = check_config(&main, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // An included file may hold nothing but endpoints.
    std::fs::write(included.join("bad.toml"), "[delivery]\ntimeout = \"1s\"\n").unwrap();
    let output = check_config(&main, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let bad = included.join("bad.toml").display().to_string();
    assert!(
        stderr.contains(&bad) && stderr.contains("unknown key `delivery`"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_a_config_error() {
    let output = check_config(Path::new("/nonexistent/hookd.toml"), &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("/nonexistent/hookd.toml: (file): cannot read"),
        "{stderr}"
    );
}

#[test]
fn the_example_config_in_the_repo_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hookd.toml");
    let output = check_config(&path, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("http://127.0.0.1:9000/webhooks"));
    assert!(
        !printed.contains("whsec-demo-only-change-me"),
        "the demo secret is redacted"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::process::hookd_binary())
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["serve", "--no-such-flag"]).status.code(), Some(2));
    for args in [&["--help"][..], &["serve", "--help"], &["check-config", "--help"]] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("--"),
            "{args:?} prints help"
        );
    }
}
