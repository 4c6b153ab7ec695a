//! Datasets: CSV and JSONL files parsed whole before anything is stored (a bad file is refused
//! with its file, line and column or field, and nothing is half-imported), stored as immutable
//! versions named by the hash of their items, and exported back to either format.
//!
//! File shapes:
//! - CSV: a header row. `expected` holds one reference; `expected_1`, `expected_2`, … several;
//!   `metadata` a JSON object; `meta.KEY` one metadata value; every other column is a variable.
//! - JSONL: one object per line, either `{"vars": {…}, "expected": …, "metadata": {…}}` or flat
//!   (`expected` and `metadata` as above, every other key a variable). `expected` is a string or
//!   a list of strings. Non-string variable values are written as JSON text.

mod actions;
pub mod storage;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use milc_api::dataset::{DatasetEdit, DatasetItem, DatasetPreview};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Error;

pub use milc_api::export::Format;

/// The formats a dataset file is read and written in.
pub const FORMATS: [Format; 2] = [Format::Csv, Format::Jsonl];

/// A dataset file format by name (`ndjson` is JSONL too).
pub fn format(s: &str) -> Result<Format, Error> {
    match Format::parse(s) {
        Some(Format::Ndjson) => Ok(Format::Jsonl),
        Some(f) if FORMATS.contains(&f) => Ok(f),
        _ => Err(Error::invalid(
            "format",
            format!("'{s}' is not a dataset format: use csv or jsonl"),
        )),
    }
}

fn format_of_path(path: &Path) -> Result<Format, Error> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    format(&ext).map_err(|_| {
        Error::invalid(
            path.display().to_string(),
            "name the file .csv or .jsonl so its format is known",
        )
    })
}

/// Reads and parses a whole file; the first problem is an error naming `FILE:LINE:COLUMN` (or
/// the field).
pub fn read_file(path: &Path) -> Result<Vec<DatasetItem>, Error> {
    let shown = path.display().to_string();
    let format = format_of_path(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(shown.clone(), format!("cannot read: {e}")))?;
    parse(&shown, format, &text)
}

/// Parses a whole text in `format`; `file` names it in errors.
pub fn parse(file: &str, format: Format, text: &str) -> Result<Vec<DatasetItem>, Error> {
    let items = match format {
        Format::Csv => parse_csv(file, text)?,
        Format::Jsonl | Format::Ndjson => parse_jsonl(file, text)?,
        other => {
            return Err(Error::invalid(
                "format",
                format!("'{other}' is not a dataset format: use csv or jsonl"),
            ))
        }
    };
    if items.is_empty() {
        return Err(Error::invalid(file, "holds no items"));
    }
    Ok(items)
}

pub fn parse_csv(file: &str, text: &str) -> Result<Vec<DatasetItem>, Error> {
    let at = |line: u64, column: Option<usize>| match column {
        Some(c) => format!("{file}:{line}:{c}"),
        None => format!("{file}:{line}"),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::invalid(at(1, None), e.to_string()))?
        .clone();
    let mut seen = BTreeSet::new();
    for (i, h) in headers.iter().enumerate() {
        if h.trim().is_empty() || !seen.insert(h) {
            return Err(Error::invalid(
                at(1, Some(i + 1)),
                format!("column {} needs a unique, non-empty name", i + 1),
            ));
        }
    }
    let mut items = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            Error::invalid(at(line, None), e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let mut item = DatasetItem::default();
        let mut numbered: BTreeMap<u32, String> = BTreeMap::new();
        for (i, (h, v)) in headers.iter().zip(record.iter()).enumerate() {
            if h == "expected" {
                if !v.is_empty() {
                    item.expected.push(v.to_owned());
                }
            } else if let Some(n) = h.strip_prefix("expected_").and_then(|n| n.parse().ok()) {
                if !v.is_empty() {
                    numbered.insert(n, v.to_owned());
                }
            } else if h == "metadata" {
                if !v.trim().is_empty() {
                    match serde_json::from_str::<Value>(v) {
                        Ok(Value::Object(m)) => item.metadata.extend(m),
                        _ => {
                            return Err(Error::invalid(
                                at(line, Some(i + 1)),
                                "the metadata column holds a JSON object",
                            ))
                        }
                    }
                }
            } else if let Some(key) = h.strip_prefix("meta.") {
                item.metadata
                    .insert(key.to_owned(), Value::String(v.to_owned()));
            } else {
                item.vars.insert(h.to_owned(), v.to_owned());
            }
        }
        item.expected.extend(numbered.into_values());
        items.push(item);
    }
    Ok(items)
}

