//! Exact money: prices in integer micro-dollars per million tokens, costs in integer pico-dollars.
//! A price of `p` micro-USD per 1M tokens times `n` tokens is exactly `n·p` pico-USD, so no
//! rounding ever happens between a price list and a bill. Money is shown and serialized as a
//! decimal string, never as a binary float.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Usage, UsageSource};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoneyError(pub String);

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MoneyError {}

/// USD per one million tokens, held as integer micro-dollars (six decimal places).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PricePerMillion(i64);

impl PricePerMillion {
    pub const ZERO: Self = Self(0);

    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }
}

impl FromStr for PricePerMillion {
    type Err = MoneyError;

    /// Parses a non-negative decimal such as `0.15`, `3`, `$2.50` with at most six decimals.
    fn from_str(s: &str) -> Result<Self, MoneyError> {
        let t = s.trim();
        let t = t.strip_prefix('$').unwrap_or(t);
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) {
            return Err(MoneyError(format!(
                "'{s}' is not a price: write a non-negative decimal number of USD per 1M tokens, like 0.15"
            )));
        }
        if frac.len() > 6 {
            return Err(MoneyError(format!(
                "'{s}' has more than 6 decimal places (prices are kept to the micro-dollar per 1M tokens)"
            )));
        }
        let int: i64 = if int.is_empty() {
            0
        } else {
            int.parse()
                .map_err(|_| MoneyError(format!("'{s}' is too large to be a price")))?
        };
        let frac_micros: i64 = format!("{frac:0<6}").parse().unwrap_or(0);
        int.checked_mul(1_000_000)
            .and_then(|m| m.checked_add(frac_micros))
            .map(Self)
            .ok_or_else(|| MoneyError(format!("'{s}' is too large to be a price")))
    }
}

impl fmt::Display for PricePerMillion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&decimal(self.0 as i128, 6))
    }
}

impl Serialize for PricePerMillion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PricePerMillion {
    /// Accepts a decimal string (exact) or a JSON number written in its shortest form.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            U(u64),
            F(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::U(u) => u.to_string(),
            Raw::F(f) => f.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An endpoint's price list. A missing cached price means cache reads cost the input price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    #[serde(default)]
    pub input: PricePerMillion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<PricePerMillion>,
    #[serde(default)]
    pub output: PricePerMillion,
}

impl Prices {
    /// `(prompt − cached)·input + cached·cached_input + completion·output`. Cached tokens are a
    /// subset of prompt tokens and reasoning tokens a subset of completion tokens, so neither is
    /// added twice; a cached count larger than the prompt (a server bug) is clamped to it.
    pub fn cost(&self, usage: &Usage) -> Cost {
        let cached = usage.cached_tokens.min(usage.prompt_tokens) as i128;
        let uncached = usage.prompt_tokens as i128 - cached;
        let cached_price = self.cached_input.unwrap_or(self.input).0 as i128;
        let pico = uncached * self.input.0 as i128
            + cached * cached_price
            + usage.completion_tokens as i128 * self.output.0 as i128;
        Cost {
            pico_usd: pico.clamp(0, i64::MAX as i128) as i64,
            source: usage.source,
        }
    }
}

/// The cost of a call in integer pico-dollars, and whether its token counts were reported by the
/// server or estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub pico_usd: i64,
    pub source: UsageSource,
}

impl Cost {
    /// USD as an exact decimal string, e.g. `0.000123`.
    pub fn usd(&self) -> String {
        decimal(self.pico_usd as i128, 12)
    }

    /// Pico-dollars of a non-negative USD amount such as `25`, `0.5` or `$12.75`.
    pub fn parse_usd(s: &str) -> Option<i64> {
        let t = s.trim();
        let t = t.strip_prefix('$').unwrap_or(t);
        parse_decimal(t, 12).filter(|p| *p >= 0)
    }

