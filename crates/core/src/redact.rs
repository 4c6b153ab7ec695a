//! Finding and redacting personal data: e-mail addresses, phone numbers (E.164, North American
//! and trunk-prefixed national formats), payment cards (Luhn-checked), US SSNs, IPv4 and IPv6
//! addresses (parsed, not just matched), IBANs (mod-97 verified) and a team's own patterns.
//!
//! Each detector proposes candidates with a loose pattern and keeps only those that pass its
//! check, so a card number that fails Luhn, a date that looks like a phone number or a time that
//! looks like an IPv6 address is left alone. Where candidates overlap, the more specific detector
//! wins (custom patterns first, then e-mail, IBAN, card, SSN, IPv6, IPv4, phone).
//!
//! Placeholders are stable within one request: [`Placeholders`] gives `[EMAIL_1]` to the same
//! address every time it appears, in every message, and restores the originals in an answer.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use milc_api::{PiiEntity, PiiKind, RedactionPolicy};
use regex::Regex;

use crate::Error;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a built-in pattern compiles")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b",
    )
});
static PHONE_INTL: LazyLock<Regex> =
    LazyLock::new(|| re(r"\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}\b"));
static PHONE_NANP: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\b1[ .-])?(?:\(\d{3}\) ?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b"));
static PHONE_NATIONAL: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b0\d{1,4}(?:[ /-]?\d{2,4}){2,4}\b"));
static DATE_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:\d{4}[-/. ]\d{1,2}[-/. ]\d{1,2}|\d{1,2}[-/. ]\d{1,2}[-/. ]\d{2,4})$")
});
static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d(?:[ -]?\d){12,22}\b"));
static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{3})([- ])(\d{2})[- ](\d{4})\b"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"));
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:\b[0-9a-f]{1,4}|::?)(?::{1,2}[0-9a-f]{1,4}){1,7}(?:::)?(?:\.\d{1,3}){0,3}|\b[0-9a-f]{1,4}::",
    )
});
static IBAN: LazyLock<Regex> = LazyLock::new(|| re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"));
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| re(r"\[([A-Z0-9_]+)_(\d+)\]"));

/// Finds personal data. Cheap to clone; the built-in patterns are compiled once per process.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    custom: Vec<(String, Regex)>,
}

/// A text with its personal data replaced by placeholders, and what was found.
#[derive(Clone, Debug, PartialEq)]
pub struct Redaction {
    pub text: String,
    pub entities: Vec<PiiEntity>,
}

/// The placeholders of one request: the same value always gets the same placeholder, and an
/// answer that repeats a placeholder can have the original put back.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    by_value: HashMap<(String, String), String>,
    counts: HashMap<String, usize>,
    originals: HashMap<String, String>,
}

impl Placeholders {
    fn get(&mut self, kind: &PiiKind, text: &str) -> String {
        let tag = kind.tag();
        let key = (tag.clone(), normalize(kind, text));
        if let Some(p) = self.by_value.get(&key) {
            return p.clone();
        }
        let n = self.counts.entry(tag.clone()).or_insert(0);
        *n += 1;
        let placeholder = format!("[{tag}_{n}]");
        self.by_value.insert(key, placeholder.clone());
        self.originals.insert(placeholder.clone(), text.to_owned());
        placeholder
    }

    /// True when nothing was redacted (there is nothing to restore).
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// Puts the original values back where `text` (say, the model's answer) holds placeholders
    /// of this request; placeholders it never gave out are left as they are.
    pub fn restore(&self, text: &str) -> String {
        PLACEHOLDER
            .replace_all(text, |c: &regex::Captures| {
                self.originals
                    .get(&c[0])
                    .cloned()
                    .unwrap_or_else(|| c[0].to_owned())
            })
            .into_owned()
    }
}

