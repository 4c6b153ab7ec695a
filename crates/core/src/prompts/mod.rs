//! The prompt library: prompts with immutable, numbered, content-hashed versions; labels that
//! point at one version each with every move recorded; `NAME` / `NAME@N` / `NAME:LABEL`
//! resolution; side-by-side diffs; prompt files (YAML or JSON); strict rendering.

mod actions;
pub mod storage;

use std::collections::BTreeMap;
use std::path::Path;

use milc_api::prompt::{
    check_name, Change, DiffRow, MessageDiff, PromptContent, PromptDiff, PromptVersion,
    RedactionPolicy, SettingChange,
};
use milc_api::template::Template;
use milc_api::{Message, Params};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Error;

/// SHA-256 of the content's canonical JSON (object keys sorted at every depth), so the same
/// content always has the same hash whatever order a file listed its keys in.
pub fn content_hash(content: &PromptContent) -> String {
    fn canonical(v: Value) -> Value {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<String, Value> =
                    map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
            other => other,
        }
    }
    let json = canonical(serde_json::to_value(content).expect("prompt content serializes"));
    let digest = Sha256::digest(json.to_string().as_bytes());
    crate::db::hex(&digest)
}

/// Everything that must hold before a version is stored, each failure naming its field.
pub fn check_content(c: &PromptContent) -> Result<(), Error> {
    if c.messages.is_empty() {
        return Err(Error::invalid(
            "messages",
            "a prompt needs at least one message",
        ));
    }
    for (i, m) in c.messages.iter().enumerate() {
        Template::parse(&m.content)
            .map_err(|e| Error::invalid(format!("messages[{i}].content"), e.to_string()))?;
    }
    c.params
        .check()
        .map_err(|(field, allowed)| Error::invalid(format!("params.{field}"), allowed))?;
    if let Some(milc_api::ResponseFormat::JsonSchema { json_schema }) = &c.params.response_format {
        milc_llm::structured::compile(&json_schema.schema)
            .map_err(|e| Error::invalid("params.response_format.json_schema.schema", e))?;
    }
    if let Some(policy) = &c.redaction {
        crate::redact::Redactor::for_policy(policy, "redaction")?;
    }
    Ok(())
}

/// Renders every message strictly: a missing variable is an error naming the message, the line
/// and the column. Returns the messages and the variables no message used.
pub fn render(
    messages: &[Message],
    vars: &BTreeMap<String, String>,
) -> Result<(Vec<Message>, Vec<String>), Error> {
    let mut used = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let field = || format!("messages[{i}] ({})", m.role.as_str());
        let t = Template::parse(&m.content).map_err(|e| Error::invalid(field(), e.to_string()))?;
        used.extend(t.variables());
        let r = t
            .render(vars)
            .map_err(|e| Error::invalid(field(), e.to_string()))?;
        out.push(Message::new(m.role, r.text));
    }
    let unused = vars.keys().filter(|k| !used.contains(k)).cloned().collect();
    Ok((out, unused))
}

/// A prompt file as `milc prompts create/version` read it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub params: Params,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub redaction: Option<RedactionPolicy>,
}

impl PromptFile {
    /// Reads a `.json` file as JSON and anything else as YAML (a superset of JSON); an error
    /// names the file, the line and the column.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(shown.clone(), format!("cannot read: {e}")))?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let file: Self = if json {
            serde_json::from_str(&text).map_err(|e| {
                Error::invalid(
                    format!("{shown}:{}:{}", e.line(), e.column()),
                    e.to_string(),
                )
            })?
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!(":{}:{}", l.line(), l.column()))
                    .unwrap_or_default();
                Error::invalid(format!("{shown}{at}"), e.to_string())
            })?
        };
        let content = file.content();
        check_content(&content).map_err(|e| match e {
            Error::Invalid { field, message } => {
                Error::invalid(format!("{shown}: {field}"), message)
            }
            other => other,
        })?;
        Ok(file)
    }

    pub fn content(&self) -> PromptContent {
        PromptContent {
            messages: self.messages.clone(),
            params: self.params.clone(),
            endpoint: self.endpoint.clone(),
            redaction: self.redaction.clone(),
        }
    }
}

/// Side-by-side diff of two versions: every message line by line (aligned by position), then
/// every setting that differs.
pub fn diff(left: &PromptVersion, right: &PromptVersion) -> PromptDiff {
    let (l, r) = (&left.content, &right.content);
    let n = l.messages.len().max(r.messages.len());
    let messages = (0..n)
        .map(|i| {
            let (lm, rm) = (l.messages.get(i), r.messages.get(i));
            MessageDiff {
                index: i,
                left_role: lm.map(|m| m.role),
                right_role: rm.map(|m| m.role),
                rows: line_diff(
                    lm.map_or("", |m| m.content.as_str()),
                    rm.map_or("", |m| m.content.as_str()),
                ),
            }
        })
        .collect();
    PromptDiff {
        prompt: left.prompt.clone(),
        left: left.version,
        right: right.version,
        messages,
        settings: setting_changes(l, r),
    }
}