pub fn parse_jsonl(file: &str, text: &str) -> Result<Vec<DatasetItem>, Error> {
    // Windows tools often save UTF-8 with a byte-order mark: it is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            Error::invalid(format!("{file}:{line_no}:{}", e.column()), e.to_string())
        })?;
        let field = |name: &str| format!("{file}:{line_no}: field '{name}'");
        let Value::Object(mut obj) = value else {
            return Err(Error::invalid(
                format!("{file}:{line_no}"),
                "each line is a JSON object",
            ));
        };
        let mut item = DatasetItem::default();
        match obj.remove("expected") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => item.expected.push(s),
            Some(Value::Array(list)) => {
                for v in list {
                    match v {
                        Value::String(s) => item.expected.push(s),
                        _ => {
                            return Err(Error::invalid(
                                field("expected"),
                                "a list of references holds strings only",
                            ))
                        }
                    }
                }
            }
            Some(_) => {
                return Err(Error::invalid(
                    field("expected"),
                    "a string, or a list of strings",
                ))
            }
        }
        match obj.remove("metadata") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => item.metadata.extend(m),
            Some(_) => return Err(Error::invalid(field("metadata"), "a JSON object")),
        }
        let vars: Map<String, Value> = match obj.remove("vars") {
            Some(Value::Object(v)) => {
                if let Some(extra) = obj.keys().next() {
                    return Err(Error::invalid(
                        field(extra),
                        "with \"vars\", a line holds only vars, expected and metadata",
                    ));
                }
                v
            }
            Some(_) => return Err(Error::invalid(field("vars"), "a JSON object")),
            None => obj,
        };
        for (k, v) in vars {
            let text = match v {
                Value::String(s) => s,
                Value::Null => {
                    return Err(Error::invalid(
                        field(&k),
                        "null is not a value for a variable",
                    ))
                }
                other => other.to_string(),
            };
            item.vars.insert(k, text);
        }
        items.push(item);
    }
    Ok(items)
}

/// `items` with `edit` applied: replacements in place, deletions left out, additions at the end.
/// Every line is parsed before anything changes; an error names the item (`item 3`, `new item
/// 1`) and the column.
pub fn apply_edit(items: Vec<DatasetItem>, edit: &DatasetEdit) -> Result<Vec<DatasetItem>, Error> {
    if edit.is_empty() {
        return Err(Error::invalid("edit", "nothing to change"));
    }
    let n = items.len() as u64;
    for &idx in edit.set.keys().chain(&edit.delete) {
        if idx >= n {
            return Err(Error::invalid(
                format!("item {idx}"),
                format!("{} has items 0 to {}", edit.base, n.saturating_sub(1)),
            ));
        }
    }
    if let Some(idx) = edit.set.keys().find(|i| edit.delete.contains(i)) {
        return Err(Error::invalid(
            format!("item {idx}"),
            "is both changed and deleted",
        ));
    }
    let one = |label: String, line: &str| -> Result<DatasetItem, Error> {
        let mut parsed = parse_jsonl(&label, line)?;
        match (parsed.pop(), parsed.is_empty()) {
            (Some(item), true) => Ok(item),
            _ => Err(Error::invalid(
                label,
                "write exactly one item, as one JSON object",
            )),
        }
    };
    let mut set = BTreeMap::new();
    for (idx, line) in &edit.set {
        set.insert(*idx, one(format!("item {idx}"), line)?);
    }
    let mut added = Vec::new();
    for (i, line) in edit.add.iter().enumerate() {
        added.push(one(format!("new item {}", i + 1), line)?);
    }
    let mut out: Vec<DatasetItem> = items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !edit.delete.contains(&(*i as u64)))
        .map(|(i, item)| set.remove(&(i as u64)).unwrap_or(item))
        .collect();
    out.extend(added);
    if out.is_empty() {
        return Err(Error::invalid(
            "edit",
            "a dataset version needs at least one item",
        ));
    }
    Ok(out)
}

