//! The application side of the embedded-API example: a tiny order book and
//! the `myapp:api/orders` interface (see `../wit/orders.wit`) that offers it
//! to plugins as a Warden [`Extension`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use warden::{Extension, ExtensionContext};
use wasmtime::component::HasSelf;

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "myapp:api/host-side" });
}

use bindings::myapp::api::orders;
pub use bindings::myapp::api::orders::Order;

/// The application's orders, with the notes plugins attached to them.
#[derive(Default)]
pub struct OrderBook {
    orders: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    /// In the order they were placed.
    orders: Vec<Order>,
    notes: BTreeMap<String, Vec<String>>,
}

impl OrderBook {
    /// Records a new order.
    pub fn place(&self, id: &str, customer: &str, amount_cents: u64) {
        self.book().orders.push(Order {
            id: id.to_string(),
            customer: customer.to_string(),
            amount_cents,
        });
    }

    /// The notes attached to order `id`, oldest first.
    pub fn notes(&self, id: &str) -> Vec<String> {
        self.book().notes.get(id).cloned().unwrap_or_default()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.orders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One plugin instance's view of the order book: it knows which plugin it
/// serves, so notes are signed with the plugin's name.
pub struct OrdersApi {
    plugin: String,
    book: Arc<OrderBook>,
}

impl orders::Host for OrdersApi {
    fn get_order(&mut self, id: String) -> Option<Order> {
        self.book.book().orders.iter().find(|o| o.id == id).cloned()
    }

    fn orders_of(&mut self, customer: String) -> Vec<Order> {
        let book = self.book.book();
        book.orders
            .iter()
            .filter(|o| o.customer == customer)
            .cloned()
            .collect()
    }

    fn add_note(&mut self, id: String, note: String) -> Result<(), String> {
        let mut book = self.book.book();
        if !book.orders.iter().any(|o| o.id == id) {
            return Err(format!("no order `{id}`"));
        }
        let signed = format!("{}: {note}", self.plugin);
        book.notes.entry(id).or_default().push(signed);
        Ok(())
    }
}

/// The `myapp:api/orders` interface over `book`, for
/// [`warden::WardenBuilder::extension`].
pub fn orders_extension(book: Arc<OrderBook>) -> Extension {
    Extension::new(
        |linker, get| orders::add_to_linker::<_, HasSelf<OrdersApi>>(linker, get),
        move |cx: &ExtensionContext<'_>| OrdersApi {
            plugin: cx.plugin.to_string(),
            book: book.clone(),
        },
    )
}
