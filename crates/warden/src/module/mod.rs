//! Core-module plugins: plain WebAssembly modules rather than components,
//! run in the same engine, limits and audit as components.
//!
//! Two ABIs ([`ModuleAbi`]): numeric exports called by name, and the
//! linear-memory JSON ABI (`json_abi`), in which every pointer and length
//! the guest hands back is checked against its memory before the host reads.
//! A WASI preview1 module (`wasi = true`) gets the sandbox components get:
//! the mapped directories and granted environment of its permissions, no
//! sockets. Every call runs in a fresh instance.

mod json_abi;
mod manifest;
mod value;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::{ExternType, FuncType, Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;

pub use manifest::{ModuleAbi, ModuleManifest};
pub use value::CoreValue;

use crate::audit::AuditKind;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::instance::{Budget, Guarded, arm_deadline, last_resort, new_store};
use crate::limits::Limits;
use crate::loader::{Signed, check_signature, grant_permissions};
use crate::manifest::{MANIFEST_FILE, ManifestLimits};
use crate::permissions::{EffectivePermissions, FsMode, Permissions};
use crate::sandbox::sandbox_wasi;
use crate::scope::{CallId, CallScope};
use crate::state::Limiter;
use crate::trap::{timeout_trap, trap_error};
use crate::warden::Warden;

/// The import module of WASI preview1.
const WASI_P1: &str = "wasi_snapshot_preview1";

/// A loaded core-module plugin. Cheap to clone.
#[derive(Clone)]
pub struct CoreModule {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<Core>,
    manifest: ModuleManifest,
    module: wasmtime::Module,
    linker: Linker<ModuleState>,
    limits: Limits,
    permissions: EffectivePermissions,
    /// At most `max-instances` calls at once; the others wait.
    slots: Arc<tokio::sync::Semaphore>,
}

/// The store data of a core-module instance.
pub(crate) struct ModuleState {
    wasi: WasiP1Ctx,
    limiter: Limiter,
    deadline: Instant,
}

impl Guarded for ModuleState {
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
    fn deadline(&self) -> Instant {
        self.deadline
    }
    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
}

/// An export of a core module and its signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportSignature {
    /// The export's name.
    pub name: String,
    /// Its parameter types (`i32`, `i64`, `f32`, `f64`).
    pub params: Vec<String>,
    /// Its result types.
    pub results: Vec<String>,
}

/// Whether `bytes` start like a core WebAssembly module (not a component).
pub fn is_core_module_bytes(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm\x01\0\0\0")
}

/// The ABI a module's exports show: the JSON ABI when it exports `memory`,
/// `allocate` and `execute`, numeric exports otherwise.
pub fn detect_abi(module: &wasmtime::Module) -> ModuleAbi {
    let has = |name: &str| module.exports().any(|e| e.name() == name);
    if has("memory") && has("allocate") && has("execute") {
        ModuleAbi::Json
    } else {
        ModuleAbi::Exports
    }
}

/// The function exports of `module`, with their signatures.
pub fn export_signatures(module: &wasmtime::Module) -> Vec<ExportSignature> {
    module
        .exports()
        .filter_map(|export| match export.ty() {
            ExternType::Func(ty) => Some(signature(export.name(), &ty)),
            _ => None,
        })
        .collect()
}

fn signature(name: &str, ty: &FuncType) -> ExportSignature {
    ExportSignature {
        name: name.to_string(),
        params: ty
            .params()
            .map(|t| value::type_name(&t).to_string())
            .collect(),
        results: ty
            .results()
            .map(|t| value::type_name(&t).to_string())
            .collect(),
    }
}

