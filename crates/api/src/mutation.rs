//! Mutations of valid inputs for the parsers' property tests (money, templates, SSE, datasets,
//! vote files): a few symbols inserted, deleted, replaced or cut off and, for line-based formats,
//! whole lines duplicated, dropped or swapped. One generator for every parser, over chars or
//! bytes; only the alphabet of new symbols differs. Behind the `proptest` feature, for tests.

use std::fmt::Debug;

use proptest::prelude::*;

#[derive(Clone, Debug)]
pub enum Edit<T> {
    Insert(usize, Vec<T>),
    Delete(usize, usize),
    Replace(usize, T),
    Truncate(usize),
    DuplicateLine(usize),
    DeleteLine(usize),
    SwapLines(usize, usize),
}

/// One to four edits whose new symbols come from `alphabet`; with `lines`, whole-line edits
/// too. Positions are taken modulo the input's length when applied.
pub fn edits<T>(alphabet: Vec<T>, lines: bool) -> impl Strategy<Value = Vec<Edit<T>>>
where
    T: Clone + Debug + 'static,
{
    let symbol = prop::sample::select(alphabet);
    let symbols = prop::collection::vec(symbol.clone(), 1..4);
    let within = prop_oneof![
        (any::<usize>(), symbols).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), 1..5usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), symbol).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Truncate),
    ];
    let edit = if lines {
        prop_oneof![
            4 => within,
            1 => any::<usize>().prop_map(Edit::DuplicateLine),
            1 => any::<usize>().prop_map(Edit::DeleteLine),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        ]
        .boxed()
    } else {
        within.boxed()
    };
    prop::collection::vec(edit, 1..5)
}

/// `input` with `edits` applied in order; lines end after each `newline`.
pub fn apply<T: Clone + PartialEq>(input: &[T], edits: &[Edit<T>], newline: &T) -> Vec<T> {
    let mut s = input.to_vec();
    for e in edits {
        let n = s.len();
        let mut lines: Vec<Vec<T>> = s
            .split_inclusive(|x| x == newline)
            .map(<[T]>::to_vec)
            .collect();
        let m = lines.len().max(1);
        match e {
            Edit::Insert(i, new) => {
                let i = i % (n + 1);
                s.splice(i..i, new.iter().cloned());
            }
            Edit::Delete(i, k) if n > 0 => {
                let i = i % n;
                s.drain(i..(i + k).min(n));
            }
            Edit::Replace(i, x) if n > 0 => s[i % n] = x.clone(),
            Edit::Truncate(i) => s.truncate(i % (n + 1)),
            Edit::DuplicateLine(i) if !lines.is_empty() => {
                let l = lines[i % m].clone();
                lines.insert(i % m, l);
                s = lines.concat();
            }
            Edit::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % m);
                s = lines.concat();
            }
            Edit::SwapLines(a, b) if !lines.is_empty() => {
                lines.swap(a % m, b % m);
                s = lines.concat();
            }
            _ => {}
        }
    }
    s
}

/// The alphabet as chars, for [`edits`].
pub fn chars(alphabet: &str) -> Vec<char> {
    alphabet.chars().collect()
}

/// [`apply`] to text.
pub fn mutate(text: &str, edits: &[Edit<char>]) -> String {
    let chars: Vec<char> = text.chars().collect();
    apply(&chars, edits, &'\n').into_iter().collect()
}