/// SHA-256 over the items' JSON, one per line, in order (maps are sorted, so equal content in
/// any file shape has one hash).
pub fn items_hash(items: &[DatasetItem]) -> String {
    let mut h = Sha256::new();
    for item in items {
        h.update(item_json(item).as_bytes());
        h.update(b"\n");
    }
    crate::db::hex(&h.finalize())
}

fn item_json(item: &DatasetItem) -> String {
    // Metadata values may be objects from a file: sort their keys too.
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, canonical(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    let mut item = item.clone();
    for v in item.metadata.values_mut() {
        *v = canonical(v);
    }
    serde_json::to_string(&item).expect("an item serializes")
}

fn variables(items: &[DatasetItem]) -> Vec<String> {
    let set: BTreeSet<&String> = items.iter().flat_map(|i| i.vars.keys()).collect();
    set.into_iter().cloned().collect()
}

/// What an import would store, without storing it.
pub fn preview(items: &[DatasetItem], first: usize) -> DatasetPreview {
    DatasetPreview {
        items: items.len() as u64,
        variables: variables(items),
        with_expected: items.iter().filter(|i| !i.expected.is_empty()).count() as u64,
        first: items.iter().take(first).cloned().collect(),
        hash: items_hash(items),
    }
}

/// Writes items as CSV with the columns `read_file` reads back: the variables (sorted), then
/// `expected` (or `expected_1`…`expected_N` when an item has several), then `metadata`.
fn write_csv(items: &[DatasetItem], out: &mut dyn Write) -> Result<(), Error> {
    let vars = variables(items);
    // A JSONL file may name a variable as CSV names a reference or metadata: such a file would
    // read back changed, so it is refused rather than written.
    if let Some(v) = vars.iter().find(|v| {
        v.trim().is_empty()
            || ["expected", "metadata"].contains(&v.as_str())
            || v.starts_with("meta.")
            || v.strip_prefix("expected_")
                .is_some_and(|n| n.parse::<u32>().is_ok())
    }) {
        return Err(Error::invalid(
            "export",
            format!("variable '{v}' would not read back from CSV as a variable: export as JSONL"),
        ));
    }
    let refs = items.iter().map(|i| i.expected.len()).max().unwrap_or(0);
    let with_meta = items.iter().any(|i| !i.metadata.is_empty());
    let mut header: Vec<String> = vars.clone();
    match refs {
        0 => {}
        1 => header.push("expected".into()),
        n => header.extend((1..=n).map(|k| format!("expected_{k}"))),
    }
    if with_meta {
        header.push("metadata".into());
    }
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| Error::invalid("export", e.to_string());
    w.write_record(&header).map_err(io)?;
    for item in items {
        let mut row: Vec<String> = vars
            .iter()
            .map(|v| item.vars.get(v).cloned().unwrap_or_default())
            .collect();
        row.extend((0..refs).map(|k| item.expected.get(k).cloned().unwrap_or_default()));
        if with_meta {
            row.push(if item.metadata.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&item.metadata).expect("metadata serializes")
            });
        }
        w.write_record(&row).map_err(io)?;
    }
    w.flush()
        .map_err(|e| Error::invalid("export", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_before_jsonl_is_not_part_of_the_first_line() {
        // Found by the property tests: "d.jsonl:1:1: expected value at line 1 column 1".
        let items = parse_jsonl("d.jsonl", "\u{feff}{\"q\": \"a\"}\r\n").unwrap();
        assert_eq!(items[0].vars["q"], "a");
    }

    #[test]
    fn csv_export_refuses_variables_csv_would_read_as_something_else() {
        // Found by the property tests: a JSONL variable `expected` exported as CSV read back as
        // a reference (and `meta.x` as metadata, `expected_2` as a second reference).
        for name in ["expected", "expected_2", "metadata", "meta.source", "", " "] {
            let item = DatasetItem {
                vars: [(name.to_owned(), "v".to_owned())].into(),
                ..Default::default()
            };
            let e = write_csv(&[item], &mut Vec::new()).unwrap_err().to_string();
            assert!(e.contains(&format!("variable '{name}'")), "{e}");
            assert!(e.contains("export as JSONL"), "{e}");
        }
        let fine = DatasetItem {
            vars: [("expected_answer".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_csv(std::slice::from_ref(&fine), &mut out).unwrap();
        assert_eq!(
            parse_csv("d.csv", std::str::from_utf8(&out).unwrap()).unwrap(),
            [fine]
        );
    }

    #[test]
    fn csv_columns_become_variables_references_and_metadata() {
        let text = "question,team,expected_2,expected_1,meta.source,metadata\n\
                    \"Why, exactly?\",ops,second,first,faq,\"{\"\"id\"\": 7}\"\n\
                    Hi,,,,,\n";
        let items = parse_csv("d.csv", text).unwrap();
        assert_eq!(items[0].vars["question"], "Why, exactly?");
        assert_eq!(items[0].expected, ["first", "second"]);
        assert_eq!(items[0].metadata["source"], "faq");
        assert_eq!(items[0].metadata["id"], 7);
        assert_eq!(items[1].vars["team"], "");
        assert!(items[1].expected.is_empty());
    }

    #[test]
    fn bad_csv_names_the_line() {
        let e = parse_csv("d.csv", "a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(e.starts_with("d.csv:3"), "{e}");
        let e = parse_csv("d.csv", "a,a\n1,2\n").unwrap_err().to_string();
        assert!(e.starts_with("d.csv:1:2"), "{e}");
        let e = parse_csv("d.csv", "a,metadata\n1,[1]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.csv:2:2"), "{e}");
    }

    #[test]
    fn jsonl_lines_are_flat_or_nested_and_bad_ones_are_named() {
        let text = "{\"q\": \"a\", \"n\": 3, \"expected\": [\"x\", \"y\"]}\n\n\
                    {\"vars\": {\"q\": \"b\"}, \"expected\": \"z\", \"metadata\": {\"k\": 1}}\n";
        let items = parse_jsonl("d.jsonl", text).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].vars["n"], "3");
        assert_eq!(items[1].expected, ["z"]);
        let cases = [
            ("{\"q\": 1}\n{\"q\": \"a\",, }\n", "d.jsonl:2:"),
            ("[1]\n", "d.jsonl:1"),
            ("{\"expected\": 3}\n", "field 'expected'"),
            ("{\"vars\": {}, \"extra\": 1}\n", "field 'extra'"),
            ("{\"q\": null}\n", "field 'q'"),
        ];
        for (text, want) in cases {
            let e = parse_jsonl("d.jsonl", text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_same_content_in_either_shape_has_one_hash() {
        let csv = parse_csv("d.csv", "q,expected\nhello,hi\n").unwrap();
        let jsonl = parse_jsonl(
            "d.jsonl",
            "{\"vars\": {\"q\": \"hello\"}, \"expected\": [\"hi\"]}",
        )
        .unwrap();
        assert_eq!(items_hash(&csv), items_hash(&jsonl));
        let other = parse_jsonl("d.jsonl", "{\"q\": \"hello\", \"expected\": \"hi!\"}").unwrap();
        assert_ne!(items_hash(&csv), items_hash(&other));
    }
}

/// Property tests: 10 000 generated, arbitrary or mutated files each.
#[cfg(test)]
mod props {
    use super::*;
    use milc_api::mutation::{self, mutate, Edit};
    use proptest::prelude::*;

    /// Any text, control characters, quotes, commas and line ends included.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["(?s:.){0,8}", "[a-z,\"\r\n {}]{0,8}"]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(text(), inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Items that all have the variables `names` (as any row of a CSV file does).
    fn items_named(
        names: impl Strategy<Value = BTreeSet<String>>,
    ) -> impl Strategy<Value = Vec<DatasetItem>> {
        names.prop_flat_map(|names| {
            let n = names.len();
            let item = (
                prop::collection::vec(text(), n),
                prop::collection::vec(text().prop_filter("a reference", |t| !t.is_empty()), 0..3),
                prop::collection::btree_map(text(), json_value(), 0..3),
            );
            let names: Vec<String> = names.into_iter().collect();
            prop::collection::vec(item, 1..5).prop_map(move |items| {
                items
                    .into_iter()
                    .map(|(values, expected, metadata)| DatasetItem {
                        vars: names.iter().cloned().zip(values).collect(),
                        expected,
                        metadata,
                    })
                    .collect()
            })
        })
    }

    /// Variable names a CSV header holds as variables.
    fn csv_names() -> impl Strategy<Value = BTreeSet<String>> {
        let name = "[a-z][a-z0-9 _]{0,6}".prop_filter("a variable's column", |n| {
            n != "expected" && n != "metadata" && !n.starts_with("expected_")
        });
        prop::collection::btree_set(name, 1..4)
    }

    fn csv_text(items: &[DatasetItem]) -> Result<String, Error> {
        let mut out = Vec::new();
        write_csv(items, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn jsonl_text(items: &[DatasetItem], crlf: bool) -> String {
        let end = if crlf { "\r\n" } else { "\n" };
        items.iter().map(|i| item_json(i) + end).collect()
    }

    /// Mutations of valid inputs ([`milc_api::mutation`]), with this parser's symbols.
    fn edits() -> impl Strategy<Value = Vec<Edit<char>>> {
        mutation::edits(mutation::chars(",\"\n\r{}[]:0a é"), true)
    }

    /// The line an error names (`d.csv:LINE` or `d.csv:LINE:COLUMN`), if it names one.
    fn named_line(e: &Error, file: &str) -> Option<usize> {
        let shown = e.to_string();
        let rest = shown.strip_prefix(file)?.strip_prefix(':')?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// Any CSV text: items, or an error naming a line of the file.
    fn check_csv(text: &str) -> Result<(), TestCaseError> {
        if let Err(e) = parse_csv("d.csv", text) {
            let lines = text.matches('\n').count() + 1;
            let line = named_line(&e, "d.csv");
            prop_assert!(
                line.is_some_and(|l| (1..=lines).contains(&l)),
                "{text:?}: {e} names no line of the file"
            );
        }
        Ok(())
    }

    /// Any JSONL text: one item per line that is not blank, or an error naming the first line
    /// that is not an item (every line before it is one).
    fn check_jsonl(text: &str) -> Result<(), TestCaseError> {
        let lines: Vec<&str> = text.lines().collect();
        match parse_jsonl("d.jsonl", text) {
            Ok(items) => {
                let filled = lines.iter().filter(|l| !l.trim().is_empty()).count();
                prop_assert_eq!(items.len(), filled);
            }
            Err(e) => {
                let line = named_line(&e, "d.jsonl");
                prop_assert!(
                    line.is_some_and(|l| (1..=lines.len()).contains(&l)),
                    "{text:?}: {e} names no line of the file"
                );
                let line = line.unwrap();
                // Each line read alone, where it stands (a BOM is only skipped at the start).
                let alone = |i: usize, line: &str| {
                    let pad = if i == 0 { "" } else { "\n" };
                    parse_jsonl("x", &format!("{pad}{line}"))
                };
                prop_assert!(alone(line - 1, lines[line - 1]).is_err(), "{}", e);
                for (i, l) in lines[..line - 1].iter().enumerate() {
                    prop_assert!(alone(i, l).is_ok(), "{e}, but {l:?} before it is bad");
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// A dataset exported as CSV reads back as the same items: values with commas, quotes
        /// and line ends, several references, metadata objects; also saved with a BOM, as
        /// spreadsheet programs do.
        #[test]
        fn csv_written_then_read_gives_the_same_items(
            items in items_named(csv_names()),
            bom in any::<bool>(),
        ) {
            let text = csv_text(&items)?;
            let text = if bom { format!("\u{feff}{text}") } else { text };
            prop_assert_eq!(parse_csv("d.csv", &text)?, items);
        }

        /// A dataset exported as JSONL reads back as the same items, whatever its variables are
        /// called, with LF or CRLF line ends, blank lines between, and a BOM or none.
        #[test]
        fn jsonl_written_then_read_gives_the_same_items(
            items in items_named(prop::collection::btree_set(text(), 0..4)),
            crlf in any::<bool>(),
            blank in any::<bool>(),
            bom in any::<bool>(),
        ) {
            let mut text = jsonl_text(&items, crlf);
            if blank {
                text = text.replace('\n', "\n \n");
            }
            if bom {
                text.insert(0, '\u{feff}');
            }
            prop_assert_eq!(parse_jsonl("d.jsonl", &text)?, items);
        }

        /// Whatever its variables are called, a dataset is exported as CSV only when it reads
        /// back the same; otherwise the export is refused, naming the variable.
        #[test]
        fn csv_export_reads_back_the_same_or_is_refused(
            items in items_named(prop::collection::btree_set(
                prop::sample::select(vec![
                    "q", "expected", "expected_2", "metadata", "meta.source", "", " ", "vars",
                ]).prop_map(String::from),
                1..3,
            )),
        ) {
            match csv_text(&items) {
                Ok(text) => prop_assert_eq!(parse_csv("d.csv", &text)?, items),
                Err(e) => {
                    let shown = e.to_string();
                    prop_assert!(
                        items[0].vars.keys().any(|k| shown.contains(&format!("'{k}'"))),
                        "{}", shown
                    );
                }
            }
        }

        /// A row with a field too few or too many is named by the line it starts on, also
        /// after values that span lines.
        #[test]
        fn a_csv_row_of_the_wrong_length_is_named_by_its_line(
            names in csv_names(),
            rows in prop::collection::vec(prop::collection::vec(text(), 3), 1..5),
            bad in any::<prop::sample::Index>(),
            extra in any::<bool>(),
        ) {
            let record = |fields: &[String]| {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(fields).unwrap();
                String::from_utf8(w.into_inner().unwrap()).unwrap()
            };
            let n = names.len();
            let mut text = record(&names.into_iter().collect::<Vec<_>>());
            let row = bad.index(rows.len());
            let mut line = 0;
            for (i, r) in rows.iter().enumerate() {
                let mut r = r[..n].to_vec();
                if i == row {
                    line = text.matches('\n').count() + 1;
                    if extra || n == 1 {
                        r.push("x".into());
                    } else {
                        r.pop();
                    }
                }
                text += &record(&r);
            }
            let e = parse_csv("d.csv", &text).unwrap_err();
            prop_assert_eq!(named_line(&e, "d.csv"), Some(line), "{:?}: {}", text, e);
        }

        /// Arbitrary text as CSV: items, or an error naming a line.
        #[test]
        fn arbitrary_csv_is_read_or_refused_at_a_line(s in prop_oneof![any::<String>(), "[a-z,\"\r\n ]{0,40}"]) {
            check_csv(&s)?;
        }

        /// Exported CSV with characters and lines inserted, deleted, replaced, swapped or cut.
        #[test]
        fn mutated_csv_is_read_or_refused_at_a_line(items in items_named(csv_names()), e in edits()) {
            check_csv(&mutate(&csv_text(&items)?, &e))?;
        }

        /// Arbitrary text as JSONL: an item per line, or an error naming the first bad line.
        #[test]
        fn arbitrary_jsonl_is_read_or_refused_at_its_first_bad_line(
            s in prop_oneof![any::<String>(), "[a-z,\"\r\n {}:\\[\\]0-9]{0,40}"],
        ) {
            check_jsonl(&s)?;
        }

        /// Exported JSONL, flat lines too, with characters and lines inserted, deleted,
        /// replaced, swapped or cut.
        #[test]
        fn mutated_jsonl_is_read_or_refused_at_its_first_bad_line(
            items in items_named(csv_names()),
            e in edits(),
        ) {
            let mut text = jsonl_text(&items, false);
            // A flat line too: `{"q": …, "expected": …, "metadata": …}`.
            let mut flat: Map<String, Value> =
                items[0].vars.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
            flat.insert("expected".into(), Value::from(items[0].expected.clone()));
            text.push_str(&Value::Object(flat).to_string());
            check_jsonl(&mutate(&text, &e))?;
        }
    }
}