impl Warden {
    /// Loads a core-module plugin: a directory whose `plugin.toml` has an
    /// `abi` key, or a `.wasm` core module (named after the file, its ABI
    /// detected, WASI linked if it imports it, no permissions).
    pub async fn load_module(&self, path: impl AsRef<Path>) -> Result<CoreModule> {
        let path = path.as_ref();
        let (manifest, module_file, base, signed) = if path.is_dir() {
            let file = path.join(MANIFEST_FILE);
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            let manifest = ModuleManifest::parse(&text, &file)?;
            let module_file = manifest.module_path(path);
            let signed = Signed::Files(text);
            (Some(manifest), module_file, path.to_path_buf(), signed)
        } else {
            let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (None, path.to_path_buf(), base, Signed::Bare)
        };
        let bytes = std::fs::read(&module_file).map_err(|e| Error::io(&module_file, e))?;
        let name = match &manifest {
            Some(m) => m.name.clone(),
            None => {
                let stem = module_file
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                crate::names::validate_name(&stem).map_err(|message| Error::InvalidComponent {
                    source_name: module_file.display().to_string(),
                    reason: format!(
                        "a module without plugin.toml is named after its file: {message}"
                    ),
                })?;
                stem
            }
        };
        let version = manifest
            .as_ref()
            .map_or_else(|| "0.0.0".to_string(), |m| m.version.to_string());
        check_signature(
            &self.core,
            &name,
            &version,
            &base.join(MANIFEST_FILE),
            &bytes,
            &signed,
        )?;
        let module = wasmtime::Module::new(&self.core.engine, &bytes).map_err(|e| {
            Error::InvalidComponent {
                source_name: module_file.display().to_string(),
                reason: format!("not a valid core WebAssembly module: {e:#}"),
            }
        })?;
        let imports_wasi = module.imports().any(|i| i.module() == WASI_P1);
        let manifest = match manifest {
            Some(m) => m,
            None => ModuleManifest {
                name: name.clone(),
                version: semver::Version::new(0, 0, 0),
                description: String::new(),
                abi: detect_abi(&module),
                wasi: imports_wasi,
                module: None,
                limits: ManifestLimits::default(),
                permissions: Permissions::default(),
            },
        };
        let manifest_file = base.join(MANIFEST_FILE);
        self.prepare_module(manifest, module, &manifest_file)
    }

    /// Blocking form of [`Warden::load_module`].
    pub fn load_module_blocking(&self, path: impl AsRef<Path>) -> Result<CoreModule> {
        self.core
            .block_on("load_module_blocking", self.load_module(path))
    }

    fn prepare_module(
        &self,
        manifest: ModuleManifest,
        module: wasmtime::Module,
        manifest_file: &Path,
    ) -> Result<CoreModule> {
        let core = self.core.clone();
        let plugin = manifest.name.clone();
        let bad_manifest = |message: String| Error::Manifest {
            file: manifest_file.to_path_buf(),
            message: format!("module `{plugin}`: {message}"),
        };
        let detected = detect_abi(&module);
        if manifest.abi == ModuleAbi::Json && detected != ModuleAbi::Json {
            return Err(bad_manifest(
                "key `abi`: `json`, but the module does not export `memory`, `allocate` and \
                 `execute`"
                    .into(),
            ));
        }
        let mut linker = Linker::new(&core.engine);
        for import in module.imports() {
            if import.module() != WASI_P1 {
                return Err(Error::UnsatisfiedImport {
                    plugin: plugin.clone(),
                    import: format!("{}::{}", import.module(), import.name()),
                });
            }
            if !manifest.wasi {
                return Err(bad_manifest(format!(
                    "it imports WASI preview1 (`{}`); set `wasi = true` to give it a sandboxed \
                     WASI (mapped directories and environment from its permissions, no sockets)",
                    import.name()
                )));
            }
        }
        if manifest.wasi {
            wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut ModuleState| &mut s.wasi)
                .map_err(|e| Error::host("linking WASI preview1", e))?;
        }
        let limits = core.defaults.resolve(
            &manifest.limits,
            &core.caps,
            &core.host_limits,
            manifest_file,
        )?;
        let version = manifest.version.to_string();
        let permissions = grant_permissions(
            &core,
            &plugin,
            &version,
            &manifest.permissions,
            manifest_file,
        )?;
        // Writes of a preview1 module are not interposed on, so nothing
        // would hold them to a quota.
        if let Some(mount) = permissions.fs.iter().find(|m| m.mode == FsMode::ReadWrite) {
            return Err(Error::Manifest {
                file: manifest_file.to_path_buf(),
                message: format!(
                    "`permissions.fs` maps {} read-write, and a core module may map directories \
                     read-only only (its writes cannot be held to a quota); map it read-only, \
                     or build the plugin as a component",
                    mount.host.display()
                ),
            });
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize));
        Ok(CoreModule {
            inner: Arc::new(Inner {
                core,
                manifest,
                module,
                linker,
                limits,
                permissions,
                slots,
            }),
        })
    }
}

