//! The scoring rules of `risk-rules`, free of any WebAssembly bindings.
//!
//! Kept apart from `lib.rs` so the host's benchmarks can compile this file
//! natively (`#[path = ".../rules.rs"] mod rules;`). Scoring is a pure
//! function of the transaction and a [`Thresholds`] value; where thresholds
//! come from (the host's config import, in the plugin) is the caller's
//! business. Depends on `std` and `serde_json` only.

use std::fmt;

use serde_json::{Map, Value, json};

/// Why a request could not be served; `lib.rs` maps the variants one to one
/// onto the contract's `plugin-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskError {
    InvalidInput(String),
    Internal(String),
}

impl fmt::Display for RiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RiskError::InvalidInput(m) | RiskError::Internal(m) => f.write_str(m),
        }
    }
}

/// Points each rule adds to the score.
pub const HIGH_AMOUNT_POINTS: u32 = 50;
pub const MEDIUM_AMOUNT_POINTS: u32 = 20;
pub const BLOCKED_COUNTRY_POINTS: u32 = 40;
pub const RISKY_CATEGORY_POINTS: u32 = 25;
pub const NIGHT_POINTS: u32 = 10;

/// Tunable limits; see [`Thresholds::from_config`] for the config keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub high_amount: f64,
    pub medium_amount: f64,
    /// Upper-case ISO country codes.
    pub blocked_countries: Vec<String>,
    /// Lower-case merchant categories.
    pub risky_categories: Vec<String>,
    pub night_start_hour: u32,
    /// Exclusive. A window with start > end wraps past midnight.
    pub night_end_hour: u32,
    /// Earlier high-risk transactions after which a customer's score is
    /// raised (0: never).
    pub repeat_offender_after: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            high_amount: 10000.0,
            medium_amount: 1000.0,
            blocked_countries: vec!["KP".into(), "IR".into()],
            risky_categories: vec!["gambling".into(), "crypto".into()],
            night_start_hour: 0,
            night_end_hour: 5,
            repeat_offender_after: 3,
        }
    }
}

impl Thresholds {
    /// Builds thresholds from configuration, using the default for every key
    /// that `get` does not know. Keys: `high-amount`, `medium-amount`,
    /// `blocked-countries`, `risky-categories`, `night-start-hour`,
    /// `night-end-hour`.
    ///
    /// A bad value is an `internal` error: the operator, not the caller, has
    /// to fix it.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Result<Thresholds, RiskError> {
        let mut t = Thresholds::default();
        if let Some(v) = get("high-amount") {
            t.high_amount = config_amount("high-amount", &v)?;
        }
        if let Some(v) = get("medium-amount") {
            t.medium_amount = config_amount("medium-amount", &v)?;
        }
        if let Some(v) = get("blocked-countries") {
            t.blocked_countries = list(&v).map(|s| s.to_ascii_uppercase()).collect();
        }
        if let Some(v) = get("risky-categories") {
            t.risky_categories = list(&v).map(|s| s.to_lowercase()).collect();
        }
        if let Some(v) = get("night-start-hour") {
            t.night_start_hour = config_hour("night-start-hour", &v, 23)?;
        }
        if let Some(v) = get("night-end-hour") {
            // 24 lets a window run to midnight.
            t.night_end_hour = config_hour("night-end-hour", &v, 24)?;
        }
        if let Some(v) = get("repeat-offender-after") {
            t.repeat_offender_after = v.trim().parse().map_err(|e| {
                RiskError::Internal(format!(
                    "config `repeat-offender-after` is not a count: `{v}`: {e}"
                ))
            })?;
        }
        Ok(t)
    }

    /// Whether `hour` is in `[night_start_hour, night_end_hour)`.
    pub fn is_night(&self, hour: u32) -> bool {
        let (start, end) = (self.night_start_hour, self.night_end_hour);
        if start <= end {
            hour >= start && hour < end
        } else {
            hour >= start || hour < end
        }
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn config_amount(key: &str, value: &str) -> Result<f64, RiskError> {
    match value.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        Ok(_) => Err(RiskError::Internal(format!(
            "config `{key}` must be a finite number of at least 0, got `{value}`"
        ))),
        Err(e) => Err(RiskError::Internal(format!(
            "config `{key}` is not a number: `{value}`: {e}"
        ))),
    }
}

