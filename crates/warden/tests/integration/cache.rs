//! Compile once: the second load of the same bytes skips compilation, from
//! memory within a host and from the disk cache across hosts.

use warden_testkit as common;

use warden::{CacheOutcome, Warden};

#[test]
fn the_second_load_is_a_cache_hit() {
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = common::plugin_dir("text-transform");

    let first = Warden::builder()
        .cache_dir(cache.path())
        .build()
        .expect("host");
    let plugin = first.load_blocking(&dir).expect("load");
    assert_eq!(plugin.info().cache, CacheOutcome::Compiled);
    assert_eq!(first.cache_stats().compiled, 1);
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .collect();
    assert_eq!(files.len(), 1, "one compiled artifact on disk");

    let mut twin = common::manifest("text-transform");
    twin.name = "twin".into();
    let twin = first
        .load_bytes_blocking(twin, common::wasm("text-transform"))
        .expect("same bytes again");
    assert_eq!(twin.info().cache, CacheOutcome::Memory);
    assert_eq!(first.cache_stats().memory_hits, 1);

    let second = Warden::builder()
        .cache_dir(cache.path())
        .build()
        .expect("host");
    let plugin = second.load_blocking(&dir).expect("load from disk cache");
    assert_eq!(plugin.info().cache, CacheOutcome::Disk);
    assert_eq!(
        second.cache_stats().compiled,
        0,
        "no compilation on the second host"
    );
    let out = plugin
        .process_blocking(warden::ProcessRequest::new("cached").option("op", "upper"))
        .expect("call");
    assert_eq!(out.output, b"CACHED");
}

#[test]
fn unloading_the_last_user_frees_the_compiled_code() {
    let cache = tempfile::tempdir().expect("tempdir");
    let host = Warden::builder()
        .cache_dir(cache.path())
        .build()
        .expect("host");
    let dir = common::plugin_dir("risk-rules");
    host.load_blocking(&dir).expect("load");
    host.unload_blocking("risk-rules").expect("unload");
    let again = host.load_blocking(&dir).expect("reload");
    assert_eq!(
        again.info().cache,
        CacheOutcome::Disk,
        "not kept in memory after unload"
    );
}

#[cfg(unix)]
#[test]
fn a_cache_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = Warden::builder()
        .cache_dir(cache.path())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("writable by other users"), "{err}");
}

#[test]
fn a_damaged_cache_entry_is_recompiled() {
    let cache = tempfile::tempdir().expect("tempdir");
    let dir = common::plugin_dir("json-transform");
    Warden::builder()
        .cache_dir(cache.path())
        .build()
        .expect("host")
        .load_blocking(&dir)
        .expect("load");
    for entry in std::fs::read_dir(cache.path()).expect("cache dir") {
        std::fs::write(entry.expect("entry").path(), b"garbage").expect("damage");
    }
    let host = Warden::builder()
        .cache_dir(cache.path())
        .build()
        .expect("host");
    let plugin = host.load_blocking(&dir).expect("load despite damage");
    assert_eq!(plugin.info().cache, CacheOutcome::Compiled);
}

/// The disk cache keeps to its size cap: compiling a second plugin into a
/// cache with room for one removes the entry used longest ago.
#[test]
fn the_disk_cache_keeps_to_its_size_cap() {
    let cache = tempfile::tempdir().expect("cache dir");
    let entries = || -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(cache.path())
            .expect("read cache")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        files.sort();
        files
    };
    let host = |max| {
        Warden::builder()
            .cache_dir(cache.path())
            .cache_max_bytes(max)
            .build()
            .expect("host")
    };
    host(u64::MAX)
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("first plugin");
    let first = entries();
    assert_eq!(first.len(), 1);
    let one = std::fs::metadata(&first[0]).expect("entry").len();
    host(one + 1)
        .load_blocking(common::plugin_dir("json-transform"))
        .expect("second plugin");
    let now = entries();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, first, "the older entry went");
}
