#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The value at dotted `path` of `config`'s tree.
fn at(config: &Config, path: &[&str]) -> Value {
    let pointer: String = path.iter().map(|p| format!("/{p}")).collect();
    config.tree().unwrap().pointer(&pointer).cloned().unwrap()
}

/// An environment of the given variables.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

/// A value of `kind` other than `default`: (what the tree holds then, the variable's text).
fn sample(kind: &Kind, default: &Value) -> (Value, String) {
    match kind {
        Kind::Bool => {
            let b = !default.as_bool().unwrap_or(false);
            (json!(b), b.to_string())
        }
        Kind::Int { min, max } => {
            let d = default
                .as_i64()
                .map(i128::from)
                .or(default.as_u64().map(i128::from))
                .unwrap_or(0);
            let n = if d < *max { d + 1 } else { (d - 1).max(*min) };
            let v: Value = serde_json::from_str(&n.to_string()).unwrap();
            (v, n.to_string())
        }
        Kind::Float => {
            let f = default.as_f64().unwrap_or(0.0) + 1.5;
            (json!(f), f.to_string())
        }
        Kind::Str => {
            let s = format!("{}-x", default.as_str().unwrap_or("v"));
            (json!(s), s)
        }
        Kind::Enum(variants) => {
            let v = variants
                .iter()
                .find(|v| default.as_str() != Some(**v))
                .unwrap();
            (json!(v), v.to_string())
        }
        Kind::Option(inner) => sample(inner, default),
        Kind::List(inner) => {
            let (a, a_text) = sample(inner, &Value::Null);
            let (b, b_text) = sample(inner, &a);
            (json!([a, b]), format!("{a_text}, {b_text}"))
        }
        Kind::Map(inner) => {
            let (v, text) = sample(inner, &Value::Null);
            let mut map = default.as_object().cloned().unwrap_or_default();
            map.insert("sample.name".into(), v);
            (Value::Object(map), format!("sample.name={text}"))
        }
        Kind::Table(_) => unreachable!("leaves are never tables"),
    }
}

/// TOML text setting the leaf at `path` to `value` (for a map: its entries).
fn toml_text(path: &[&str], value: &Value) -> String {
    let (key, sections) = path.split_last().unwrap();
    let value = toml::Value::try_from(value).unwrap();
    format!("[{}]\n{key} = {value}\n", sections.join("."))
}

#[test]
fn empty_file_gives_defaults_and_the_shipped_file_holds_only_defaults() {
    assert_eq!(Config::parse("t.toml", "").unwrap(), Config::default());
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/threds.toml");
    assert_eq!(Config::load(&shipped).unwrap(), Config::default());
}

#[test]
fn every_setting_is_settable_from_the_file_and_from_its_variable() {
    let defaults = Config::default();
    let leaves = Config::settings().unwrap();
    assert!(leaves.len() > 30, "{leaves:?}");
    for leaf in &leaves {
        let default = at(&defaults, &leaf.path);
        let (want, text) = sample(&leaf.kind, &default);
        assert_ne!(want, default, "{}", leaf.dotted());

        let toml = toml_text(&leaf.path, &want);
        let from_file = Config::parse("t.toml", &toml)
            .unwrap_or_else(|e| panic!("{}: {toml}: {e}", leaf.dotted()));
        assert_eq!(at(&from_file, &leaf.path), want, "{toml}");

        let name = variable(&leaf.path);
        let from_env = Config::default()
            .with_env(env(&[(&name, &text)]))
            .unwrap_or_else(|e| panic!("{name}={text}: {e}"));
        assert_eq!(at(&from_env, &leaf.path), want, "{name}={text}");
    }
}

#[test]
fn every_short_alias_sets_its_setting() {
    let leaves = Config::settings().unwrap();
    for (name, setting) in ALIASES {
        let leaf = leaves
            .iter()
            .find(|l| l.dotted() == *setting)
            .unwrap_or_else(|| panic!("{name}: no setting {setting}"));
        let (want, text) = sample(&leaf.kind, &at(&Config::default(), &leaf.path));
        let c = Config::default().with_env(env(&[(name, &text)])).unwrap();
        assert_eq!(at(&c, &leaf.path), want, "{name}={text}");
    }
}

