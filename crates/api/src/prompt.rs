//! Prompts, their immutable versions and labels; redaction policies; structured output; the
//! Playground's history. Types only: the store and the rules live in milc-core.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::template::Template;
use crate::{Cost, Message, Outcome, Params, Usage};

/// When personal data is replaced by placeholders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactMode {
    /// Nothing is redacted; the history keeps inputs as typed.
    Off,
    /// The request is redacted before it leaves the machine; the answer's placeholders can be
    /// restored for display.
    Sending,
    /// The request is sent as typed; everything stored (history, call-log bodies) is redacted.
    #[default]
    Logging,
    Both,
}

impl RedactMode {
    pub const ALL: [RedactMode; 4] = [Self::Off, Self::Sending, Self::Logging, Self::Both];

    pub fn sending(self) -> bool {
        matches!(self, Self::Sending | Self::Both)
    }

    pub fn logging(self) -> bool {
        matches!(self, Self::Logging | Self::Both)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Sending => "sending",
            Self::Logging => "logging",
            Self::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A team's own pattern (an employee id, a ticket number), redacted as `[NAME_1]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomPattern {
    pub name: String,
    pub pattern: String,
}

/// How personal data is handled for an endpoint, or for a prompt version that overrides it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionPolicy {
    #[serde(default)]
    pub mode: RedactMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomPattern>,
    /// Keep request and response bodies with the call log. Bodies are always stored redacted.
    #[serde(default)]
    pub log_bodies: bool,
}

/// The JSON Schema of a `json_schema` response format, as the protocol spells it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    pub schema: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `response_format` of a chat request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

impl ResponseFormat {
    /// The protocol's rule for schema names: `[a-zA-Z0-9_-]{1,64}`.
    pub fn check(&self) -> Result<(), &'static str> {
        match self {
            Self::JsonSchema { json_schema } => {
                let n = &json_schema.name;
                let ok = (1..=64).contains(&n.len())
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !ok {
                    return Err("a schema name of 1 to 64 letters, digits, '_' or '-'");
                }
                if !json_schema.schema.is_object() {
                    return Err("a JSON Schema object");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn wants_json(&self) -> bool {
        !matches!(self, Self::Text)
    }
}

/// One field of a structured answer that does not match its schema. `path` is a JSON Pointer
/// into the answer (`""` for the whole answer, `/address/zip` for a field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// The check of an answer that was asked to be JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructuredCheck {
    pub valid: bool,
    pub errors: Vec<FieldError>,
}

/// What a prompt version holds: messages whose text may have `{{variable}}` placeholders, the
/// model parameters, and optionally a default endpoint and a redaction policy of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptContent {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub params: Params,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<RedactionPolicy>,
}

impl PromptContent {
    /// The variables of all messages, in order of first use; messages that do not parse are
    /// skipped here (saving reports them).
    pub fn variables(&self) -> Vec<String> {
        variables_of(&self.messages)
    }
}

/// The variables of a list of message templates in order of first use: the Playground's form.
pub fn variables_of(messages: &[Message]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in messages {
        if let Ok(t) = Template::parse(&m.content) {
            for v in t.variables() {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// Which version of a prompt: `NAME` (the latest), `NAME@N` or `NAME:LABEL`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptRef {
    pub name: String,
    pub pick: Pick,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    Latest,
    Version(u32),
    Label(String),
}

impl PromptRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, pick) = if let Some((n, v)) = s.rsplit_once('@') {
            let v: u32 =
                v.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                    format!("'{s}': the version after '@' must be a number from 1")
                })?;
            (n, Pick::Version(v))
        } else if let Some((n, l)) = s.split_once(':') {
            check_name("label", l).map_err(|e| format!("'{s}': {e}"))?;
            (n, Pick::Label(l.to_owned()))
        } else {
            (s, Pick::Latest)
        };
        check_name("prompt name", name).map_err(|e| format!("'{s}': {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            pick,
        })
    }
}

impl fmt::Display for PromptRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pick {
            Pick::Latest => write!(f, "{}", self.name),
            Pick::Version(v) => write!(f, "{}@{v}", self.name),
            Pick::Label(l) => write!(f, "{}:{l}", self.name),
        }
    }
}

/// Prompt names and labels: letters, digits, `_`, `-`, `.` and `/`, so `NAME@N` and
/// `NAME:LABEL` stay unambiguous.
pub fn check_name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a {what} is 1 to 100 letters, digits, '_', '-', '.' or '/'"
        ))
    }
}

/// A version pinned by number, as the Playground and the history record it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PromptPin {
    pub prompt: String,
    pub version: u32,
}

impl fmt::Display for PromptPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.prompt, self.version)
    }
}

/// One immutable version of a prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptVersion {
    pub prompt: String,
    pub version: u32,
    /// SHA-256 of the canonical JSON of the content.
    pub hash: String,
    pub note: String,
    pub author: String,
    pub created_ms: i64,
    /// Labels pointing at this version now.
    pub labels: Vec<String>,
    pub content: PromptContent,
}