fn config_hour(key: &str, value: &str, max: u32) -> Result<u32, RiskError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(RiskError::Internal(format!(
            "config `{key}` must be an hour from 0 to {max}, got `{value}`"
        ))),
        Err(e) => Err(RiskError::Internal(format!(
            "config `{key}` is not a number: `{value}`: {e}"
        ))),
    }
}

/// How risky a transaction looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn from_score(score: u32) -> Level {
        match score {
            70.. => Level::High,
            30.. => Level::Medium,
            _ => Level::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// The verdict on one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The transaction's `id`, echoed as given (`null` when absent).
    pub id: Value,
    /// 0..=100.
    pub score: u32,
    pub level: Level,
    /// One sentence per rule that fired, in rule order.
    pub reasons: Vec<String>,
    /// The transaction's `customer_id`, when it has one.
    pub customer: Option<String>,
}

impl Assessment {
    /// Raises the score (+25, at most 100) of a customer who already had
    /// `prior_high_risk` high-risk transactions, once that reaches the
    /// `repeat-offender-after` threshold.
    pub fn apply_history(&mut self, prior_high_risk: u64, t: &Thresholds) {
        if t.repeat_offender_after == 0 || prior_high_risk < u64::from(t.repeat_offender_after) {
            return;
        }
        self.score = (self.score + 25).min(100);
        self.level = Level::from_score(self.score);
        self.reasons.push(format!(
            "customer had {prior_high_risk} earlier high-risk transactions"
        ));
    }
}

impl Assessment {
    /// `{"id":..,"score":..,"level":..,"reasons":[..]}`, the plugin's output.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "score": self.score,
            "level": self.level.as_str(),
            "reasons": self.reasons,
        })
    }
}

/// Parses a JSON transaction and scores it.
pub fn assess_json(input: &[u8], t: &Thresholds) -> Result<Assessment, RiskError> {
    let value: Value = serde_json::from_slice(input)
        .map_err(|e| RiskError::InvalidInput(format!("invalid JSON: {e}")))?;
    let Value::Object(tx) = value else {
        return Err(RiskError::InvalidInput(
            "a transaction must be a JSON object".to_string(),
        ));
    };
    assess(&tx, t)
}

/// Scores a transaction object.
pub fn assess(tx: &Map<String, Value>, t: &Thresholds) -> Result<Assessment, RiskError> {
    let amount = match tx.get("amount") {
        None | Some(Value::Null) => {
            return Err(RiskError::InvalidInput(
                "field `amount` is required".to_string(),
            ));
        }
        Some(v) => match v.as_f64() {
            Some(n) if n >= 0.0 => n,
            _ => {
                return Err(RiskError::InvalidInput(format!(
                    "field `amount` must be a number of at least 0, got {v}"
                )));
            }
        },
    };
    let country = optional_str(tx, "country")?;
    let category = optional_str(tx, "merchant_category")?;
    let hour = match tx.get("hour") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(h) if h <= 23 => Some(h as u32),
            _ => {
                return Err(RiskError::InvalidInput(format!(
                    "field `hour` must be a whole number from 0 to 23, got {v}"
                )));
            }
        },
    };

    let mut score = 0u32;
    let mut reasons = Vec::new();
    if amount > t.high_amount {
        score += HIGH_AMOUNT_POINTS;
        reasons.push(format!(
            "amount {amount} exceeds high-amount {}",
            t.high_amount
        ));
    } else if amount > t.medium_amount {
        score += MEDIUM_AMOUNT_POINTS;
        reasons.push(format!(
            "amount {amount} exceeds medium-amount {}",
            t.medium_amount
        ));
    }
    if let Some(country) = country {
        let upper = country.trim().to_ascii_uppercase();
        if t.blocked_countries.contains(&upper) {
            score += BLOCKED_COUNTRY_POINTS;
            reasons.push(format!("country {upper} is blocked"));
        }
    }
    if let Some(category) = category {
        let lower = category.trim().to_lowercase();
        if t.risky_categories.contains(&lower) {
            score += RISKY_CATEGORY_POINTS;
            reasons.push(format!("merchant category {lower} is risky"));
        }
    }
    if let Some(hour) = hour
        && t.is_night(hour)
    {
        score += NIGHT_POINTS;
        reasons.push(format!(
            "hour {hour} is within night hours {}-{}",
            t.night_start_hour, t.night_end_hour
        ));
    }
    let score = score.min(100);
    Ok(Assessment {
        id: tx.get("id").cloned().unwrap_or(Value::Null),
        score,
        level: Level::from_score(score),
        reasons,
        customer: optional_str(tx, "customer_id")?.map(str::to_string),
    })
}

