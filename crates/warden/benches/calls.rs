//! Call overhead: Warden against raw wasmtime (same engine settings, same
//! component, hand-wired) and against the same work done natively in Rust.
//!
//! `cargo bench -p warden --bench calls` — builds the text-transform plugin
//! first if needed. Figures are reported as ratios in the README.
//!
//! The `limits-cost` group measures what each enforcement mechanism costs a
//! warm call in raw wasmtime (no limits, + epoch deadline, + memory limiter,
//! + fuel metering) and in Warden with fuel metering off and on.

use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod support;
/// The plugin's own logic, compiled natively: the baseline for the work itself.
#[path = "../../../plugins/text-transform/src/transform.rs"]
#[allow(dead_code)]
mod transform;

mod raw {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "warden:plugin/processor",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The same world with synchronous host functions: no fiber, no executor.
mod raw_sync {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "warden:plugin/processor",
    });
}

use raw::warden::plugin::types::ProcessRequest;

struct RawState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The raw baselines' host functions, for the async bindings or the sync
/// ones: they do nothing, and offer no store (text-transform uses none).
macro_rules! raw_host {
    ($bindings:ident $(, $async:ident)?) => {
        impl $bindings::warden::plugin::types::Host for RawState {}
        impl $bindings::warden::plugin::logging::Host for RawState {
            $($async)? fn log(&mut self, _: $bindings::warden::plugin::types::LogLevel, _: String) {}
        }
        impl $bindings::warden::plugin::config::Host for RawState {
            $($async)? fn get_config(&mut self, _: String) -> Option<String> {
                None
            }
        }
        impl $bindings::warden::plugin::events::Host for RawState {
            $($async)? fn emit_event(&mut self, _: String, _: Vec<u8>) {}
        }
        const _: () = {
            use $bindings::warden::plugin::store::{Host, KeyPage, StoreError};

            fn absent<T>() -> Result<T, StoreError> {
                Err(StoreError::Internal("no store in the raw baseline".into()))
            }

            impl Host for RawState {
                $($async)? fn get(&mut self, _: String, _: String) -> Result<Option<Vec<u8>>, StoreError> {
                    absent()
                }
                $($async)? fn set(&mut self, _: String, _: String, _: Vec<u8>) -> Result<(), StoreError> {
                    absent()
                }
                $($async)? fn delete(&mut self, _: String, _: String) -> Result<bool, StoreError> {
                    absent()
                }
                $($async)? fn exists(&mut self, _: String, _: String) -> Result<bool, StoreError> {
                    absent()
                }
                $($async)? fn list_keys(
                    &mut self,
                    _: String,
                    _: String,
                    _: Option<String>,
                    _: u32,
                ) -> Result<KeyPage, StoreError> {
                    absent()
                }
                $($async)? fn increment(&mut self, _: String, _: String, _: i64) -> Result<i64, StoreError> {
                    absent()
                }
                $($async)? fn compare_and_swap(
                    &mut self,
                    _: String,
                    _: String,
                    _: Option<Vec<u8>>,
                    _: Vec<u8>,
                ) -> Result<bool, StoreError> {
                    absent()
                }
            }
        };
    };
}
raw_host!(raw, async);
raw_host!(raw_sync);

/// Which enforcement mechanisms a raw engine and store use.
#[derive(Clone, Copy)]
struct Enforce {
    epoch: bool,
    limiter: bool,
    fuel: bool,
}

/// Warden's default: epoch deadlines and a memory limiter, no fuel.
const AS_WARDEN: Enforce = Enforce {
    epoch: true,
    limiter: true,
    fuel: false,
};