/// One call in progress: a fresh instance in its own store, the call's own
/// log and audit scope, and its slot. Dropping it ends the call.
pub(crate) struct Call {
    store: Store<ModuleState>,
    instance: wasmtime::Instance,
    scope: Arc<CallScope>,
    deadline: Instant,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.scope.finish();
    }
}

impl std::fmt::Debug for CoreModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreModule")
            .field("name", &self.name())
            .field("abi", &self.abi())
            .finish_non_exhaustive()
    }
}

impl CoreModule {
    /// The module's manifest (given, or made up for a bare `.wasm`).
    pub fn manifest(&self) -> &ModuleManifest {
        &self.inner.manifest
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        &self.inner.manifest.name
    }

    /// The ABI the module speaks.
    pub fn abi(&self) -> ModuleAbi {
        self.inner.manifest.abi
    }

    /// The limits its calls run under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Its function exports and their signatures.
    pub fn exports(&self) -> Vec<ExportSignature> {
        export_signatures(&self.inner.module)
    }

    fn bad_call(&self, message: String) -> Error {
        Error::BadCall {
            plugin: self.name().to_string(),
            message,
        }
    }

    fn abi_error(&self, message: String) -> Error {
        Error::ModuleAbi {
            plugin: self.name().to_string(),
            message,
        }
    }

    /// A scope for one call: its own log budget, stderr and call id.
    fn call_scope(&self) -> Arc<CallScope> {
        let inner = &self.inner;
        let scope = CallScope::new(
            self.name(),
            &inner.manifest.version.to_string(),
            inner.core.audit.clone(),
            inner.limits.max_log_bytes,
            0,
        );
        scope.begin(CallId::next(), 0);
        scope
    }

