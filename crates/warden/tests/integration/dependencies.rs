//! The runtime stays lean: `cargo tree -p warden -e normal` names no HTTP
//! server framework, OpenAPI generator, Prometheus client, bindings
//! generator for other languages, composition tool or file watcher. Those
//! belong to `warden-server`, `warden-build` and the `watch` feature.
//! And no module of a crate depends on itself through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Crates that must not reach an embedder through the runtime.
const FORBIDDEN: [&str; 12] = [
    "axum",
    "axum-core",
    "tower-http",
    "utoipa",
    "utoipa-axum",
    "prometheus-client",
    "wit-bindgen-core",
    "wit-bindgen-c",
    "wit-bindgen-go",
    "wac-graph",
    "wac-types",
    "notify",
];

#[test]
fn the_runtime_pulls_in_no_server_build_or_watcher_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "warden", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"wasmtime"),
        "not the runtime's tree: {tree}"
    );
    let found: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|f| names.contains(f))
        .collect();
    assert!(
        found.is_empty(),
        "the runtime depends on {found:?}; move that code to warden-server, \
         warden-build or behind a feature"
    );
}

/// Each top-level module of the crate whose sources are in `src`, with the
/// top-level modules its code names (outside comments and tests): as
/// `crate::name`, as `super::name` from a top-level file, or through a
/// re-export of the crate root (`crate::Name` where `lib.rs` says
/// `pub use name::Name`).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("source dir") {
            let path = entry.expect("entry").path();
            match path.is_dir() {
                true => dirs.push(path),
                false if path.extension().is_some_and(|e| e == "rs") => files.push(path),
                false => {}
            }
        }
    }
    let mut reexported: BTreeMap<String, String> = BTreeMap::new();
    for root in ["lib.rs", "main.rs"] {
        if let Ok(text) = std::fs::read_to_string(src.join(root)) {
            for (module, names) in uses(&code_of(&text), "pub use ") {
                for name in names {
                    reexported.insert(name, module.clone());
                }
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let depth = relative.components().count();
        let first = relative.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).expect("source"));
        // `super::` is the crate root from `src/x.rs` and `src/x/mod.rs`.
        let top_level = depth == 1 || relative.ends_with("mod.rs") && depth == 2;
        let mut named = uses(&code, "crate::");
        if top_level {
            named.extend(uses(&code, "super::"));
        }
        let used = graph.entry(module.clone()).or_default();
        for (first, _) in named {
            let target = reexported.get(&first).cloned().unwrap_or(first);
            if target != module {
                used.insert(target);
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for used in graph.values_mut() {
        used.retain(|m| modules.contains(m));
    }
    graph
}

/// `text` without comments and without what follows its first test module.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path after `prefix` in `code`, as its first segment with the names
/// it goes on to (`crate::a::{B, C}` gives `a` with `B`, `C`); a group
/// right after the prefix (`crate::{a, b::C}`) gives each of its members.
fn uses(code: &str, prefix: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let items = match rest.strip_prefix('{') {
            Some(group) => split_group(group),
            None => vec![rest.to_string()],
        };
        for item in items {
            let item = item.trim();
            let first: String = item
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if first.is_empty() {
                continue;
            }
            let tail = item[first.len()..].trim_start_matches("::");
            let names = match tail.strip_prefix('{') {
                Some(group) => split_group(group)
                    .iter()
                    .map(|n| {
                        n.trim()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect()
                    })
                    .collect(),
                None => vec![
                    tail.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect(),
                ],
            };
            found.push((first, names));
        }
    }
    found
}

/// The members of the brace group that `text` starts inside of.
fn split_group(text: &str) -> Vec<String> {
    let mut members = vec![String::new()];
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = members.last_mut() {
            last.push(c);
        }
    }
    members
}

/// The modules `from` reaches through its dependencies.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut next = vec![from.to_string()];
    while let Some(module) = next.pop() {
        for used in graph.get(&module).into_iter().flatten() {
            if seen.insert(used.clone()) {
                next.push(used.clone());
            }
        }
    }
    seen
}

/// Each module that depends on itself, with a module on the way.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (module, used) in graph {
        if let Some(back) = used.iter().find(|u| reachable(graph, u).contains(module)) {
            found.push((module.clone(), back.clone()));
        }
    }
    found
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for name in ["warden", "warden-server", "warden-build", "warden-cli"] {
        let graph = module_graph(&crates.join(name).join("src"));
        let edges: usize = graph.values().map(BTreeSet::len).sum();
        assert!(
            graph.len() > 2 && edges > 0,
            "{name}: no modules or no dependencies between them found: {graph:?}"
        );
        let found = cycles(&graph);
        assert!(
            found.is_empty(),
            "{name}: these modules depend on themselves through the second one: {found:?}; \
             move what both need into a module below them"
        );
    }
}

#[test]
fn a_cycle_between_modules_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, used)| (m.to_string(), used.into_iter().map(String::from).collect()))
    .collect();
    let found: Vec<String> = cycles(&graph).into_iter().map(|(m, _)| m).collect();
    assert_eq!(found, ["a", "b", "c"]);
}

#[test]
fn paths_are_read_across_lines_groups_and_re_exports() {
    let code = code_of(
        "use crate::{\n    a::B,\n    c::{D, E},\n};\nfn f() { super::g::h(); } // crate::z\n",
    );
    let firsts: Vec<String> = uses(&code, "crate::").into_iter().map(|(f, _)| f).collect();
    assert_eq!(firsts, ["a", "c"]);
    assert_eq!(uses(&code, "super::")[0].0, "g");
    let reexports = uses("pub use error::{Error, Result};", "pub use ");
    assert_eq!(
        reexports,
        [(
            "error".to_string(),
            vec!["Error".to_string(), "Result".to_string()]
        )]
    );
}
