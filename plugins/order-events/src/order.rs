//! The order logic of `order-events`, free of any WebAssembly bindings:
//! parse and check an order, and decide which events it raises. Depends on
//! `std`, `serde` and `serde_json` only.

use serde::{Deserialize, Serialize};

/// Event type raised for every accepted order.
pub const CREATED: &str = "order.created";
/// Event type raised as well for an order at or above the threshold.
pub const LARGE: &str = "order.large";
/// The threshold when config `large-order-threshold` is unset.
pub const DEFAULT_THRESHOLD: f64 = 1000.0;

/// An order as the plugin accepts it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The order's id.
    pub id: String,
    /// Who placed it.
    pub customer: String,
    /// Its total, in the shop's currency.
    pub amount: f64,
}

/// What the plugin answers and emits for one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accepted {
    /// The order's id.
    pub id: String,
    /// The event types emitted, in order.
    pub events: Vec<&'static str>,
}

/// Reads config `large-order-threshold`.
pub fn threshold(value: Option<&str>) -> Result<f64, String> {
    match value {
        None => Ok(DEFAULT_THRESHOLD),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| {
                format!("config `large-order-threshold` must be a number >= 0, got `{v}`")
            }),
    }
}

/// Parses and checks an order, and lists the events it raises with their
/// payload (the order as JSON).
pub fn accept(input: &[u8], threshold: f64) -> Result<(Accepted, Vec<u8>), String> {
    let order: Order = serde_json::from_slice(input).map_err(|e| format!("not an order: {e}"))?;
    if order.id.trim().is_empty() || order.customer.trim().is_empty() {
        return Err("`id` and `customer` must not be empty".into());
    }
    if !order.amount.is_finite() || order.amount <= 0.0 {
        return Err(format!("`amount` must be above 0, got {}", order.amount));
    }
    let mut events = vec![CREATED];
    if order.amount >= threshold {
        events.push(LARGE);
    }
    let payload = serde_json::to_vec(&order).map_err(|e| e.to_string())?;
    Ok((
        Accepted {
            id: order.id,
            events,
        },
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_orders() {
        let (small, payload) =
            accept(br#"{"id":"o-1","customer":"c-1","amount":20}"#, 1000.0).expect("small");
        assert_eq!(small.events, [CREATED]);
        assert!(
            String::from_utf8(payload)
                .expect("utf-8")
                .contains("\"o-1\"")
        );
        let (large, _) =
            accept(br#"{"id":"o-2","customer":"c-1","amount":1000}"#, 1000.0).expect("large");
        assert_eq!(large.events, [CREATED, LARGE]);
    }

    #[test]
    fn bad_orders_and_thresholds() {
        for bad in [
            &br#"{"id":"","customer":"c","amount":1}"#[..],
            br#"{"id":"o","customer":"c","amount":0}"#,
            br#"{"id":"o","customer":"c"}"#,
            br#"{"id":"o","customer":"c","amount":1,"x":1}"#,
            b"nope",
        ] {
            assert!(accept(bad, 10.0).is_err());
        }
        assert_eq!(threshold(None), Ok(DEFAULT_THRESHOLD));
        assert_eq!(threshold(Some(" 50 ")), Ok(50.0));
        assert!(threshold(Some("-1")).is_err() && threshold(Some("x")).is_err());
    }
}
