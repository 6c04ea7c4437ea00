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
/// top-level modules its code names as `crate::name` (outside comments and
/// tests).
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
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let used = graph.entry(module.clone()).or_default();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split([',', '}']).collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        used.insert(name);
                    }
                }
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for used in graph.values_mut() {
        used.retain(|m| modules.contains(m));
    }
    graph
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
        assert!(graph.len() > 2, "{name}: no modules found");
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