/// A prompt in the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSummary {
    pub name: String,
    pub description: String,
    pub latest: u32,
    pub updated_ms: i64,
    /// label → version.
    pub labels: BTreeMap<String, u32>,
}

/// A label being set or moved: from `None` when it was new.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMove {
    pub label: String,
    pub from: Option<u32>,
    pub to: u32,
    pub author: String,
    pub at_ms: i64,
}

/// A prompt with all its versions (newest first) and the history of its labels (newest first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptDetail {
    pub summary: PromptSummary,
    pub versions: Vec<PromptVersion>,
    pub label_history: Vec<LabelMove>,
}

/// A new version to store: creates the prompt when `description` is given and the name is new.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewVersion {
    pub prompt: String,
    #[serde(default)]
    pub description: Option<String>,
    pub content: PromptContent,
    #[serde(default)]
    pub note: String,
}

/// The outcome of saving: `created` is false when the content was identical to an existing
/// version, which is returned instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub version: PromptVersion,
    pub created: bool,
}

/// How a line of a side-by-side diff changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Same,
    Changed,
    Removed,
    Added,
}

/// One row of a side-by-side diff: a line on the left, on the right, or both (1-based numbers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRow {
    pub change: Change,
    pub left: Option<(u32, String)>,
    pub right: Option<(u32, String)>,
}

/// The diff of the message at `index` in both versions (a side is `None` when that version has
/// fewer messages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDiff {
    pub index: usize,
    pub left_role: Option<crate::Role>,
    pub right_role: Option<crate::Role>,
    pub rows: Vec<DiffRow>,
}

impl MessageDiff {
    pub fn changed(&self) -> bool {
        self.left_role != self.right_role || self.rows.iter().any(|r| r.change != Change::Same)
    }
}

/// A setting that differs between two versions, each side as compact JSON (`None` = unset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    pub field: String,
    pub left: Option<String>,
    pub right: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptDiff {
    pub prompt: String,
    pub left: u32,
    pub right: u32,
    pub messages: Vec<MessageDiff>,
    pub settings: Vec<SettingChange>,
}

/// Figures of a finished call, as the history keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub ttft_ms: Option<u64>,
    pub latency_ms: u64,
    pub usage: Option<Usage>,
    pub cost: Option<Cost>,
    pub tokens_per_sec: Option<f64>,
}

/// One Playground (or `milc chat`) call as the history keeps it: the inputs after redaction,
/// the variables, the prompt version if any, the parameters, the output and the figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub at_ms: i64,
    pub call_id: Option<i64>,
    pub endpoint: String,
    pub prompt: Option<PromptPin>,
    pub messages: Vec<Message>,
    pub variables: BTreeMap<String, String>,
    pub params: Params,
    pub output: String,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub figures: Figures,
    /// Whether the stored texts went through the redactor.
    pub redacted: bool,
}

/// Request and response bodies kept with a call where the policy allows it (always redacted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallBody {
    pub call_id: i64,
    pub request: serde_json::Value,
    pub response: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_in_their_three_forms() {
        let r = |s: &str| PromptRef::parse(s).unwrap();
        assert_eq!(r("support").pick, Pick::Latest);
        assert_eq!(r("support@12").pick, Pick::Version(12));
        assert_eq!(
            r("team/support:production").pick,
            Pick::Label("production".into())
        );
        assert_eq!(r("support:candidate").to_string(), "support:candidate");
        assert!(PromptRef::parse("support@0").is_err());
        assert!(PromptRef::parse("support@x").is_err());
        assert!(PromptRef::parse("sup port").is_err());
        assert!(PromptRef::parse(":production").is_err());
    }

    #[test]
    fn response_formats_use_the_protocol_spelling() {
        let f: ResponseFormat = serde_json::from_value(serde_json::json!({
            "type": "json_schema",
            "json_schema": {"name": "ticket", "schema": {"type": "object"}, "strict": true}
        }))
        .unwrap();
        assert_eq!(f.check(), Ok(()));
        assert_eq!(
            serde_json::to_value(ResponseFormat::JsonObject).unwrap(),
            serde_json::json!({"type": "json_object"})
        );
        let bad = ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "has space".into(),
                schema: serde_json::json!({}),
                strict: None,
            },
        };
        assert!(bad.check().is_err());
    }

    #[test]
    fn variables_come_from_every_message_in_order() {
        let content = PromptContent {
            messages: vec![
                Message::new(crate::Role::System, "You help {{team}}."),
                Message::new(crate::Role::User, "{{question}} ({{team}})"),
            ],
            ..PromptContent::default()
        };
        assert_eq!(content.variables(), ["team", "question"]);
    }

    #[test]
    fn redaction_defaults_to_redacting_what_is_stored() {
        let p: RedactionPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p.mode, RedactMode::Logging);
        assert!(!p.mode.sending() && p.mode.logging() && !p.log_bodies);
    }
}