/// The same value written differently (case, spaces, dashes) is the same value.
fn normalize(kind: &PiiKind, text: &str) -> String {
    match kind {
        PiiKind::Email | PiiKind::Ipv6 => text.to_ascii_lowercase(),
        PiiKind::Phone | PiiKind::Card | PiiKind::Ssn | PiiKind::Iban => text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_uppercase(),
        PiiKind::Ipv4 | PiiKind::Custom(_) => text.to_owned(),
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a team's own pattern (an employee id, a ticket number…) under `name`.
    pub fn with_custom(mut self, name: &str, pattern: &str) -> Result<Self, Error> {
        let field = format!("custom.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::invalid(field, "a name of letters, digits, _ or -"));
        }
        let regex = Regex::new(pattern)
            .map_err(|e| Error::invalid(field, format!("not a valid pattern: {e}")))?;
        self.custom.push((name.to_owned(), regex));
        Ok(self)
    }

    /// The redactor of a policy: the built-in detectors plus its custom patterns, each bad
    /// pattern named as `{field}.custom.NAME`.
    pub fn for_policy(policy: &RedactionPolicy, field: &str) -> Result<Self, Error> {
        policy
            .custom
            .iter()
            .try_fold(Self::new(), |r, c| r.with_custom(&c.name, &c.pattern))
            .map_err(|e| match e {
                Error::Invalid { field: f, message } => {
                    Error::invalid(format!("{field}.{f}"), message)
                }
                other => other,
            })
    }

    /// Every piece of personal data in `text`, in order, without overlaps.
    pub fn find(&self, text: &str) -> Vec<(PiiKind, std::ops::Range<usize>)> {
        // Most specific first: a candidate is kept only where nothing kept so far overlaps it.
        let mut found: Vec<(PiiKind, std::ops::Range<usize>)> = Vec::new();
        // Spans that are clearly something else (an IBAN with a wrong checksum) and must not be
        // read as a phone or card number piecemeal.
        let mut claimed: Vec<std::ops::Range<usize>> = Vec::new();
        let overlaps = |a: &std::ops::Range<usize>, b: &std::ops::Range<usize>| {
            a.start < b.end && b.start < a.end
        };
        let mut keep = |kind: Option<PiiKind>, r: std::ops::Range<usize>| {
            if found.iter().any(|(_, f)| overlaps(f, &r)) || claimed.iter().any(|c| overlaps(c, &r))
            {
                return;
            }
            match kind {
                Some(kind) => found.push((kind, r)),
                None => claimed.push(r),
            }
        };
        for (name, regex) in &self.custom {
            for m in regex.find_iter(text).filter(|m| !m.is_empty()) {
                keep(Some(PiiKind::Custom(name.clone())), m.range());
            }
        }
        for m in EMAIL.find_iter(text) {
            keep(Some(PiiKind::Email), m.range());
        }
        for m in IBAN.find_iter(text) {
            match longest_valid_prefix(text, m.range(), 15, 34, iban_ok) {
                Some(end) => keep(Some(PiiKind::Iban), m.start()..end),
                None => keep(None, m.range()),
            }
        }
        for m in CARD.find_iter(text) {
            if let Some(end) = longest_valid_prefix(text, m.range(), 13, 19, card_ok) {
                if grouped_like_a_card(&text[m.start()..end]) {
                    keep(Some(PiiKind::Card), m.start()..end);
                }
            }
        }
        for c in SSN.captures_iter(text) {
            let (area, group, serial) = (&c[1], &c[3], &c[4]);
            let valid = area != "000"
                && area != "666"
                && !area.starts_with('9')
                && group != "00"
                && serial != "0000";
            if valid {
                keep(Some(PiiKind::Ssn), c.get(0).unwrap().range());
            }
        }
        for m in IPV6.find_iter(text) {
            let candidate = m.as_str();
            let has_hex = candidate.chars().any(|c| c.is_ascii_hexdigit());
            if has_hex
                && candidate.matches(':').count() >= 2
                && candidate.parse::<Ipv6Addr>().is_ok()
            {
                keep(Some(PiiKind::Ipv6), m.range());
            }
        }
        for m in IPV4.find_iter(text) {
            if m.as_str().parse::<Ipv4Addr>().is_ok() {
                keep(Some(PiiKind::Ipv4), m.range());
            }
        }
        for regex in [&*PHONE_INTL, &*PHONE_NANP, &*PHONE_NATIONAL] {
            for m in regex.find_iter(text) {
                if phone_ok(m.as_str()) && !inside_longer_number(text, m.range()) {
                    keep(Some(PiiKind::Phone), m.range());
                }
            }
        }
        found.sort_by_key(|(_, r)| r.start);
        found
    }

    /// Replaces every piece of personal data in `text` with its placeholder from `placeholders`.
    pub fn redact(&self, text: &str, placeholders: &mut Placeholders) -> Redaction {
        let mut out = String::with_capacity(text.len());
        let mut entities = Vec::new();
        let mut last = 0;
        for (kind, r) in self.find(text) {
            let original = &text[r.clone()];
            let placeholder = placeholders.get(&kind, original);
            out.push_str(&text[last..r.start]);
            out.push_str(&placeholder);
            last = r.end;
            entities.push(PiiEntity {
                kind,
                start: r.start,
                end: r.end,
                text: original.to_owned(),
                placeholder,
            });
        }
        out.push_str(&text[last..]);
        Redaction {
            text: out,
            entities,
        }
    }
}

/// A greedy pattern can run into a neighbouring number ("card 4111 1111 1111 1111 2025"): try
/// the match and then shorter ends at separator boundaries, keeping the longest that `ok` accepts.
fn longest_valid_prefix(
    text: &str,
    r: std::ops::Range<usize>,
    min: usize,
    max: usize,
    ok: fn(&str) -> bool,
) -> Option<usize> {
    let s = &text[r.clone()];
    let mut ends: Vec<usize> = s.match_indices([' ', '-']).map(|(i, _)| i).collect();
    ends.push(s.len());
    ends.into_iter().rev().find_map(|end| {
        let compact: String = s[..end]
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        ((min..=max).contains(&compact.len()) && ok(&compact)).then_some(r.start + end)
    })
}

/// Card numbers are printed whole or in the issuers' groups: 4-4-4-4(-3), 4-6-5 (Amex), 4-6-4
/// (Diners). An ISBN (978-3-16-148410-0) or a phone number that happens to pass Luhn is not.
fn grouped_like_a_card(s: &str) -> bool {
    let groups: Vec<usize> = s.split([' ', '-']).map(str::len).collect();
    match groups.as_slice() {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|&g| g == 4) && (1..=4).contains(last),
        [] => false,
    }
}