    /// A fresh, sandboxed instance for a call with `scope`, its deadline
    /// armed; a WASI reactor's `_initialize` has run.
    async fn start(&self, scope: Arc<CallScope>) -> Result<Call> {
        let inner = &self.inner;
        let slot = inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::host("waiting for a call slot", e))?;
        let mut wasi = sandbox_wasi(&scope, &inner.permissions, None)?.build_p1();
        wasmtime_wasi::WasiView::ctx(&mut wasi)
            .table
            .set_max_capacity(inner.limits.max_resources as usize);
        let state = ModuleState {
            wasi,
            limiter: Limiter::new(inner.limits.memory_bytes, None),
            deadline: Instant::now(),
        };
        let mut store = new_store(&inner.core.engine, state);
        let deadline = arm_deadline(
            &mut store,
            Budget {
                timeout: inner.limits.timeout,
                fuel: inner
                    .core
                    .host_limits
                    .fuel_metering
                    .then_some(inner.limits.fuel),
            },
        );
        let created = tokio::time::timeout_at(
            last_resort(deadline),
            inner.linker.instantiate_async(&mut store, &inner.module),
        )
        .await;
        let instance = self.settle(&store, &scope, created)?;
        let mut call = Call {
            store,
            instance,
            scope,
            deadline,
            _slot: slot,
        };
        if let Some(init) = call.instance.get_func(&mut call.store, "_initialize") {
            let ran = tokio::time::timeout_at(
                last_resort(call.deadline),
                init.call_async(&mut call.store, &[], &mut []),
            )
            .await;
            self.settle(&call.store, &call.scope, ran)?;
        }
        Ok(call)
    }

    /// The result of guest code that ran in `store`: a trap or an abandoned
    /// call (a guest blocked in a host function past the deadline) becomes
    /// an audited [`Error::Trap`].
    fn settle<R>(
        &self,
        store: &Store<ModuleState>,
        scope: &CallScope,
        outcome: std::result::Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R> {
        let limits = &self.inner.limits;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(trap_error(
                self.name(),
                limits,
                store.data().limiter.memory_denied,
                scope,
                &e,
            )),
            Err(_) => Err(timeout_trap(self.name(), limits, scope)),
        }
    }

    /// An audited [`Error::ModuleAbi`]: the guest broke its ABI.
    fn violation(&self, scope: &CallScope, message: String) -> Error {
        scope.audit(AuditKind::AbiViolation, message.clone(), "call failed");
        self.abi_error(message)
    }

    /// Calls the numeric export `export` with `args`, in a fresh instance.
    pub async fn call(&self, export: &str, args: &[CoreValue]) -> Result<Vec<CoreValue>> {
        let ty = self.export_type(export)?;
        let params: Vec<_> = ty.params().collect();
        let expected = signature(export, &ty);
        if params.len() != args.len() || !args.iter().zip(&params).all(|(a, t)| a.has_type(t)) {
            return Err(self.bad_call(format!(
                "`{export}` takes ({}), not ({})",
                expected.params.join(", "),
                args.iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut call = self.start(self.call_scope()).await?;
        let func = call
            .instance
            .get_func(&mut call.store, export)
            .ok_or_else(|| self.bad_call(format!("no function export `{export}`")))?;
        let vals: Vec<_> = args.iter().map(|a| a.to_val()).collect();
        let mut results = vec![wasmtime::Val::I32(0); ty.results().len()];
        let ran = tokio::time::timeout_at(
            last_resort(call.deadline),
            func.call_async(&mut call.store, &vals, &mut results),
        )
        .await;
        self.settle(&call.store, &call.scope, ran)?;
        results
            .iter()
            .map(|r| {
                CoreValue::from_val(r).ok_or_else(|| {
                    self.violation(
                        &call.scope,
                        format!("`{export}` returned a non-numeric value"),
                    )
                })
            })
            .collect()
    }

    /// Calls `export` with arguments given as text, parsed by its parameter
    /// types (`["3", "4"]` for `add(i32, i32)`).
    pub async fn call_text(&self, export: &str, args: &[String]) -> Result<Vec<CoreValue>> {
        let ty = self.export_type(export)?;
        let expected = signature(export, &ty);
        if args.len() != expected.params.len() {
            return Err(self.bad_call(format!(
                "`{export}` takes {} argument(s) ({}), not {}",
                expected.params.len(),
                expected.params.join(", "),
                args.len()
            )));
        }
        let values = args
            .iter()
            .zip(ty.params())
            .map(|(text, ty)| {
                CoreValue::parse(text, &ty).ok_or_else(|| {
                    self.bad_call(format!(
                        "`{text}` is not a valid {} for `{export}`",
                        value::type_name(&ty)
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.call(export, &values).await
    }

    /// Blocking form of [`CoreModule::call_text`].
    pub fn call_text_blocking(&self, export: &str, args: &[String]) -> Result<Vec<CoreValue>> {
        self.inner
            .core
            .block_on("call_text_blocking", self.call_text(export, args))
    }

    /// Blocking form of [`CoreModule::call`].
    pub fn call_blocking(&self, export: &str, args: &[CoreValue]) -> Result<Vec<CoreValue>> {
        self.inner
            .core
            .block_on("call_blocking", self.call(export, args))
    }

    fn export_type(&self, export: &str) -> Result<FuncType> {
        match self.inner.module.get_export(export) {
            Some(ExternType::Func(ty)) => Ok(ty),
            _ => {
                let names: Vec<String> = self.exports().into_iter().map(|e| e.name).collect();
                Err(self.bad_call(format!(
                    "no function export `{export}` (exports: {})",
                    names.join(", ")
                )))
            }
        }
    }
}