fn line_diff(a: &str, b: &str) -> Vec<DiffRow> {
    use similar::{DiffOp, TextDiff};
    fn lines(s: &str) -> Vec<&str> {
        if s.is_empty() {
            vec![]
        } else {
            s.split('\n').collect()
        }
    }
    let (al, bl) = (lines(a), lines(b));
    let diff = TextDiff::configure().diff_slices(&al, &bl);
    let side = |lines: &[&str], i: usize| Some((i as u32 + 1, lines[i].to_owned()));
    let mut rows = Vec::new();
    for op in diff.ops() {
        match *op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for k in 0..len {
                    rows.push(DiffRow {
                        change: Change::Same,
                        left: side(&al, old_index + k),
                        right: side(&bl, new_index + k),
                    });
                }
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for k in 0..old_len {
                    rows.push(DiffRow {
                        change: Change::Removed,
                        left: side(&al, old_index + k),
                        right: None,
                    });
                }
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for k in 0..new_len {
                    rows.push(DiffRow {
                        change: Change::Added,
                        left: None,
                        right: side(&bl, new_index + k),
                    });
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                // Pair replaced lines side by side; the longer side's rest stands alone.
                for k in 0..old_len.max(new_len) {
                    let (lo, ro) = (
                        (k < old_len).then(|| side(&al, old_index + k)).flatten(),
                        (k < new_len).then(|| side(&bl, new_index + k)).flatten(),
                    );
                    let change = match (&lo, &ro) {
                        (Some(_), Some(_)) => Change::Changed,
                        (Some(_), None) => Change::Removed,
                        _ => Change::Added,
                    };
                    rows.push(DiffRow {
                        change,
                        left: lo,
                        right: ro,
                    });
                }
            }
        }
    }
    rows
}

fn setting_changes(l: &PromptContent, r: &PromptContent) -> Vec<SettingChange> {
    fn fields(c: &PromptContent) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Value::Object(p) = serde_json::to_value(&c.params).expect("params serialize") {
            for (k, v) in p {
                out.insert(k, v.to_string());
            }
        }
        if let Some(e) = &c.endpoint {
            out.insert("endpoint".into(), Value::from(e.as_str()).to_string());
        }
        if let Some(p) = &c.redaction {
            out.insert(
                "redaction".into(),
                serde_json::to_string(p).expect("serializes"),
            );
        }
        out
    }
    let (a, b) = (fields(l), fields(r));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| SettingChange {
            field: k.clone(),
            left: a.get(k).cloned(),
            right: b.get(k).cloned(),
        })
        .collect()
}

/// Checks a label name the way prompt names are checked.
pub fn check_label(label: &str) -> Result<(), Error> {
    check_name("label", label).map_err(|e| Error::invalid("label", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use milc_api::Role;

    fn version(n: u32, messages: &[(Role, &str)], params: Params) -> PromptVersion {
        PromptVersion {
            prompt: "p".into(),
            version: n,
            hash: String::new(),
            note: String::new(),
            author: String::new(),
            created_ms: 0,
            labels: vec![],
            content: PromptContent {
                messages: messages.iter().map(|(r, t)| Message::new(*r, *t)).collect(),
                params,
                ..PromptContent::default()
            },
        }
    }

    #[test]
    fn the_hash_ignores_key_order_and_sees_every_change() {
        let a: PromptContent = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":"x"}],
                "params":{"temperature":0.2,"response_format":{"type":"json_schema",
                "json_schema":{"name":"n","schema":{"type":"object","required":["a"]}}}}}"#,
        )
        .unwrap();
        let b: PromptContent = serde_json::from_str(
            r#"{"params":{"response_format":{"json_schema":{"schema":{"required":["a"],
                "type":"object"},"name":"n"},"type":"json_schema"},"temperature":0.2},
                "messages":[{"content":"x","role":"user"}]}"#,
        )
        .unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a).len(), 64);
        let mut c = a.clone();
        c.params.temperature = Some(0.3);
        assert_ne!(content_hash(&a), content_hash(&c));
    }

    #[test]
    fn a_diff_pairs_changed_lines_and_lists_changed_settings() {
        let l = version(
            1,
            &[
                (Role::System, "You are terse.\nAnswer in English."),
                (Role::User, "{{q}}"),
            ],
            Params {
                temperature: Some(0.2),
                ..Params::default()
            },
        );
        let r = version(
            2,
            &[
                (
                    Role::System,
                    "You are terse.\nAnswer in French.\nCite sources.",
                ),
                (Role::User, "{{q}}"),
                (Role::Assistant, "Bien sûr."),
            ],
            Params {
                temperature: Some(0.7),
                seed: Some(3),
                ..Params::default()
            },
        );
        let d = diff(&l, &r);
        let sys = &d.messages[0];
        assert_eq!(
            sys.rows.iter().map(|r| r.change).collect::<Vec<_>>(),
            [Change::Same, Change::Changed, Change::Added]
        );
        assert_eq!(sys.rows[1].left, Some((2, "Answer in English.".into())));
        assert_eq!(sys.rows[1].right, Some((2, "Answer in French.".into())));
        assert!(!d.messages[1].changed());
        assert_eq!(d.messages[2].left_role, None);
        assert_eq!(d.messages[2].rows[0].change, Change::Added);
        let fields: Vec<_> = d.settings.iter().map(|s| s.field.as_str()).collect();
        assert_eq!(fields, ["seed", "temperature"]);
        assert_eq!(d.settings[0].left, None);
        assert_eq!(d.settings[1].right.as_deref(), Some("0.7"));
    }

    #[test]
    fn rendering_names_the_message_and_reports_unused_variables() {
        let msgs = [
            Message::new(Role::System, "Team {{team}}"),
            Message::new(Role::User, "Q:\n {{question}}"),
        ];
        let vars: BTreeMap<String, String> = [("team", "blue"), ("extra", "1")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let e = render(&msgs, &vars).unwrap_err().to_string();
        assert_eq!(
            e,
            "messages[1] (user): line 2, column 2: missing variable 'question'"
        );
        let mut vars = vars;
        vars.insert("question".into(), "why?".into());
        let (out, unused) = render(&msgs, &vars).unwrap();
        assert_eq!(out[1].content, "Q:\n why?");
        assert_eq!(unused, ["extra"]);
    }
}