#[test]
fn variables_are_unique_and_the_long_name_wins() {
    let leaves = Config::settings().unwrap();
    let mut names = BTreeSet::new();
    for leaf in &leaves {
        assert!(names.insert(variable(&leaf.path)), "{}", leaf.dotted());
    }
    for (name, _) in ALIASES {
        assert!(names.insert(name.to_string()), "{name} is also a long name");
    }
    let c = Config::default()
        .with_env(env(&[
            ("THREDS_LISTEN", "0.0.0.0:1"),
            ("THREDS_SERVER_LISTEN", "0.0.0.0:2"),
        ]))
        .unwrap();
    assert_eq!(c.server.listen, "0.0.0.0:2");
}

#[test]
fn documented_variables_keep_their_meaning() {
    let c = Config::default()
        .with_env(env(&[
            ("THREDS_REDIS_URLS", "redis://a:1, redis://b:2,"),
            ("THREDS_HISTORY", "off"),
            ("THREDS_PARTITIONS", "8"),
            ("THREDS_SESSIONS", ""),
            ("THREDS_DOCUMENTS", "memory"),
            ("THREDS_DOCUMENTS_MONGODB_TRANSACTIONS", "true"),
            ("THREDS_STORE_REDIS_LOCK_MASTER_TIMEOUT_MS", "400"),
        ]))
        .unwrap();
    assert_eq!(c.store.redis.urls, ["redis://a:1", "redis://b:2"]);
    assert!(!c.engine.history);
    assert_eq!(c.engine.partitions, 8);
    assert_eq!(c.model.sessions, None);
    assert_eq!(c.documents.backend, Some(Backend::Memory));
    assert_eq!(c.documents.mongodb.transactions, Some(true));
    assert_eq!(
        c.store.redis.lock.master_timeout,
        std::time::Duration::from_millis(400)
    );
}

#[test]
fn kafka_properties_come_from_the_file_and_the_environment() {
    let c = Config::parse(
        "t.toml",
        "[bus.kafka.properties]\n\"security.protocol\" = \"ssl\"\n\"fetch.wait.max.ms\" = \"50\"\n",
    )
    .unwrap();
    let c = c
        .with_env(env(&[(
            "THREDS_KAFKA_PROPERTIES",
            "fetch.wait.max.ms=10, linger.ms=5",
        )]))
        .unwrap();
    let props: Vec<(&str, &str)> = c
        .bus
        .kafka
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        props,
        [
            ("fetch.wait.max.ms", "10"),
            ("linger.ms", "5"),
            ("security.protocol", "ssl")
        ]
    );
}

