//! The linear-memory JSON ABI of core modules (seed 001):
//!
//! - `allocate(len: i32) -> i32`: a buffer of `len` bytes in the guest's
//!   memory, which the host fills with the input;
//! - `execute(ptr: i32, len: i32) -> i64`: runs on the JSON input there and
//!   returns its JSON output as `ptr << 32 | len`;
//! - `meta() -> i64`: the module's metadata (a JSON object), packed the same
//!   way.
//!
//! The guest's answers are not trusted: every pointer and length is checked
//! against its memory before the host reads or writes, sizes are capped by
//! the module's `max-input-bytes` and `max-output-bytes`, and output must be
//! valid JSON.

use wasmtime::{Memory, TypedFunc};

use super::{Call, CoreModule, ModuleAbi};
use crate::audit::AuditKind;
use crate::error::{Error, Result};
use crate::instance::last_resort;
use crate::scope::CallScope;

/// A region of guest memory the guest claims holds `len` bytes at `ptr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Region {
    pub ptr: u32,
    pub len: u32,
}

impl Region {
    /// Unpacks `ptr << 32 | len`.
    pub(crate) fn unpack(packed: i64) -> Region {
        let packed = packed as u64;
        Region {
            ptr: (packed >> 32) as u32,
            len: packed as u32,
        }
    }

    /// The byte range, if it lies within a memory of `size` bytes.
    pub(crate) fn within(self, size: usize) -> Option<std::ops::Range<usize>> {
        let start = self.ptr as usize;
        let end = start.checked_add(self.len as usize)?;
        (end <= size).then_some(start..end)
    }
}

impl CoreModule {
    fn require_json(&self) -> Result<()> {
        match self.abi() {
            ModuleAbi::Json => Ok(()),
            ModuleAbi::Exports => Err(self.bad_call(
                "this module speaks the numeric-exports ABI; call one of its exports by name"
                    .into(),
            )),
        }
    }

    fn typed<P, R>(&self, call: &mut Call, name: &str) -> Result<TypedFunc<P, R>>
    where
        P: wasmtime::WasmParams,
        R: wasmtime::WasmResults,
    {
        call.instance
            .get_typed_func::<P, R>(&mut call.store, name)
            .map_err(|e| {
                self.violation(
                    &call.scope,
                    format!("export `{name}` has the wrong signature: {e}"),
                )
            })
    }

    fn memory(&self, call: &mut Call) -> Result<Memory> {
        call.instance
            .get_memory(&mut call.store, "memory")
            .ok_or_else(|| self.violation(&call.scope, "it exports no `memory`".into()))
    }

    /// A size over the module's limit, audited.
    fn too_large(&self, scope: &CallScope, what: &'static str, size: u64, max: u64) -> Error {
        let kind = match what {
            "input" => AuditKind::InputLimit,
            _ => AuditKind::OutputLimit,
        };
        scope.audit(
            kind,
            format!("{what} of {size} bytes (limit {max})"),
            "call refused",
        );
        Error::LimitExceeded {
            plugin: self.name().to_string(),
            what,
            size,
            max,
        }
    }

    /// Reads the JSON the guest says is at `region`, checking bounds, size
    /// and syntax.
    fn read_json(
        &self,
        call: &Call,
        memory: &Memory,
        region: Region,
        what: &str,
    ) -> Result<serde_json::Value> {
        let max = self.limits().max_output_bytes;
        if u64::from(region.len) > max {
            return Err(self.too_large(&call.scope, "output", u64::from(region.len), max));
        }
        let data = memory.data(&call.store);
        let range = region.within(data.len()).ok_or_else(|| {
            self.violation(
                &call.scope,
                format!(
                    "{what} points outside its memory: {} bytes at {:#x}, memory is {} bytes",
                    region.len,
                    region.ptr,
                    data.len()
                ),
            )
        })?;
        serde_json::from_slice(&data[range])
            .map_err(|e| self.violation(&call.scope, format!("{what} is not valid JSON: {e}")))
    }

