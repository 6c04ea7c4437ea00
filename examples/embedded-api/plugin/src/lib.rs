//! `loyalty-discount`: a plugin for the embedded-API example. It calls the
//! host application's own `myapp:api/orders` interface (not part of the
//! Warden contract) to look up an order and the customer's earlier orders,
//! gives 5 % per earlier order (at most 20 %), and notes the discount on the
//! order through the same interface.
//!
//! Input: an order id. Output: JSON with the discount and the new total.

// `generate_all`: the world pulls in the Warden contract from `wit/deps`.
wit_bindgen::generate!({
    path: "../wit",
    world: "myapp:api/order-plugin",
    generate_all,
});

use exports::warden::plugin::processing::Guest as ProcessorGuest;
use myapp::api::orders;
use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};

struct Discount;

warden_guest::plugin_lifecycle!(Discount);

impl ProcessorGuest for Discount {
    fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
        let id = String::from_utf8_lossy(&request.input).trim().to_string();
        let order = orders::get_order(&id)
            .ok_or_else(|| PluginError::InvalidInput(format!("no order `{id}`")))?;
        let earlier = orders::orders_of(&order.customer)
            .iter()
            .take_while(|o| o.id != order.id)
            .count() as u64;
        let percent = (earlier * 5).min(20);
        let total = order.amount_cents * (100 - percent) / 100;
        orders::add_note(&id, &format!("loyalty discount {percent}%"))
            .map_err(PluginError::Internal)?;
        let output = format!(
            r#"{{"order":"{}","customer":"{}","discount_percent":{percent},"total_cents":{total}}}"#,
            order.id, order.customer
        );
        Ok(ProcessResponse {
            output: output.into_bytes(),
            content_type: "application/json".into(),
            items_processed: 1,
        })
    }

    fn validate(input: Vec<u8>) -> bool {
        !input.is_empty()
    }
}

export!(Discount);