/// The same engine settings Warden uses, with the chosen enforcement.
fn raw_engine(enforce: Enforce) -> Engine {
    let mut config = Config::new();
    config
        .epoch_interruption(enforce.epoch)
        .concurrency_support(false)
        .consume_fuel(enforce.fuel)
        .max_wasm_stack(1 << 20)
        .async_stack_size(2 << 20);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(256)
        .total_core_instances(2048)
        .total_memories(1024)
        .total_tables(2048)
        .total_stacks(256)
        .max_memory_size(1 << 30)
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto)
        .async_stack_keep_resident(64 << 10);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).expect("engine");
    if enforce.epoch {
        let ticker = engine.clone();
        std::thread::spawn(move || {
            loop {
                ticker.increment_epoch();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
    }
    engine
}

fn raw_store(engine: &Engine, enforce: Enforce) -> Store<RawState> {
    let mut store = Store::new(
        engine,
        RawState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(128 << 20).build(),
        },
    );
    if enforce.epoch {
        store.set_epoch_deadline(u64::MAX / 2);
    }
    if enforce.limiter {
        store.limiter(|s| &mut s.limits);
    }
    if enforce.fuel {
        store.set_fuel(u64::MAX).expect("fuel");
    }
    store
}

/// A linked, pre-instantiated text-transform for a raw engine.
fn raw_pre(engine: &Engine, wasm: &[u8]) -> raw::ProcessorPre<RawState> {
    let component = wasmtime::component::Component::new(engine, wasm).expect("compile");
    let mut linker: Linker<RawState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    raw::Processor::add_to_linker::<_, HasSelf<RawState>>(&mut linker, |s| s).expect("link");
    raw::ProcessorPre::new(linker.instantiate_pre(&component).expect("pre")).expect("pre")
}

/// A raw instance, `initialize`d, as Warden would prepare one.
async fn raw_instance(
    pre: &raw::ProcessorPre<RawState>,
    store: &mut Store<RawState>,
) -> raw::Processor {
    let p = pre
        .instantiate_async(&mut *store)
        .await
        .expect("instantiate");
    p.warden_plugin_plugin()
        .call_initialize(&mut *store, &[])
        .await
        .expect("init")
        .expect("ok");
    p
}

fn inputs() -> Vec<(&'static str, String)> {
    let text = |n: usize| "lorem ipsum dolor sit amet ".repeat(n / 27 + 1)[..n].to_string();
    vec![
        ("64B", text(64)),
        ("4KiB", text(4096)),
        ("1MiB", text(1 << 20)),
    ]
}

/// An "upper" request of the given bindings' type.
macro_rules! upper_request {
    ($bindings:ident, $input:expr) => {
        $bindings::warden::plugin::types::ProcessRequest {
            input: $input.as_bytes().to_vec(),
            content_type: "text/plain".into(),
            options: vec![$bindings::warden::plugin::types::KeyValue {
                key: "op".into(),
                value: "upper".into(),
            }],
        }
    };
}

fn request(input: &str) -> ProcessRequest {
    upper_request!(raw, input)
}

/// Raw wasmtime with synchronous host functions, instantiated and
/// `initialize`d: a call runs on the caller's stack.
fn raw_sync_instance(engine: &Engine, wasm: &[u8]) -> (Store<RawState>, raw_sync::Processor) {
    let component = wasmtime::component::Component::new(engine, wasm).expect("compile");
    let mut linker: Linker<RawState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    raw_sync::Processor::add_to_linker::<_, HasSelf<RawState>>(&mut linker, |s| s).expect("link");
    let pre =
        raw_sync::ProcessorPre::new(linker.instantiate_pre(&component).expect("pre")).expect("pre");
    let mut store = raw_store(engine, AS_WARDEN);
    let p = pre.instantiate(&mut store).expect("instantiate");
    p.warden_plugin_plugin()
        .call_initialize(&mut store, &[])
        .expect("init")
        .expect("ok");
    (store, p)
}

/// One warm `process` "upper" through raw wasmtime.
fn raw_upper(
    rt: &tokio::runtime::Runtime,
    store: &mut Store<RawState>,
    instance: &raw::Processor,
    input: &str,
) -> raw::warden::plugin::types::ProcessResponse {
    let req = request(input);
    rt.block_on(
        instance
            .warden_plugin_processing()
            .call_process(store, &req),
    )
    .expect("call")
    .expect("ok")
}

/// One warm `process` "upper" through Warden's blocking API.
fn warden_upper(plugin: &warden::Plugin, input: &str) -> warden::ProcessResponse {
    plugin
        .process_blocking(warden::ProcessRequest::new(input.as_bytes()).option("op", "upper"))
        .expect("call")
}

fn benches(c: &mut Criterion) {
    let dir = support::built_plugin("text-transform");
    let wasm = std::fs::read(dir.join("text-transform.wasm")).expect("component");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // Raw wasmtime, wired by hand.
    let engine = raw_engine(AS_WARDEN);
    let pre = raw_pre(&engine, &wasm);

    // Warden: one plugin reusing instances, one with a fresh instance per call.
    let host = warden::Warden::new().expect("host");
    let warm = host.load_blocking(&dir).expect("load");
    let mut fresh_manifest =
        warden::Manifest::from_file(&dir.join("plugin.toml")).expect("manifest");
    fresh_manifest.name = "text-transform-fresh".into();
    fresh_manifest.limits.instance_reuse = Some(false);
    let fresh = host
        .load_bytes_blocking(fresh_manifest, wasm.clone())
        .expect("load fresh");

    let mut group = c.benchmark_group("fresh-instance");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut store = raw_store(&engine, AS_WARDEN);
                let p = raw_instance(&pre, &mut store).await;
                p.warden_plugin_processing()
                    .call_validate(&mut store, b"x")
                    .await
                    .expect("validate")
            })
        })
    });
    group.bench_function("warden", |b| {
        b.iter(|| fresh.validate_blocking(b"x".to_vec()).expect("validate"))
    });
    group.finish();

    let mut group = c.benchmark_group("warm-process-upper");
    let mut store = raw_store(&engine, AS_WARDEN);
    let instance = rt.block_on(raw_instance(&pre, &mut store));
    let (mut sync_store, sync_instance) = raw_sync_instance(&engine, &wasm);
    for (label, input) in inputs() {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("native", label), &input, |b, input| {
            b.iter(|| transform::run(Some("upper"), input.as_bytes().to_vec()).expect("native"))
        });
        group.bench_with_input(
            BenchmarkId::new("raw-wasmtime", label),
            &input,
            |b, input| b.iter(|| raw_upper(&rt, &mut store, &instance, input)),
        );
        group.bench_with_input(
            BenchmarkId::new("raw-wasmtime-sync", label),
            &input,
            |b, input| {
                b.iter(|| {
                    sync_instance
                        .warden_plugin_processing()
                        .call_process(&mut sync_store, &upper_request!(raw_sync, input))
                        .expect("call")
                        .expect("ok")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("warden-async", label),
            &input,
            |b, input| {
                b.iter(|| {
                    rt.block_on(warm.process(
                        warden::ProcessRequest::new(input.as_bytes()).option("op", "upper"),
                    ))
                    .expect("call")
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("warden", label), &input, |b, input| {
            b.iter(|| warden_upper(&warm, input))
        });
    }
    group.finish();

    // The nearest to a call that does nothing: `get-status` takes no
    // argument, returns an enum and calls no host function.
    let mut group = c.benchmark_group("nop-get-status");
    group.bench_function("raw-wasmtime-sync", |b| {
        b.iter(|| {
            sync_instance
                .warden_plugin_plugin()
                .call_get_status(&mut sync_store)
                .expect("status")
        })
    });
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| {
            rt.block_on(instance.warden_plugin_plugin().call_get_status(&mut store))
                .expect("status")
        })
    });
    group.bench_function("warden", |b| {
        b.iter(|| warm.status_blocking().expect("status"))
    });
    group.finish();
    limits_cost(c, &rt, &wasm, &dir);
}

/// Warm `process` at 64 B and 4 KiB under each enforcement mechanism.
fn limits_cost(c: &mut Criterion, rt: &tokio::runtime::Runtime, wasm: &[u8], dir: &Path) {
    let none = Enforce {
        epoch: false,
        limiter: false,
        fuel: false,
    };
    let variants = [
        ("raw-no-limits", none),
        (
            "raw-epoch",
            Enforce {
                epoch: true,
                ..none
            },
        ),
        ("raw-epoch-limiter", AS_WARDEN),
        (
            "raw-epoch-limiter-fuel",
            Enforce {
                fuel: true,
                ..AS_WARDEN
            },
        ),
    ];
    let mut raws = Vec::new();
    for (name, enforce) in variants {
        let engine = raw_engine(enforce);
        let pre = raw_pre(&engine, wasm);
        let mut store = raw_store(&engine, enforce);
        let instance = rt.block_on(raw_instance(&pre, &mut store));
        raws.push((name, store, instance));
    }
    let plain = warden::Warden::new().expect("host");
    let metered = warden::Warden::builder().fuel(true).build().expect("host");
    let wardens = [
        ("warden", plain.load_blocking(dir).expect("load")),
        ("warden-fuel", metered.load_blocking(dir).expect("load")),
    ];
    let mut group = c.benchmark_group("limits-cost");
    for (label, input) in inputs().into_iter().take(2) {
        for (name, store, instance) in &mut raws {
            group.bench_with_input(BenchmarkId::new(*name, label), &input, |b, input| {
                b.iter(|| raw_upper(rt, store, instance, input))
            });
        }
        for (name, plugin) in &wardens {
            group.bench_with_input(BenchmarkId::new(*name, label), &input, |b, input| {
                b.iter(|| warden_upper(plugin, input))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = calls;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(calls);
