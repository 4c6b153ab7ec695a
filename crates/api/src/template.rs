//! Prompt templates: text with `{{variable}}` placeholders, rendered strictly. A missing variable
//! is an error naming it; anything between `{{` and `}}` that is not a variable name is an error
//! with its line and column; variables given but unused are reported. Single braces are plain
//! text (prompts are full of JSON), and `\{{` writes a literal `{{`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Where and why a template cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based line and column (in characters) of the offending `{{`.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var {
        name: String,
        line: usize,
        column: usize,
    },
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// A rendered text, and the variables that were given but not used by it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub unused: Vec<String>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let (mut line, mut column) = (1, 1);
        let mut rest = source;
        while let Some(i) = rest.find("{{") {
            let before = &rest[..i];
            let escaped = before.ends_with('\\');
            text.push_str(if escaped {
                &before[..before.len() - 1]
            } else {
                before
            });
            advance(before, &mut line, &mut column);
            let (tag_line, tag_column) = (line, column);
            if escaped {
                text.push_str("{{");
                advance("{{", &mut line, &mut column);
                rest = &rest[i + 2..];
                continue;
            }
            let after = &rest[i + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError {
                    line,
                    column,
                    message: "`{{` is never closed by `}}`".into(),
                });
            };
            let inner = &after[..close];
            let name = inner.trim();
            let err = |message: String| TemplateError {
                line: tag_line,
                column: tag_column,
                message,
            };
            if inner.contains("{{") {
                return Err(err(
                    "`{{` inside a placeholder: close the first one with `}}`".into(),
                ));
            }
            if name.is_empty() {
                return Err(err(
                    "empty placeholder `{{}}`: put a variable name inside".into()
                ));
            }
            if !valid_name(name) {
                return Err(err(format!(
                    "`{{{{{inner}}}}}` is not a variable: names are letters, digits, _ . - and start with a letter or _ (write \\{{{{ for a literal `{{{{`)"
                )));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Var {
                name: name.to_owned(),
                line: tag_line,
                column: tag_column,
            });
            let tag = &rest[i..i + 2 + close + 2];
            advance(tag, &mut line, &mut column);
            rest = &rest[i + 2 + close + 2..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts })
    }

    /// The variables the template uses, in order of first use: the form fields of the Playground.
    pub fn variables(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Var { name, .. } if seen.insert(name.clone()) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Fills every placeholder; the first missing variable is an error naming it and where it is.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<Rendered, TemplateError> {
        let mut text = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => text.push_str(t),
                Part::Var { name, line, column } => match vars.get(name) {
                    Some(v) => text.push_str(v),
                    None => {
                        return Err(TemplateError {
                            line: *line,
                            column: *column,
                            message: format!("missing variable '{name}'"),
                        })
                    }
                },
            }
        }
        let used = self.variables();
        let unused = vars.keys().filter(|k| !used.contains(k)).cloned().collect();
        Ok(Rendered { text, unused })
    }
}

fn advance(s: &str, line: &mut usize, column: &mut usize) {
    for c in s.chars() {
        if c == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_and_lists_variables_in_order_of_first_use() {
        let t = Template::parse("Hi {{name}}, about {{ topic }}: {{name}}!").unwrap();
        assert_eq!(t.variables(), ["name", "topic"]);
        let r = t
            .render(&vars(&[("name", "Ada"), ("topic", "TTFT"), ("extra", "x")]))
            .unwrap();
        assert_eq!(r.text, "Hi Ada, about TTFT: Ada!");
        assert_eq!(r.unused, ["extra"]);
    }

    #[test]
    fn a_missing_variable_is_named_with_its_position() {
        let t = Template::parse("line one\n  then {{customer.name}} here").unwrap();
        let e = t.render(&vars(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2, column 8: missing variable 'customer.name'"
        );
    }

    #[test]
    fn json_and_single_braces_are_plain_text() {
        let src = r#"Answer as {"answer": {"score": 1}} for {{q}}"#;
        let t = Template::parse(src).unwrap();
        assert_eq!(
            t.render(&vars(&[("q", "x")])).unwrap().text,
            r#"Answer as {"answer": {"score": 1}} for x"#
        );
    }

    #[test]
    fn a_backslash_writes_literal_double_braces() {
        let t = Template::parse(r"Use \{{name}} in templates, e.g. {{name}}").unwrap();
        assert_eq!(t.variables(), ["name"]);
        assert_eq!(
            t.render(&vars(&[("name", "Ada")])).unwrap().text,
            "Use {{name}} in templates, e.g. Ada"
        );
    }

    #[test]
    fn unknown_syntax_is_an_error_with_its_position() {
        let cases = [
            ("ok\nx {{#if admin}}", 2, 3, "is not a variable"),
            ("{{}}", 1, 1, "empty placeholder"),
            ("a {{user name}}", 1, 3, "is not a variable"),
            ("é {{open", 1, 3, "never closed"),
            ("{{a {{b}}", 1, 1, "inside a placeholder"),
        ];
        for (src, line, column, what) in cases {
            let e = Template::parse(src).unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{src:?}: {e}");
            assert!(e.message.contains(what), "{src:?}: {e}");
        }
    }
}
