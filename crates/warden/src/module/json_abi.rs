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

use wasmtime::{Memory, Store, TypedFunc};

use super::{CoreModule, ModuleAbi, ModuleState};
use crate::error::{Error, Result};

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

    fn typed<P, R>(
        &self,
        store: &mut Store<ModuleState>,
        instance: &wasmtime::Instance,
        name: &str,
    ) -> Result<TypedFunc<P, R>>
    where
        P: wasmtime::WasmParams,
        R: wasmtime::WasmResults,
    {
        instance
            .get_typed_func::<P, R>(&mut *store, name)
            .map_err(|e| self.abi_error(format!("export `{name}` has the wrong signature: {e}")))
    }

    fn memory(
        &self,
        store: &mut Store<ModuleState>,
        instance: &wasmtime::Instance,
    ) -> Result<Memory> {
        instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| self.abi_error("it exports no `memory`".into()))
    }

    /// Reads the JSON the guest says is at `region`, checking bounds, size
    /// and syntax.
    fn read_json(
        &self,
        store: &Store<ModuleState>,
        memory: &Memory,
        region: Region,
        what: &str,
    ) -> Result<serde_json::Value> {
        let max = self.limits().max_output_bytes;
        if u64::from(region.len) > max {
            return Err(Error::LimitExceeded {
                plugin: self.name().to_string(),
                what: "output",
                size: u64::from(region.len),
                max,
            });
        }
        let data = memory.data(store);
        let range = region.within(data.len()).ok_or_else(|| {
            self.abi_error(format!(
                "{what} points outside its memory: {} bytes at {:#x}, memory is {} bytes",
                region.len,
                region.ptr,
                data.len()
            ))
        })?;
        serde_json::from_slice(&data[range])
            .map_err(|e| self.abi_error(format!("{what} is not valid JSON: {e}")))
    }

    /// Runs `execute` on `input` (JSON text) in a fresh instance and returns
    /// the JSON it produced.
    pub async fn execute_json(&self, input: &[u8]) -> Result<serde_json::Value> {
        self.require_json()?;
        let max = self.limits().max_input_bytes;
        if input.len() as u64 > max {
            return Err(Error::LimitExceeded {
                plugin: self.name().to_string(),
                what: "input",
                size: input.len() as u64,
                max,
            });
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(input)
            .map_err(|e| self.bad_call(format!("the input is not valid JSON: {e}")))?;
        let len = u32::try_from(input.len())
            .map_err(|_| self.bad_call("the input is larger than 4 GiB".into()))?;
        let (mut store, instance) = self.instantiate().await?;
        let memory = self.memory(&mut store, &instance)?;
        let allocate = self.typed::<i32, i32>(&mut store, &instance, "allocate")?;
        let execute = self.typed::<(i32, i32), i64>(&mut store, &instance, "execute")?;
        let ptr = allocate
            .call_async(&mut store, len as i32)
            .await
            .map_err(|e| self.trap(&store, &e))?;
        let buffer = Region {
            ptr: ptr as u32,
            len,
        };
        let range = buffer.within(memory.data_size(&store)).ok_or_else(|| {
            self.abi_error(format!(
                "allocate({len}) returned {:#x}, outside its memory of {} bytes",
                buffer.ptr,
                memory.data_size(&store)
            ))
        })?;
        memory.data_mut(&mut store)[range].copy_from_slice(input);
        let packed = execute
            .call_async(&mut store, (ptr, len as i32))
            .await
            .map_err(|e| self.trap(&store, &e))?;
        self.inner.scope.finish();
        self.read_json(&store, &memory, Region::unpack(packed), "execute's result")
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
        let (mut store, instance) = self.instantiate().await?;
        let memory = self.memory(&mut store, &instance)?;
        let meta = self.typed::<(), i64>(&mut store, &instance, "meta")?;
        let packed = meta
            .call_async(&mut store, ())
            .await
            .map_err(|e| self.trap(&store, &e))?;
        self.inner.scope.finish();
        let value = self.read_json(&store, &memory, Region::unpack(packed), "meta's result")?;
        if !value.is_object() {
            return Err(self.abi_error("meta's result is not a JSON object".into()));
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