#[test]
fn bad_values_name_the_variable_the_setting_and_what_was_expected() {
    let cases = [
        (
            "THREDS_PARTITIONS",
            "zero",
            "engine.partitions",
            "whole number",
        ),
        (
            "THREDS_ENGINE_PARTITIONS",
            "-1",
            "engine.partitions",
            "from 0 to 4294967295",
        ),
        ("THREDS_ENGINE_BATCH", "1.5", "engine.batch", "whole number"),
        ("THREDS_HISTORY", "maybe", "engine.history", "true/false"),
        (
            "THREDS_BUS",
            "postgres",
            "bus.backend",
            "memory, kafka, redis, mongodb",
        ),
        (
            "THREDS_KAFKA_PROPERTIES",
            "linger.ms",
            "bus.kafka.properties",
            "name=value",
        ),
        (
            "THREDS_DOCUMENTS_MONGODB_MAX_POOL_SIZE",
            "many",
            "documents.mongodb.max_pool_size",
            "whole number",
        ),
    ];
    for (name, value, setting, expected) in cases {
        let err = Config::default()
            .with_env(env(&[(name, value)]))
            .unwrap_err()
            .to_string();
        for part in [name, setting, value, expected] {
            assert!(err.contains(part), "{name}={value}: {err}");
        }
    }
    let zero = Config::default()
        .with_env(env(&[("THREDS_PARTITIONS", "0")]))
        .unwrap();
    let err = zero.check().unwrap_err().to_string();
    assert!(
        err.contains("THREDS_ENGINE_PARTITIONS") && err.contains("at least 1"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_bad_values_in_the_file_name_file_line_and_key() {
    let err = Config::parse("t.toml", "[server]\nlisten = \"x\"\nlisen = 1\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.toml") && err.contains("lisen") && err.contains("line 3"),
        "{err}"
    );
    let err = Config::parse("t.toml", "[store.redis.lock]\nretries = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.toml") && err.contains("retries") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn keys_of_earlier_releases_still_work() {
    let c = Config::parse(
        "t.toml",
        "[bus]\nbrokers = \"k:1\"\nsession_timeout_ms = 6000\n[bus.properties]\n\"linger.ms\" = \"5\"\n\
         [store]\nredis_urls = [\"redis://r:1\"]\nprefix = \"p:\"\n\
         [documents]\nmongodb_uri = \"mongodb://m:1\"\ndatabase = \"d\"\nmax_pool_size = 3\n",
    )
    .unwrap();
    assert_eq!(c.bus.kafka.brokers, "k:1");
    assert_eq!(c.bus.kafka.session_timeout.as_millis(), 6000);
    assert_eq!(c.bus.kafka.properties["linger.ms"], "5");
    assert_eq!(c.store.redis.urls, ["redis://r:1"]);
    assert_eq!(c.store.redis.prefix, "p:");
    assert_eq!(c.documents.mongodb.uri, "mongodb://m:1");
    assert_eq!(c.documents.mongodb.database, "d");
    assert_eq!(c.documents.mongodb.max_pool_size, Some(3));
    let err = Config::parse(
        "t.toml",
        "[bus]\nbrokers = \"a\"\n[bus.kafka]\nbrokers = \"b\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("bus.kafka.brokers") && err.contains("line 2"),
        "{err}"
    );
    let leaves: BTreeSet<String> = Config::settings()
        .unwrap()
        .iter()
        .map(Leaf::dotted)
        .collect();
    for (_, new) in LEGACY {
        assert!(leaves.contains(*new), "{new}");
    }
}

#[test]
fn masked_toml_hides_every_secret_and_reads_back() {
    let secrets = ["hunter2", "r3dis", "m0ngo", "k4fka", "jaa5"];
    let c = Config::default()
        .with_env(env(&[
            ("THREDS_JWT_SECRET", "hunter2"),
            ("THREDS_REDIS_URLS", "redis://:r3dis@a:6379/0,redis://user:r3dis@b"),
            ("THREDS_MONGODB_URI", "mongodb://app:m0ngo@m1,m2/?replicaSet=rs0"),
            (
                "THREDS_KAFKA_PROPERTIES",
                "sasl.password=k4fka,ssl.key.password=k4fka,sasl.jaas.config=jaa5,sasl.username=bob",
            ),
        ]))
        .unwrap();
    let text = c.to_masked_toml().unwrap();
    for s in secrets {
        assert!(!text.contains(s), "{s} shown:\n{text}");
    }
    for shown in [
        "jwt_secret = \"********\"",
        "\"redis://:********@a:6379/0\"",
        "\"redis://user:********@b\"",
        "uri = \"mongodb://app:********@m1,m2/?replicaSet=rs0\"",
        "\"sasl.password\" = \"********\"",
        "\"sasl.username\" = \"bob\"",
        "[store.redis.lock]",
        "# data_dir is unset",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
    let plain = Config::default()
        .with_env(env(&[("THREDS_NODE", "n1")]))
        .unwrap();
    let again = Config::parse("printed", &plain.to_masked_toml().unwrap()).unwrap();
    assert_eq!(again, plain);
}

/// The `## Settings` section of `docs/operations.md`.
fn settings_doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("\n## Settings").expect("a `## Settings` section");
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

#[test]
fn the_operations_doc_lists_exactly_the_settings_with_variables_and_defaults() {
    let doc = settings_doc();
    let key = regex::Regex::new(r"`\[([a-z_.]+)\] ([a-z_]+)`").unwrap();
    let defaults = Config::default();
    let leaves = Config::settings().unwrap();
    let mut documented = BTreeSet::new();
    for row in doc.lines().filter(|l| l.starts_with('|')) {
        let Some(m) = key.captures(row) else { continue };
        let setting = format!("{}.{}", &m[1], &m[2]);
        assert!(documented.insert(setting.clone()), "{setting} twice");
        let Some(leaf) = leaves.iter().find(|l| l.dotted() == setting) else {
            panic!("the doc lists {setting}, which is not a setting");
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | what | file key | environment | flag | default |
        assert_eq!(cells.len(), 7, "{row}");
        let (vars, default_cell) = (cells[3], cells[5]);
        assert!(
            vars.contains(&format!("`{}`", variable(&leaf.path))),
            "{row}"
        );
        for (alias, _) in ALIASES.iter().filter(|(_, p)| *p == setting) {
            assert!(vars.contains(&format!("`{alias}`")), "{alias}: {row}");
        }
        let default = at(&defaults, &leaf.path);
        let shown: Vec<String> = match &default {
            Value::Array(items) => items
                .iter()
                .map(|v| v.to_string().trim_matches('"').to_string())
                .collect(),
            Value::Null | Value::Object(_) => Vec::new(),
            other => vec![other.to_string().trim_matches('"').to_string()],
        };
        for s in shown {
            assert!(
                default_cell.contains(&format!("`{s}`")),
                "default `{s}` missing: {row}"
            );
        }
    }
    let all: BTreeSet<String> = leaves.iter().map(Leaf::dotted).collect();
    let missing: Vec<&String> = all.difference(&documented).collect();
    assert!(missing.is_empty(), "not in docs/operations.md: {missing:?}");
    for (old, _) in LEGACY {
        assert!(
            doc.contains(&format!("`{old}`")),
            "older key {old} not listed"
        );
    }
}

#[test]
fn auth_key_set_settings_are_checked() {
    let ok = Config::default()
        .with_env(env(&[
            (
                "THREDS_AUTH_JWKS_URL",
                "https://id.example.com/.well-known/jwks.json",
            ),
            ("THREDS_AUTH_ISSUER", "https://id.example.com/"),
            ("THREDS_AUTH_AUDIENCE", "threds"),
            ("THREDS_AUTH_JWKS_REFRESH_SECS", "60"),
        ]))
        .unwrap();
    ok.check().unwrap();
    assert_eq!(ok.auth.jwks_min_refresh_secs, 10);
    assert!(
        Config::parse("t.toml", "[auth]\njwks_url = \"http://127.0.0.1:9/k\"\n")
            .unwrap()
            .check()
            .is_ok()
    );
    let cases = [
        (
            "THREDS_AUTH_JWKS_URL",
            "id.example.com/jwks",
            "http:// or https://",
        ),
        (
            "THREDS_AUTH_JWKS_URL",
            "ftp://id.example.com/jwks",
            "http:// or https://",
        ),
        ("THREDS_AUTH_JWKS_URL", "https:///jwks", "with a host"),
        (
            "THREDS_AUTH_JWKS_URL",
            "https://id example/jwks",
            "http:// or https://",
        ),
        ("THREDS_AUTH_JWKS_REFRESH_SECS", "0", "at least 1"),
        ("THREDS_AUTH_JWKS_MIN_REFRESH_SECS", "0", "at least 1"),
    ];
    for (name, value, expected) in cases {
        let c = Config::default().with_env(env(&[(name, value)])).unwrap();
        let err = c.check().unwrap_err().to_string();
        let setting = name.trim_start_matches("THREDS_AUTH_").to_lowercase();
        assert!(
            err.contains(name)
                && err.contains(&format!("auth.{setting}"))
                && err.contains(expected),
            "{name}={value}: {err}"
        );
    }
    let blank = Config::parse("t.toml", "[auth]\naudience = \" \"\n").unwrap();
    let err = blank.check().unwrap_err().to_string();
    assert!(
        err.contains("auth.audience") && err.contains("must not be empty"),
        "{err}"
    );
}
