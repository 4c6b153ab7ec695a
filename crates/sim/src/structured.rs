//! `response_format`: with `json_object` the answer is a JSON object; with `json_schema` it is an
//! instance generated from the schema (types, `properties`, `required`, `enum`, `const`,
//! `minimum`/`maximum`, `minLength`/`maxLength`, `minItems`/`maxItems`, `anyOf`/`oneOf`).
//! Like a small model, the simulator does not honour `pattern` or `format`: a schema that relies
//! on them gets answers that fail validation, which is how clients test their checks.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::tokens::{SplitMix64, VOCABULARY};

#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Text,
    JsonObject,
    JsonSchema(Value),
}

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request(
        format!("Invalid 'response_format': {message}"),
        Some("response_format"),
    )
}

/// Validates `response_format` as the protocol spells it.
pub fn parse(v: Option<&Value>) -> Result<Format, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Format::Text);
    };
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("expected an object."))?;
    match obj.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Format::Text),
        Some("json_object") => Ok(Format::JsonObject),
        Some("json_schema") => {
            let js = obj
                .get("json_schema")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    invalid("'json_schema' must be an object with 'name' and 'schema'.")
                })?;
            let name = js.get("name").and_then(Value::as_str).unwrap_or("");
            let name_ok = (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(invalid(
                    "'json_schema.name' must match [a-zA-Z0-9_-]{1,64}.",
                ));
            }
            match js.get("schema") {
                Some(s @ Value::Object(_)) => Ok(Format::JsonSchema(s.clone())),
                None => Ok(Format::JsonSchema(json!({"type": "object"}))),
                Some(_) => Err(invalid("'json_schema.schema' must be an object.")),
            }
        }
        _ => Err(invalid(
            "'type' must be one of 'text', 'json_object', 'json_schema'.",
        )),
    }
}

fn words(rng: &mut SplitMix64, n: u64) -> String {
    (0..n)
        .map(|_| VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A JSON text for the format, deterministic in `rng`.
pub fn generate(format: &Format, rng: &mut SplitMix64) -> String {
    let value = match format {
        Format::Text => unreachable!("plain text is generated elsewhere"),
        Format::JsonObject => {
            let n = 3 + rng.below(8);
            json!({"answer": words(rng, n)})
        }
        Format::JsonSchema(schema) => instance(schema, rng, 0),
    };
    value.to_string()
}

fn num(schema: &Map<String, Value>, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn instance(schema: &Value, rng: &mut SplitMix64, depth: usize) -> Value {
    let Some(s) = schema.as_object() else {
        return Value::Null;
    };
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        if !options.is_empty() {
            return options[rng.below(options.len() as u64) as usize].clone();
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = s.get(key) {
            if let Some(first) = alts.first() {
                return instance(first, rng, depth + 1);
            }
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ if s.contains_key("items") => "array",
        _ => "string",
    };
    if depth > 8 {
        return Value::Null;
    }
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(Value::Object(props)) = s.get("properties") {
                for (k, sub) in props {
                    out.insert(k.clone(), instance(sub, rng, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = num(s, "minItems").unwrap_or(1.0) as u64;
            let max = num(s, "maxItems").map_or(min.max(3), |m| m as u64).max(min);
            let n = min + rng.below(max - min + 1);
            let items = s.get("items").cloned().unwrap_or(json!({"type": "string"}));
            Value::Array((0..n).map(|_| instance(&items, rng, depth + 1)).collect())
        }
        "integer" | "number" => {
            let lo = num(s, "minimum").unwrap_or(0.0);
            let hi = num(s, "maximum").unwrap_or(lo + 100.0).max(lo);
            let v = lo + rng.below((hi - lo) as u64 + 1) as f64;
            if ty == "integer" {
                json!(v.min(hi) as i64)
            } else {
                json!(v.min(hi))
            }
        }
        "boolean" => json!(rng.below(2) == 1),
        "null" => Value::Null,
        _ => {
            let min = num(s, "minLength").unwrap_or(0.0) as usize;
            let max = num(s, "maxLength").map(|m| m as usize);
            let n = 1 + rng.below(4);
            let mut text = words(rng, n);
            while text.chars().count() < min {
                text.push(' ');
                text.push_str(&words(rng, 1));
            }
            if let Some(max) = max {
                text = text.chars().take(max).collect();
            }
            Value::String(text)
        }
    }
}

/// Where each token of `text` ends (the simulator's tokenizer: an alphanumeric run or one other
/// non-space character is a token; spaces go with the token before them).
pub fn token_ends(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut prev_alnum = false;
    for (i, c) in text.char_indices() {
        let alnum = c.is_alphanumeric();
        if (alnum && !prev_alnum) || (!alnum && !c.is_whitespace()) {
            starts.push(i);
        }
        prev_alnum = alnum;
    }
    let mut ends: Vec<usize> = starts.into_iter().skip(1).collect();
    if !text.is_empty() {
        ends.push(text.len());
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::count_tokens;

    #[test]
    fn instances_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "required": ["title", "priority", "tags", "score"],
            "properties": {
                "title": {"type": "string", "minLength": 12},
                "priority": {"enum": ["low", "high"]},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
                "score": {"type": "integer", "minimum": 1, "maximum": 5},
                "done": {"type": "boolean"}
            }
        });
        for seed in 0..20 {
            let text = generate(
                &Format::JsonSchema(schema.clone()),
                &mut SplitMix64::new(seed),
            );
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v["title"].as_str().unwrap().len() >= 12);
            assert!(["low", "high"].contains(&v["priority"].as_str().unwrap()));
            assert_eq!(v["tags"].as_array().unwrap().len(), 2);
            assert!((1..=5).contains(&v["score"].as_i64().unwrap()));
            assert!(v["done"].is_boolean());
        }
    }

    #[test]
    fn token_ends_agree_with_the_token_count() {
        let text = r#"{"answer":"the way of water", "n": 12}"#;
        let ends = token_ends(text);
        assert_eq!(ends.len() as u64, count_tokens(text));
        assert_eq!(*ends.last().unwrap(), text.len());
    }

    #[test]
    fn malformed_formats_are_refused() {
        assert!(parse(Some(&json!({"type": "xml"}))).is_err());
        assert!(parse(Some(
            &json!({"type": "json_schema", "json_schema": {"name": "a b"}})
        ))
        .is_err());
        assert_eq!(parse(None).unwrap(), Format::Text);
    }
}