fn optional_str<'a>(tx: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, RiskError> {
    match tx.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(RiskError::InvalidInput(format!(
            "field `{field}` must be a string, got {other}"
        ))),
    }
}

/// Whether `input` is a JSON object with a usable `amount`.
pub fn validate(input: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(input) {
        Ok(Value::Object(tx)) => tx
            .get("amount")
            .and_then(Value::as_f64)
            .is_some_and(|a| a >= 0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn repeat_offenders_score_higher() {
        let t = Thresholds {
            repeat_offender_after: 2,
            ..Thresholds::default()
        };
        let mut a = assess_str(r#"{"id":"t","amount":2000,"customer_id":"c7"}"#, &t);
        assert_eq!(a.customer.as_deref(), Some("c7"));
        let before = a.score;
        a.apply_history(1, &t);
        assert_eq!(a.score, before, "below the threshold");
        a.apply_history(2, &t);
        assert_eq!(a.score, before + 25);
        assert!(a.reasons.last().is_some_and(|r| r.contains("2 earlier")));
    }

    fn assess_str(input: &str, t: &Thresholds) -> Assessment {
        match assess_json(input.as_bytes(), t) {
            Ok(a) => a,
            Err(e) => panic!("assess failed on {input}: {e}"),
        }
    }

    #[test]
    fn everything_fires_and_clamps() {
        let a = assess_str(
            r#"{"id":"t1","amount":12000.0,"currency":"USD","country":"KP","customer_id":"c1","merchant_category":"gambling","hour":3}"#,
            &Thresholds::default(),
        );
        assert_eq!(a.score, 100);
        assert_eq!(a.level, Level::High);
        assert_eq!(
            a.reasons,
            vec![
                "amount 12000 exceeds high-amount 10000",
                "country KP is blocked",
                "merchant category gambling is risky",
                "hour 3 is within night hours 0-5",
            ]
        );
        assert_eq!(
            serde_json::to_string(&a.to_json()).unwrap_or_default(),
            r#"{"id":"t1","score":100,"level":"high","reasons":["amount 12000 exceeds high-amount 10000","country KP is blocked","merchant category gambling is risky","hour 3 is within night hours 0-5"]}"#
        );
    }

    #[test]
    fn example_transaction_from_nigeria() {
        let a = assess_str(
            r#"{"id":"t1","amount":12000.0,"currency":"USD","country":"NG","customer_id":"c1","merchant_category":"gambling","hour":3}"#,
            &Thresholds::default(),
        );
        assert_eq!(a.score, 85);
        assert_eq!(a.level, Level::High);
    }

    #[test]
    fn medium_and_low() {
        let a = assess_str(r#"{"amount":1500.5}"#, &Thresholds::default());
        assert_eq!((a.score, a.level), (20, Level::Low));
        assert_eq!(a.reasons, vec!["amount 1500.5 exceeds medium-amount 1000"]);
        assert_eq!(a.id, Value::Null);

        let a = assess_str(
            r#"{"id":7,"amount":1000,"merchant_category":"Crypto"}"#,
            &Thresholds::default(),
        );
        assert_eq!((a.score, a.level), (25, Level::Low));
        assert_eq!(a.id, json!(7));

        let a = assess_str(
            r#"{"amount":5000,"country":"ir","hour":12}"#,
            &Thresholds::default(),
        );
        assert_eq!((a.score, a.level), (60, Level::Medium));
    }

    #[test]
    fn boundaries_are_strict_for_amounts_and_exclusive_for_night_end() {
        let t = Thresholds::default();
        assert_eq!(assess_str(r#"{"amount":10000}"#, &t).score, 20);
        assert_eq!(assess_str(r#"{"amount":10000.01}"#, &t).score, 50);
        assert_eq!(assess_str(r#"{"amount":0,"hour":5}"#, &t).score, 0);
        assert_eq!(assess_str(r#"{"amount":0,"hour":0}"#, &t).score, 10);
    }

    #[test]
    fn night_window_wraps() {
        let t = Thresholds {
            night_start_hour: 22,
            night_end_hour: 4,
            ..Thresholds::default()
        };
        assert!(t.is_night(23) && t.is_night(0) && t.is_night(3));
        assert!(!t.is_night(4) && !t.is_night(21));
    }

    #[test]
    fn bad_transactions() {
        let t = Thresholds::default();
        for input in [
            r#"{}"#,
            r#"{"amount":-1}"#,
            r#"{"amount":"12"}"#,
            r#"{"amount":null}"#,
        ] {
            match assess_json(input.as_bytes(), &t) {
                Err(RiskError::InvalidInput(m)) => assert!(m.contains("amount"), "{m}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(
            matches!(assess_json(br#"{"amount":1,"hour":24}"#, &t), Err(RiskError::InvalidInput(m)) if m.contains("hour"))
        );
        assert!(
            matches!(assess_json(br#"{"amount":1,"country":5}"#, &t), Err(RiskError::InvalidInput(m)) if m.contains("country"))
        );
        assert!(matches!(
            assess_json(b"[1]", &t),
            Err(RiskError::InvalidInput(_))
        ));
        assert!(
            matches!(assess_json(b"{", &t), Err(RiskError::InvalidInput(m)) if m.starts_with("invalid JSON: "))
        );
    }

    #[test]
    fn thresholds_from_config() {
        let cfg: HashMap<&str, &str> = [
            ("high-amount", "500"),
            ("medium-amount", "100.5"),
            ("blocked-countries", "ng, us ,"),
            ("risky-categories", "Travel"),
            ("night-start-hour", "22"),
            ("night-end-hour", "24"),
        ]
        .into_iter()
        .collect();
        let t = match Thresholds::from_config(|k| cfg.get(k).map(|v| v.to_string())) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.high_amount, 500.0);
        assert_eq!(t.medium_amount, 100.5);
        assert_eq!(t.blocked_countries, vec!["NG", "US"]);
        assert_eq!(t.risky_categories, vec!["travel"]);
        let a = assess_str(
            r#"{"amount":600,"country":"NG","merchant_category":"travel","hour":23}"#,
            &t,
        );
        assert_eq!(a.score, 100);
        assert_eq!(a.reasons[0], "amount 600 exceeds high-amount 500");

        assert_eq!(Thresholds::from_config(|_| None), Ok(Thresholds::default()));
    }

    #[test]
    fn bad_config_is_internal() {
        match Thresholds::from_config(|k| (k == "high-amount").then(|| "lots".to_string())) {
            Err(RiskError::Internal(m)) => assert!(
                m.starts_with("config `high-amount` is not a number: "),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Thresholds::from_config(|k| (k == "night-end-hour").then(|| "25".to_string())),
            Err(RiskError::Internal(m)) if m.contains("night-end-hour")
        ));
    }

    #[test]
    fn validate_checks_amount() {
        assert!(validate(br#"{"amount":1}"#));
        assert!(!validate(br#"{"amount":-1}"#));
        assert!(!validate(br#"{"id":"x"}"#));
        assert!(!validate(b"nope"));
    }
}