    /// A USD amount as a form or a flag gives it: nothing or blank is no amount; anything else
    /// must parse (the one rule every shell follows).
    pub fn parse_usd_field(s: Option<&str>) -> Result<Option<i64>, MoneyError> {
        match s.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => Self::parse_usd(t).map(Some).ok_or_else(|| {
                // Say why a well-formed amount is refused: its size, not its form.
                let digits = t.strip_prefix('$').unwrap_or(t);
                let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
                let decimal = !(int.is_empty() && frac.is_empty())
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.bytes().all(|b| b.is_ascii_digit());
                MoneyError(if decimal && frac.len() > 12 {
                    format!("'{t}' has more than 12 decimal places (amounts are kept to the pico-dollar)")
                } else if decimal {
                    format!("'{t}' is too large: at most 9223372.036854775807 USD")
                } else {
                    format!("'{t}' is not a USD amount like 25 or 0.50")
                })
            }),
        }
    }
}

/// Nothing spent, as reported.
impl Default for Cost {
    fn default() -> Self {
        Cost {
            pico_usd: 0,
            source: UsageSource::Reported,
        }
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.source {
            UsageSource::Reported => "",
            UsageSource::Estimated => " (estimated)",
        };
        write!(f, "${}{tag}", self.usd())
    }
}

#[derive(Serialize, Deserialize)]
struct CostWire {
    usd: String,
    source: UsageSource,
}

impl Serialize for Cost {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CostWire {
            usd: self.usd(),
            source: self.source,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = CostWire::deserialize(d)?;
        let pico = parse_decimal(&w.usd, 12)
            .ok_or_else(|| serde::de::Error::custom(format!("'{}' is not a USD amount", w.usd)))?;
        Ok(Cost {
            pico_usd: pico,
            source: w.source,
        })
    }
}

/// `value / 10^scale` as a decimal string with trailing zeros trimmed but at least two decimals.
fn decimal(value: i128, scale: u32) -> String {
    let unit = 10i128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let v = value.abs();
    let frac = format!("{:0width$}", v % unit, width = scale as usize);
    let trimmed = frac.trim_end_matches('0');
    let frac = if trimmed.len() < 2 {
        &frac[..2.min(frac.len())]
    } else {
        trimmed
    };
    format!("{sign}{}.{frac}", v / unit)
}