fn card_ok(digits: &str) -> bool {
    if digits.bytes().all(|b| b == digits.as_bytes()[0]) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 13616: move the first four characters to the end, letters to numbers, mod 97 = 1.
fn iban_ok(iban: &str) -> bool {
    let (head, tail) = iban.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn phone_ok(candidate: &str) -> bool {
    let digits = candidate.chars().filter(char::is_ascii_digit).count();
    let c = candidate.trim();
    (8..=15).contains(&digits) && !DATE_LIKE.is_match(c) && !SSN_SHAPE.is_match(c)
}

static SSN_SHAPE: LazyLock<Regex> = LazyLock::new(|| re(r"^\d{3}[- ]\d{2}[- ]\d{4}$"));

/// A match that continues a group of digits before or after it ("DE00 3704 0044 0532…") is a piece
/// of a longer number, not a number of its own.
fn inside_longer_number(text: &str, r: std::ops::Range<usize>) -> bool {
    let before = text[..r.start].chars().rev().take(2).collect::<Vec<_>>();
    let after = text[r.end..].chars().take(2).collect::<Vec<_>>();
    let continues = |pair: &[char]| matches!(pair, [sep, d] if matches!(sep, ' ' | '-' | '.' | '/') && d.is_ascii_digit());
    continues(&before) || continues(&after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, String)> {
        Redactor::new()
            .find(text)
            .into_iter()
            .map(|(k, r)| (k, text[r].to_owned()))
            .collect()
    }

    fn one(text: &str, kind: PiiKind, value: &str) {
        assert_eq!(kinds(text), vec![(kind, value.to_owned())], "in {text:?}");
    }

    fn none(text: &str) {
        assert_eq!(kinds(text), vec![], "in {text:?}");
    }

    #[test]
    fn emails_including_inside_urls() {
        one(
            "write to Jane.Doe+news@Example.co.uk today",
            PiiKind::Email,
            "Jane.Doe+news@Example.co.uk",
        );
        one(
            "see https://crm.example.com/contacts?email=jane@corp.io&x=1",
            PiiKind::Email,
            "jane@corp.io",
        );
        none("the package @scope/name and user@localhost are not addresses");
    }

    #[test]
    fn cards_must_pass_luhn() {
        one(
            "card 4111 1111 1111 1111 on file",
            PiiKind::Card,
            "4111 1111 1111 1111",
        );
        one("amex 3782-822463-10005", PiiKind::Card, "3782-822463-10005");
        none("card 4111 1111 1111 1112 on file");
        none("order 0000000000000000");
        none("ISBN 978-8-26-164567-6 is out of print");
        // A year right after the number is not part of it.
        one(
            "4111 1111 1111 1111 2025",
            PiiKind::Card,
            "4111 1111 1111 1111",
        );
    }

    #[test]
    fn phones_but_not_dates_or_short_numbers() {
        one(
            "call +1 415 555 2671 now",
            PiiKind::Phone,
            "+1 415 555 2671",
        );
        one("call +14155552671", PiiKind::Phone, "+14155552671");
        one("office (415) 555-2671", PiiKind::Phone, "(415) 555-2671");
        one("London 020 7946 0958", PiiKind::Phone, "020 7946 0958");
        one("Berlin +49 30 12345678", PiiKind::Phone, "+49 30 12345678");
        for date in [
            "on 2024-01-15 we",
            "on 15.01.2024 we",
            "on 01/15/2024 we",
            "on 01-02-2024 we",
        ] {
            none(date);
        }
        none("room 4155 floor 2");
    }

    #[test]
    fn ssns_follow_the_issuing_rules() {
        one("SSN 123-45-6789.", PiiKind::Ssn, "123-45-6789");
        none("SSN 000-45-6789 or 666-45-6789 or 900-45-6789 or 123-00-6789");
    }

    #[test]
    fn ip_addresses_are_parsed_not_just_matched() {
        one("from 192.168.10.4:8080", PiiKind::Ipv4, "192.168.10.4");
        none("version 300.1.2.3");
        one(
            "host 2001:db8::8a2e:370:7334 up",
            PiiKind::Ipv6,
            "2001:db8::8a2e:370:7334",
        );
        one("loopback ::1 only", PiiKind::Ipv6, "::1");
        none("at 12:30:45 the MAC 00:1a:2b:3c:4d:5e");
    }

    #[test]
    fn ibans_need_a_valid_checksum() {
        one(
            "pay DE89 3704 0044 0532 0130 00 please",
            PiiKind::Iban,
            "DE89 3704 0044 0532 0130 00",
        );
        one(
            "GB82WEST12345698765432",
            PiiKind::Iban,
            "GB82WEST12345698765432",
        );
        none("pay DE00 3704 0044 0532 0130 00 please");
        none("the IBAN GB83 WEST 0196 1455 4235 32 failed validation");
    }

    #[test]
    fn placeholders_are_stable_within_a_request_and_restore() {
        let r = Redactor::new();
        let mut ph = Placeholders::default();
        let a = r.redact("Mail ann@x.io or bob@x.io; ANN@X.IO again", &mut ph);
        assert_eq!(a.text, "Mail [EMAIL_1] or [EMAIL_2]; [EMAIL_1] again");
        let b = r.redact("System note: ann@x.io, card 4111-1111-1111-1111", &mut ph);
        assert_eq!(b.text, "System note: [EMAIL_1], card [CARD_1]");
        assert_eq!(b.entities[1].text, "4111-1111-1111-1111");
        assert_eq!((b.entities[1].start, b.entities[1].end), (28, 47));
        let answer = "I wrote to [EMAIL_2] and charged [CARD_1]; [EMAIL_9] is unknown.";
        assert_eq!(
            ph.restore(answer),
            "I wrote to bob@x.io and charged 4111-1111-1111-1111; [EMAIL_9] is unknown."
        );
    }

    #[test]
    fn custom_patterns_come_first_and_bad_ones_name_the_field() {
        let r = Redactor::new()
            .with_custom("employee_id", r"\bEMP-\d{6}\b")
            .unwrap();
        let mut ph = Placeholders::default();
        assert_eq!(
            r.redact("ask EMP-004211 at 192.0.2.1", &mut ph).text,
            "ask [EMPLOYEE_ID_1] at [IPV4_1]"
        );
        let err = Redactor::new().with_custom("x", "(").unwrap_err();
        assert!(err.to_string().starts_with("custom.x:"), "{err}");
    }
}
