//! `--set key.path=value`: overrides applied to the YAML tree before it becomes a typed
//! [`Config`](super::Config), so an override is checked exactly like a key in the file.
use serde_json::Value;

use super::ConfigError;

/// Applies `a.b.c=value` to the YAML tree; the value is parsed as YAML (`[0.5]`, `true`, `3`).
/// A numeric component indexes a list (`test.sets.0.dataroot=...`).
pub fn apply_override(tree: &mut Value, item: &str) -> Result<(), ConfigError> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| ConfigError::BadOverride(item.into()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(ConfigError::BadOverride(item.into()));
    }
    let value: Value = if raw.trim().is_empty() {
        Value::String(String::new())
    } else {
        serde_saphyr::from_str(raw).map_err(|e| ConfigError::Parse {
            path: key.into(),
            message: format!("cannot parse override value {raw:?}: {e}"),
        })?
    };
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    for (depth, part) in parts.iter().enumerate() {
        if node.is_null() {
            *node = Value::Object(Default::default());
        }
        node = match node {
            Value::Object(map) => map.entry(part.to_string()).or_insert(Value::Null),
            Value::Array(items) => {
                let i: usize = part.parse().map_err(|_| ConfigError::Parse {
                    path: parts[..=depth].join("."),
                    message: "expected a list index".into(),
                })?;
                let len = items.len();
                items.get_mut(i).ok_or_else(|| ConfigError::Parse {
                    path: parts[..=depth].join("."),
                    message: format!("index {i} is out of range (the list has {len} items)"),
                })?
            }
            _ => {
                return Err(ConfigError::Parse {
                    path: parts[..depth].join("."),
                    message: "is a value, not a section: cannot set a key inside it".into(),
                })
            }
        };
    }
    *node = value;
    Ok(())
}
