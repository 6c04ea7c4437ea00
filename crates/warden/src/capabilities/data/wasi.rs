//! The WASI file-system calls the data service interposes on: which
//! descriptors are inside a quota'd directory, and every call that uses
//! space there (or moves something in), checked before WASI runs it.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{self as fs, Descriptor, HostDescriptor};
use wasmtime_wasi::p2::{DynOutputStream, FsResult};

use super::{Data, ENTRY_BYTES, QuotaStream};
use crate::state::{PluginState, WASI_VERSION};

/// What a shadowed call answers the guest: WASI's value, or its error.
type Reply<T> = wasmtime::Result<(Result<T, fs::ErrorCode>,)>;

/// WASI's `result`, with an error as the guest sees it.
fn reply<T>(view: &mut WasiFilesystemCtxView<'_>, result: FsResult<T>) -> Reply<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(e) => Ok((Err(fs::Host::convert_error_code(view, e)?),)),
    }
}

/// `insufficient-space` unless `fits`.
fn space(fits: bool) -> Result<(), fs::ErrorCode> {
    fits.then_some(()).ok_or(fs::ErrorCode::InsufficientSpace)
}

/// `cross-device` unless `allowed`: a move or link into a quota'd
/// directory from outside it.
fn same_quota(allowed: bool) -> Result<(), fs::ErrorCode> {
    allowed.then_some(()).ok_or(fs::ErrorCode::CrossDevice)
}

/// Shadows descriptor method `$name` (`HostDescriptor::$method`, taking
/// `$args`): `$check`, given the data service as `$data`, may refuse the
/// call with an error code; otherwise WASI runs it as usual.
macro_rules! checked {
    ($types:expr, $get:expr, $name:literal, $method:ident,
     ($($arg:ident: $ty:ty),*), |$data:ident| $check:expr) => {
        $types.func_wrap_async(
            $name,
            move |mut store: StoreContextMut<'_, PluginState>, ($($arg,)*): ($($ty,)*)| {
                Box::new(async move {
                    let state = store.data_mut();
                    let $data: &Data = $get(state);
                    if let Err(code) = $check {
                        return Ok((Err(code),));
                    }
                    let mut view = state.filesystem();
                    let done = HostDescriptor::$method(&mut view, $($arg),*).await;
                    reply(&mut view, done)
                })
            },
        )?
    };
}

pub(super) fn add_to_linker(
    linker: &mut Linker<PluginState>,
    get: fn(&mut PluginState) -> &mut Data,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut preopens = linker.instance(&format!("wasi:filesystem/preopens@{WASI_VERSION}"))?;
    preopens.func_wrap(
        "get-directories",
        move |mut store: StoreContextMut<'_, PluginState>, (): ()| {
            let state = store.data_mut();
            let dirs = preopens::Host::get_directories(&mut state.filesystem())?;
            let data = get(state);
            for (fd, path) in &dirs {
                match data.roots.iter().find(|r| r.guest == *path).cloned() {
                    Some(root) => data.descriptors.insert(fd.rep(), root),
                    None => data.descriptors.remove(&fd.rep()),
                };
            }
            Ok((dirs,))
        },
    )?;
    let mut types = linker.instance(&format!("wasi:filesystem/types@{WASI_VERSION}"))?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        move |mut store: StoreContextMut<'_, PluginState>,
              (fd, offset): (Resource<Descriptor>, u64)| {
            let rep = fd.rep();
            let state = store.data_mut();
            let opened = HostDescriptor::write_via_stream(&mut state.filesystem(), fd, offset);
            wrap_stream(state, get, rep, opened)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        move |mut store: StoreContextMut<'_, PluginState>, (fd,): (Resource<Descriptor>,)| {
            let rep = fd.rep();
            let state = store.data_mut();
            let opened = HostDescriptor::append_via_stream(&mut state.filesystem(), fd);
            wrap_stream(state, get, rep, opened)
        },
    )?;
    type Fd = Resource<Descriptor>;
    checked!(types, get, "[method]descriptor.write", write,
        (fd: Fd, buffer: Vec<u8>, offset: u64),
        |data| space(data.charge(fd.rep(), buffer.len() as u64)));
    // The whole new size: what the file held before is unknown here.
    checked!(types, get, "[method]descriptor.set-size", set_size,
        (fd: Fd, size: u64),
        |data| space(data.charge(fd.rep(), size)));
    checked!(types, get, "[method]descriptor.create-directory-at", create_directory_at,
        (fd: Fd, path: String),
        |data| space(data.may_create(fd.rep())));
    checked!(types, get, "[method]descriptor.symlink-at", symlink_at,
        (fd: Fd, target: String, path: String),
        |data| space(data.may_create(fd.rep())));
    checked!(types, get, "[method]descriptor.link-at", link_at,
        (fd: Fd, flags: fs::PathFlags, old: String, to: Fd, new: String),
        |data| same_quota(data.may_move(fd.rep(), to.rep()))
            .and_then(|()| space(data.may_create(to.rep()))));
    checked!(types, get, "[method]descriptor.rename-at", rename_at,
        (fd: Fd, old: String, to: Fd, new: String),
        |data| same_quota(data.may_move(fd.rep(), to.rep())));
    types.func_wrap_async(
        "[method]descriptor.unlink-file-at",
        move |mut store: StoreContextMut<'_, PluginState>, (fd, path): (Fd, String)| {
            Box::new(async move {
                let state = store.data_mut();
                let quota = get(state).quota_for(fd.rep());
                let mut view = state.filesystem();
                // What the file holds comes back when its last link goes.
                let freed = match &quota {
                    Some(_) => {
                        let here = Resource::new_borrow(fd.rep());
                        let flags = fs::PathFlags::empty();
                        HostDescriptor::stat_at(&mut view, here, flags, path.clone())
                            .await
                            .ok()
                            .filter(|stat| stat.link_count <= 1)
                            .map(|stat| stat.size.max(ENTRY_BYTES))
                    }
                    None => None,
                };
                let done = HostDescriptor::unlink_file_at(&mut view, fd, path).await;
                if let (Ok(()), Some(quota), Some(bytes)) = (&done, &quota, freed) {
                    quota.refund(bytes);
                }
                reply(&mut view, done)
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.remove-directory-at",
        move |mut store: StoreContextMut<'_, PluginState>, (fd, path): (Fd, String)| {
            Box::new(async move {
                let state = store.data_mut();
                let quota = get(state).quota_for(fd.rep());
                let mut view = state.filesystem();
                let done = HostDescriptor::remove_directory_at(&mut view, fd, path).await;
                if let (Ok(()), Some(quota)) = (&done, &quota) {
                    quota.refund(ENTRY_BYTES);
                }
                reply(&mut view, done)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Passes on the stream WASI opened, wrapped in a quota check when the
/// descriptor is inside the data directory.
fn wrap_stream(
    state: &mut PluginState,
    get: fn(&mut PluginState) -> &mut Data,
    fd: u32,
    opened: FsResult<Resource<DynOutputStream>>,
) -> Reply<Resource<DynOutputStream>> {
    let stream = match opened {
        Ok(stream) => stream,
        Err(e) => return reply(&mut state.filesystem(), Err(e)),
    };
    let data = get(state);
    let Some(dir) = data.quota_for(fd) else {
        return Ok((Ok(stream),));
    };
    let scope = data.scope.clone();
    let table = state.table();
    let inner = table.delete(stream)?;
    let wrapped: DynOutputStream = Box::new(QuotaStream { inner, dir, scope });
    Ok((Ok(table.push(wrapped)?),))
}
