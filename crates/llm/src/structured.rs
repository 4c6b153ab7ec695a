//! Structured output: an answer asked to be JSON (`json_object`) or to follow a JSON Schema
//! (`json_schema`) is parsed and validated with the `jsonschema` crate; every mismatch is
//! reported with the JSON Pointer of its field.

use milc_api::prompt::FieldError;
use milc_api::{ResponseFormat, StructuredCheck};
use serde_json::Value;

/// Compiles a schema, or says what is wrong with it. Remote `$ref`s are not fetched.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| {
        let at = e.instance_path().to_string();
        if at.is_empty() {
            format!("not a valid JSON Schema: {e}")
        } else {
            format!("not a valid JSON Schema at {at}: {e}")
        }
    })
}

/// Checks `output` against the response format; `None` for plain text.
pub fn check(format: &ResponseFormat, output: &str) -> Option<StructuredCheck> {
    if !format.wants_json() {
        return None;
    }
    let errors = match serde_json::from_str::<Value>(output.trim()) {
        Err(e) => vec![FieldError {
            path: String::new(),
            message: format!("the answer is not JSON: {e}"),
        }],
        Ok(value) => match format {
            ResponseFormat::JsonSchema { json_schema } => match compile(&json_schema.schema) {
                Ok(v) => v
                    .iter_errors(&value)
                    .map(|e| FieldError {
                        path: e.instance_path().to_string(),
                        message: e.to_string(),
                    })
                    .collect(),
                Err(message) => vec![FieldError {
                    path: String::new(),
                    message,
                }],
            },
            _ if !value.is_object() => vec![FieldError {
                path: String::new(),
                message: "a JSON object was asked for".into(),
            }],
            _ => vec![],
        },
    };
    Some(StructuredCheck {
        valid: errors.is_empty(),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use milc_api::prompt::JsonSchemaFormat;
    use serde_json::json;

    fn schema() -> ResponseFormat {
        ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "ticket".into(),
                schema: json!({
                    "type": "object",
                    "required": ["title", "priority", "tags"],
                    "properties": {
                        "title": {"type": "string", "minLength": 3},
                        "priority": {"enum": ["low", "high"]},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    }
                }),
                strict: Some(true),
            },
        }
    }

    #[test]
    fn each_field_that_breaks_the_schema_is_named() {
        let ok = check(
            &schema(),
            r#"{"title":"Disk full","priority":"high","tags":["ops"]}"#,
        );
        assert_eq!(
            ok,
            Some(StructuredCheck {
                valid: true,
                errors: vec![]
            })
        );

        let bad = check(
            &schema(),
            r#"{"title":"no","priority":"urgent","tags":["a", 3]}"#,
        )
        .unwrap();
        assert!(!bad.valid);
        let mut paths: Vec<&str> = bad.errors.iter().map(|e| e.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["/priority", "/tags/1", "/title"], "{bad:?}");
        let missing = check(&schema(), r#"{"title":"Disk full"}"#).unwrap();
        assert!(missing
            .errors
            .iter()
            .any(|e| e.path.is_empty() && e.message.contains("priority")));
    }

    #[test]
    fn text_that_is_not_json_is_one_error_at_the_root() {
        let c = check(&ResponseFormat::JsonObject, "Sure! {\"a\": 1}").unwrap();
        assert!(!c.valid);
        assert!(c.errors[0].message.contains("not JSON"), "{c:?}");
        assert!(check(&ResponseFormat::JsonObject, "[1]").is_some_and(|c| !c.valid));
        assert!(check(&ResponseFormat::JsonObject, " {\"a\": 1}\n").is_some_and(|c| c.valid));
        assert_eq!(check(&ResponseFormat::Text, "hi"), None);
    }

    #[test]
    fn an_invalid_schema_is_refused() {
        let e = compile(&json!({"type": "objekt"})).unwrap_err();
        assert!(e.contains("not a valid JSON Schema"), "{e}");
    }
}
