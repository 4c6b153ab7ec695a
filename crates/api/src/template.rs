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

/// Property tests: 10 000 generated, arbitrary or mutated templates each.
#[cfg(test)]
mod props {
    use super::*;
    use crate::mutation::{self, mutate, Edit};
    use proptest::prelude::*;

    /// The byte offset of a 1-based (line, column in characters), if that position exists.
    fn offset(source: &str, line: usize, column: usize) -> Option<usize> {
        let mut start = 0;
        for (i, l) in source.split('\n').enumerate() {
            if i + 1 == line {
                let mut ends = l.char_indices().map(|(b, _)| b).chain([l.len()]);
                return Some(start + ends.nth(column.checked_sub(1)?)?);
            }
            start += l.len() + 1;
        }
        None
    }

    /// A template as parts (text, then a variable with optional spaces inside its braces), the
    /// source that writes it (texts escaped with `\{{`) and the text it renders to.
    #[derive(Clone, Debug)]
    struct Generated {
        source: String,
        vars: BTreeMap<String, String>,
        order: Vec<String>,
        rendered: String,
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,5}"
    }

    /// Templates of `placeholders` placeholders with texts from `text` and values from `value`.
    fn generated(
        text: &'static str,
        value: &'static str,
        placeholders: std::ops::Range<usize>,
    ) -> impl Strategy<Value = Generated> {
        let names = prop::collection::vec(name(), 1..4);
        let values = prop::collection::vec(value, 4);
        let parts = prop::collection::vec((text, 0..4usize, " {0,2}", " {0,2}"), placeholders);
        (names, values, parts, text).prop_map(|(names, values, parts, tail)| {
            let (mut source, mut rendered, mut order) = (String::new(), String::new(), Vec::new());
            let vars: BTreeMap<String, String> =
                names.iter().cloned().zip(values.iter().cloned()).collect();
            for (mut t, k, pre, post) in parts {
                // A `{` or `\` right before a placeholder would make `{{{` or `\{{`.
                if t.ends_with(['{', '\\']) {
                    t.push(' ');
                }
                let n = &names[k % names.len()];
                source += &t.replace("{{", "\\{{");
                source += &format!("{{{{{pre}{n}{post}}}}}");
                rendered += &t;
                rendered += &vars[n];
                if !order.contains(n) {
                    order.push(n.clone());
                }
            }
            source += &tail.replace("{{", "\\{{");
            rendered += &tail;
            Generated {
                source,
                vars,
                order,
                rendered,
            }
        })
    }

    /// Mutations of valid inputs ([`crate::mutation`]), with this parser's symbols.
    fn edits() -> impl Strategy<Value = Vec<Edit<char>>> {
        mutation::edits(mutation::chars("{}\\ \na.é-_"), false)
    }

    /// Whatever the source, parsing either gives a template that renders with its own variables,
    /// or an error whose line and column point at the offending `{{`.
    fn check_any(source: &str) -> Result<(), TestCaseError> {
        match Template::parse(source) {
            Ok(t) => {
                let vars: BTreeMap<String, String> = t
                    .variables()
                    .into_iter()
                    .map(|v| (v, "x".to_owned()))
                    .collect();
                prop_assert!(vars.keys().all(|v| valid_name(v)));
                let r = t.render(&vars);
                prop_assert!(r.as_ref().is_ok_and(|r| r.unused.is_empty()), "{:?}", r);
            }
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                let shown = e.to_string();
                let prefix = format!("line {}, column {}: ", e.line, e.column);
                prop_assert!(shown.starts_with(&prefix), "{}", shown);
                let there = offset(source, e.line, e.column).map(|o| &source[o..]);
                prop_assert!(
                    there.is_some_and(|t| t.starts_with("{{")),
                    "{source:?}: {e} points at {there:?}"
                );
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// A template written with placeholders, JSON-ish braces, backslashes and `\{{` escapes
        /// renders to exactly its texts with the values put in, and lists its variables in order
        /// of first use; variables given but not used are reported.
        #[test]
        fn rendering_puts_every_value_in_its_place(g in generated("[a-z {}\\\\\"\n:é]{0,8}", ".{0,6}", 0..6)) {
            let t = Template::parse(&g.source).map_err(|e| TestCaseError::fail(format!("{:?}: {e}", g.source)))?;
            prop_assert_eq!(t.variables(), g.order.clone());
            let r = t.render(&g.vars).unwrap();
            prop_assert_eq!(&r.text, &g.rendered);
            let unused: Vec<String> = g.vars.keys().filter(|k| !g.order.contains(k)).cloned().collect();
            prop_assert_eq!(r.unused, unused);
        }

        /// With every variable given, nothing of a placeholder is left in the text.
        #[test]
        fn a_rendered_template_has_no_placeholder_left(
            g in generated("[a-z ,.:\n]{0,8}", "[^{}]{0,6}", 0..6),
        ) {
            let r = Template::parse(&g.source).unwrap().render(&g.vars).unwrap();
            prop_assert!(!r.text.contains("{{") && !r.text.contains("}}"), "{:?}", r.text);
        }

        /// Leaving out a variable is an error naming it, at its first placeholder.
        #[test]
        fn a_missing_variable_is_named_at_its_first_placeholder(
            g in generated("[a-z {}\"\n]{0,8}", ".{0,6}", 1..6),
            drop in any::<prop::sample::Index>(),
        ) {
            let missing = drop.get(&g.order);
            let mut vars = g.vars.clone();
            vars.remove(missing);
            let e = Template::parse(&g.source).unwrap().render(&vars).unwrap_err();
            prop_assert_eq!(&e.message, &format!("missing variable '{missing}'"));
            let o = offset(&g.source, e.line, e.column).unwrap();
            let inner = g.source[o..].strip_prefix("{{").unwrap().split("}}").next().unwrap();
            prop_assert_eq!(inner.trim(), missing.as_str());
            // And no earlier placeholder names it: the first one is reported.
            let before = &g.source[..o];
            prop_assert!(Template::parse(before).unwrap().variables().iter().all(|v| v != missing));
        }

        /// Arbitrary text: a template, or an error at a `{{`.
        #[test]
        fn arbitrary_text_parses_or_is_refused_at_a_placeholder(
            s in prop_oneof![any::<String>(), "[a-z{}\\\\ \n._-]{0,40}"],
        ) {
            check_any(&s)?;
        }

        /// Valid templates with characters inserted, deleted, replaced or cut off.
        #[test]
        fn mutated_templates_parse_or_are_refused_at_a_placeholder(
            g in generated("[a-z {}\\\\\"\n:é]{0,8}", ".{0,6}", 0..6),
            e in edits(),
        ) {
            check_any(&mutate(&g.source, &e))?;
        }
    }
}
