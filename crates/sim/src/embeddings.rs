//! `POST /v1/embeddings`: deterministic unit vectors derived from a hash of each input, in float
//! or base64 encoding (openai-python asks for base64 by default).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::Shared;
use crate::tokens::{count_tokens, fnv1a, SplitMix64};

pub const DEFAULT_DIMENSIONS: usize = 16;
const MAX_DIMENSIONS: usize = 4096;

/// A unit-length vector that depends only on `text` and `dimensions`.
pub fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(fnv1a(text.as_bytes()));
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| rng.next_f64() * 2.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    // A zero vector is only possible in theory; fall back to a basis vector rather than NaNs.
    if norm == 0.0 {
        let mut v = vec![0.0; dimensions];
        v[0] = 1.0;
        return v;
    }
    raw.iter().map(|x| (x / norm) as f32).collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Item {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Item>,
    model: &'a str,
    usage: EmbeddingUsage,
}

fn bad(message: &str, param: &'static str) -> ApiError {
    ApiError::bad_request(message, Some(param))
}

pub async fn handle(State(sim): State<Arc<Shared>>, body: Bytes) -> Response {
    match respond(&sim, &body, std::time::Instant::now()).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn respond(
    sim: &Shared,
    body: &[u8],
    arrived: std::time::Instant,
) -> Result<Response, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            format!("We could not parse the JSON body of your request: {e}."),
            None,
        )
    })?;
    let model = match value.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.as_str(),
        _ => return Err(bad("Missing required parameter: 'model'.", "model")),
    };
    if !sim.models.iter().any(|m| m == model) {
        return Err(ApiError::model_not_found(model));
    }
    let inputs: Vec<&str> = match value.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| {
                bad(
                    "Invalid 'input': milc-sim accepts a string or an array of strings.",
                    "input",
                )
            })?,
        None | Some(Value::Null) => {
            return Err(bad("Missing required parameter: 'input'.", "input"))
        }
        _ => {
            return Err(bad(
                "Invalid 'input': expected a non-empty string or array of strings.",
                "input",
            ))
        }
    };
    if inputs.iter().any(|s| s.is_empty()) {
        return Err(bad(
            "Invalid 'input': empty strings are not allowed.",
            "input",
        ));
    }
    let dimensions = match value.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => match v.as_u64() {
            Some(d) if (1..=MAX_DIMENSIONS as u64).contains(&d) => d as usize,
            _ => {
                return Err(bad(
                    "Invalid 'dimensions': expected an integer between 1 and 4096.",
                    "dimensions",
                ))
            }
        },
    };
    let as_base64 = match value.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(bad(
                "Invalid 'encoding_format': expected 'float' or 'base64'.",
                "encoding_format",
            ))
        }
    };

    sim.latency(arrived, 1).await;

    let prompt_tokens = inputs.iter().map(|s| count_tokens(s)).sum();
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = embed(text, dimensions);
            let embedding = if as_base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Vector::Base64(base64(&bytes))
            } else {
                Vector::Float(v)
            };
            Item {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", DEFAULT_DIMENSIONS);
        assert_eq!(a.len(), 16);
        assert_eq!(a, embed("hello", DEFAULT_DIMENSIONS));
        assert_ne!(a, embed("hello!", DEFAULT_DIMENSIONS));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