    /// Runs `execute` on `input` (JSON text) in a fresh instance and returns
    /// the JSON it produced.
    pub async fn execute_json(&self, input: &[u8]) -> Result<serde_json::Value> {
        self.require_json()?;
        let scope = self.call_scope();
        let max = self.limits().max_input_bytes;
        if input.len() as u64 > max {
            return Err(self.too_large(&scope, "input", input.len() as u64, max));
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(input) {
            return Err(self.bad_call(format!("the input is not valid JSON: {e}")));
        }
        let len = u32::try_from(input.len())
            .map_err(|_| self.bad_call("the input is larger than 4 GiB".into()))?;
        let mut call = self.start(scope).await?;
        let memory = self.memory(&mut call)?;
        let allocate = self.typed::<i32, i32>(&mut call, "allocate")?;
        let execute = self.typed::<(i32, i32), i64>(&mut call, "execute")?;
        let ran = tokio::time::timeout_at(
            last_resort(call.deadline),
            allocate.call_async(&mut call.store, len as i32),
        )
        .await;
        let ptr = self.settle(&call.store, &call.scope, ran)?;
        let buffer = Region {
            ptr: ptr as u32,
            len,
        };
        let size = memory.data_size(&call.store);
        let range = buffer.within(size).ok_or_else(|| {
            self.violation(
                &call.scope,
                format!(
                    "allocate({len}) returned {:#x}, outside its memory of {size} bytes",
                    buffer.ptr
                ),
            )
        })?;
        memory.data_mut(&mut call.store)[range].copy_from_slice(input);
        let ran = tokio::time::timeout_at(
            last_resort(call.deadline),
            execute.call_async(&mut call.store, (ptr, len as i32)),
        )
        .await;
        let packed = self.settle(&call.store, &call.scope, ran)?;
        self.read_json(&call, &memory, Region::unpack(packed), "execute's result")
    }

    /// Blocking form of [`CoreModule::execute_json`].
    pub fn execute_json_blocking(&self, input: &[u8]) -> Result<serde_json::Value> {
        self.inner
            .core
            .block_on("execute_json_blocking", self.execute_json(input))
    }

    /// The metadata `meta` returns (a JSON object).
    pub async fn meta(&self) -> Result<serde_json::Value> {
        self.require_json()?;
        let mut call = self.start(self.call_scope()).await?;
        let memory = self.memory(&mut call)?;
        let meta = self.typed::<(), i64>(&mut call, "meta")?;
        let ran = tokio::time::timeout_at(
            last_resort(call.deadline),
            meta.call_async(&mut call.store, ()),
        )
        .await;
        let packed = self.settle(&call.store, &call.scope, ran)?;
        let value = self.read_json(&call, &memory, Region::unpack(packed), "meta's result")?;
        if !value.is_object() {
            return Err(self.violation(&call.scope, "meta's result is not a JSON object".into()));
        }
        Ok(value)
    }

    /// Blocking form of [`CoreModule::meta`].
    pub fn meta_blocking(&self) -> Result<serde_json::Value> {
        self.inner.core.block_on("meta_blocking", self.meta())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_unpack_high_pointer_low_length() {
        let r = Region::unpack((0x1234_i64 << 32) | 0x10);
        assert_eq!(
            r,
            Region {
                ptr: 0x1234,
                len: 0x10
            }
        );
        let r = Region::unpack(-1);
        assert_eq!(
            r,
            Region {
                ptr: u32::MAX,
                len: u32::MAX
            }
        );
    }

    #[test]
    fn regions_outside_memory_are_refused() {
        let size = 65536;
        assert_eq!(Region { ptr: 0, len: 10 }.within(size), Some(0..10));
        assert_eq!(
            Region { ptr: 65530, len: 6 }.within(size),
            Some(65530..65536)
        );
        assert_eq!(Region { ptr: 65530, len: 7 }.within(size), None);
        assert_eq!(
            Region {
                ptr: u32::MAX,
                len: u32::MAX
            }
            .within(size),
            None
        );
    }
}