fn parse_decimal(s: &str, scale: usize) -> Option<i64> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > scale
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = format!("{frac:0<scale$}").parse().ok()?;
    let v = int
        .checked_mul(10i64.checked_pow(scale as u32)?)?
        .checked_add(frac)?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, cached: u64, completion: u64, reasoning: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            cached_tokens: cached,
            completion_tokens: completion,
            reasoning_tokens: reasoning,
            source: UsageSource::Reported,
        }
    }

    fn p(s: &str) -> PricePerMillion {
        s.parse().unwrap()
    }

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(p("0.15").micros(), 150_000);
        assert_eq!(p("$2.5").micros(), 2_500_000);
        assert_eq!(p("3").micros(), 3_000_000);
        assert_eq!(p(".000001").micros(), 1);
        assert_eq!(p("0.15").to_string(), "0.15");
        assert_eq!(p("0.000001").to_string(), "0.000001");
        for bad in ["", "-1", "1e3", "0.1234567", "abc", "1.2.3", "."] {
            assert!(
                bad.parse::<PricePerMillion>().is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn float_prices_would_be_wrong_but_ours_are_exact() {
        // 0.1 + 0.2 per 1M tokens for 10M tokens: a float sum gives 3.0000000000000004.
        let prices = Prices {
            input: p("0.1"),
            cached_input: None,
            output: p("0.2"),
        };
        let c = prices.cost(&usage(10_000_000, 0, 10_000_000, 0));
        assert_eq!(c.usd(), "3.00");
    }

    #[test]
    fn cached_tokens_are_a_subset_priced_at_the_cached_rate() {
        let prices = Prices {
            input: p("3"),
            cached_input: Some(p("0.3")),
            output: p("15"),
        };
        // 1000 prompt of which 400 cached, 200 completion of which 50 reasoning.
        let c = prices.cost(&usage(1000, 400, 200, 50));
        // 600·3 + 400·0.3 + 200·15 = 1800 + 120 + 3000 = 4920 µUSD → 0.00492 USD
        assert_eq!(c.usd(), "0.00492");
        assert_eq!(c.pico_usd, 4_920_000_000);
    }

    #[test]
    fn cache_reads_default_to_the_input_rate_and_zero_prices_charge_nothing() {
        let prices = Prices {
            input: p("1"),
            cached_input: None,
            output: p("2"),
        };
        assert_eq!(prices.cost(&usage(100, 100, 0, 0)).usd(), "0.0001");
        let free = Prices {
            input: p("1"),
            cached_input: Some(p("0")),
            output: p("0"),
        };
        assert_eq!(free.cost(&usage(100, 100, 500, 0)).pico_usd, 0);
        assert_eq!(Prices::default().cost(&usage(5, 0, 5, 0)).usd(), "0.00");
    }

    #[test]
    fn cost_round_trips_through_json_as_a_decimal_string() {
        let c = Cost {
            pico_usd: 123_456_789,
            source: UsageSource::Estimated,
        };
        let j = serde_json::to_value(c).unwrap();
        assert_eq!(j["usd"], "0.000123456789");
        assert_eq!(j["source"], "estimated");
        assert_eq!(serde_json::from_value::<Cost>(j).unwrap(), c);
    }

    #[test]
    fn a_usd_amount_needs_a_digit_and_a_refusal_says_why() {
        // Found by the property tests: these were read as a budget of $0.00.
        for bad in ["$", ".", "$.", "-", "-."] {
            assert_eq!(Cost::parse_usd(bad), None, "{bad}");
            assert!(Cost::parse_usd_field(Some(bad)).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Cost>(r#"{"usd": "", "source": "reported"}"#).is_err());
        // And a well-formed amount that does not fit was called "not a USD amount".
        let e = Cost::parse_usd_field(Some("10000000")).unwrap_err();
        assert_eq!(
            e.0,
            "'10000000' is too large: at most 9223372.036854775807 USD"
        );
        let e = Cost::parse_usd_field(Some("0.0000000000001")).unwrap_err();
        assert!(e.0.contains("more than 12 decimal places"), "{e}");
        assert_eq!(
            Cost::parse_usd_field(Some("9223372.036854775807")),
            Ok(Some(i64::MAX))
        );
    }

    #[test]
    fn price_accepts_json_numbers_and_strings() {
        let ps: Prices = serde_json::from_str(r#"{"input":0.15,"output":"0.6"}"#).unwrap();
        assert_eq!(ps.input.micros(), 150_000);
        assert_eq!(ps.output.micros(), 600_000);
        assert!(serde_json::from_str::<Prices>(r#"{"input":-1}"#).is_err());
    }
}

/// Property tests: 10 000 arbitrary or mutated amounts each, checked against a plain reference
/// reading of the decimal grammar.
#[cfg(test)]
mod props {
    use super::*;
    use crate::mutation::{self, mutate, Edit};
    use proptest::prelude::*;

    /// What a decimal text means, read the long way: optional `$`, optional `-` (only for zero,
    /// and only where `negative` allows it), digits, an optional `.` and at most `scale` digits,
    /// at least one digit in all, and the value in `i64` units of `10^-scale`.
    fn reference(s: &str, scale: usize, negative: bool) -> Option<i64> {
        let t = s.trim();
        let t = t.strip_prefix('$').unwrap_or(t);
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) if negative => (true, rest),
            _ => (false, t),
        };
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
        if int.is_empty() && frac.is_empty()
            || !all_digits(int)
            || !all_digits(frac)
            || frac.len() > scale
        {
            return None;
        }
        let mut v: u128 = 0;
        for c in int.chars().chain(frac.chars()) {
            v = v.checked_mul(10)?.checked_add(c as u128 - '0' as u128)?;
        }
        v = v.checked_mul(10u128.pow((scale - frac.len()) as u32))?;
        let v = i64::try_from(v).ok()?;
        (!neg || v == 0).then_some(v)
    }

    /// Amounts as people type them, and some that are nearly amounts.
    fn typed() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[-$0-9., e+]{0,24}",
            " ?[$]?-?[0-9]{0,21}([.][0-9]{0,14})? ?",
            "[$]?[0-9]{1,8}[.][0-9]{0,13}",
        ]
    }

    /// Mutations of valid inputs ([`crate::mutation`]), with this parser's symbols.
    fn edits() -> impl Strategy<Value = Vec<Edit<char>>> {
        mutation::edits(
            mutation::chars("0123456789.$- e,+\u{a0}\u{663}\u{ff11}x"),
            false,
        )
    }

    /// The USD field's rule: blank is no amount, an amount is its exact value, anything else is
    /// an error that quotes what was typed and says what is wrong.
    fn check_usd_field(s: &str) -> Result<(), TestCaseError> {
        let got = Cost::parse_usd_field(Some(s));
        let t = s.trim();
        if t.is_empty() {
            prop_assert_eq!(got, Ok(None));
            return Ok(());
        }
        prop_assert_eq!(Cost::parse_usd(s), reference(s, 12, true), "{:?}", s);
        match (got, reference(s, 12, true)) {
            (Ok(Some(v)), Some(want)) => prop_assert_eq!(v, want),
            (Err(e), None) => {
                prop_assert!(e.0.contains(&format!("'{t}'")), "{}", e);
                let digits = t.strip_prefix('$').unwrap_or(t);
                if digits.chars().all(|c| c.is_ascii_digit()) && !digits.is_empty() {
                    prop_assert!(e.0.contains("too large"), "{}", e);
                }
            }
            (got, want) => prop_assert!(false, "{s:?}: got {got:?}, want {want:?}"),
        }
        Ok(())
    }

    fn check_price(s: &str) -> Result<(), TestCaseError> {
        match (s.parse::<PricePerMillion>(), reference(s, 6, false)) {
            (Ok(p), Some(want)) => {
                prop_assert_eq!(p.micros(), want);
                prop_assert_eq!(p.to_string().parse::<PricePerMillion>(), Ok(p));
            }
            (Err(e), None) => {
                prop_assert!(e.0.contains(&format!("'{s}'")), "{}", e);
                prop_assert!(e.0.contains("price"), "{}", e);
            }
            (got, want) => prop_assert!(false, "{s:?}: got {got:?}, want {want:?}"),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// Every cost's USD text reads back as the same pico-dollars, however it is dressed.
        #[test]
        fn usd_formatted_then_parsed_is_the_same_amount(pico in 0..=i64::MAX, pad in " {0,2}") {
            let c = Cost { pico_usd: pico, source: UsageSource::Reported };
            let usd = c.usd();
            prop_assert_eq!(Cost::parse_usd(&usd), Some(pico));
            prop_assert_eq!(Cost::parse_usd(&c.to_string()), Some(pico));
            prop_assert_eq!(Cost::parse_usd_field(Some(&format!("{pad}${usd}{pad}"))), Ok(Some(pico)));
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<Cost>(&json).unwrap(), c);
        }

        /// Every price's text reads back as the same micro-dollars, as text and as JSON.
        #[test]
        fn price_formatted_then_parsed_is_the_same_price(micros in 0..=i64::MAX) {
            let p = PricePerMillion::from_micros(micros);
            prop_assert_eq!(p.to_string().parse::<PricePerMillion>(), Ok(p));
            prop_assert_eq!(format!(" ${p} ").parse::<PricePerMillion>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<PricePerMillion>(&json).unwrap(), p);
        }

        /// Anything typed into a USD field is its exact amount or an error that quotes it.
        #[test]
        fn usd_field_reads_amounts_exactly_and_refuses_the_rest(s in typed()) {
            check_usd_field(&s)?;
        }

        /// Amounts with a few characters inserted, deleted, replaced or cut off.
        #[test]
        fn usd_field_mutated_amounts(pico in 0..=i64::MAX, e in edits()) {
            let usd = Cost { pico_usd: pico, source: UsageSource::Reported }.usd();
            check_usd_field(&mutate(&format!("${usd}"), &e))?;
        }

        /// Anything typed as a price is its exact value or an error that quotes it.
        #[test]
        fn price_reads_decimals_exactly_and_refuses_the_rest(s in typed()) {
            check_price(&s)?;
        }

        #[test]
        fn price_mutated_prices(micros in 0..=i64::MAX, e in edits()) {
            check_price(&mutate(&PricePerMillion::from_micros(micros).to_string(), &e))?;
        }
    }
}
