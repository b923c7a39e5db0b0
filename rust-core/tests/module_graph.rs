//! The crate's modules form no import cycle: each layer uses only the ones
//! below it (`net` and `failure` at the bottom, the resolver and the packet
//! path at the top), so a newcomer can read the crate from its leaves up.
//! Read from the sources (`crate::x` paths outside test code), not from the
//! compiler, which allows cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The top-level module a source file belongs to, or `None` for files that
/// are not part of the module graph (the crate root, the CLI, tests, fuzz
/// helpers).
fn module_of(rel: &str) -> Option<String> {
    let skip = [
        "lib.rs",
        "bin/",
        "tests.rs",
        "differential.rs",
        "fuzzing.rs",
    ];
    if skip.iter().any(|s| rel.starts_with(s) || rel.ends_with(s)) {
        return None;
    }
    let first = rel.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// The `crate::name` modules `source` uses, ignoring its `mod tests`.
fn uses(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, fs::read_to_string(&path).expect("read source")));
        }
    }
}

/// A cycle reachable from `node` that no finished node is on, if any.
fn cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut c = path[at..].to_vec();
        c.push(node.to_string());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if graph.contains_key(next) {
            if let Some(c) = cycle(graph, next, path, done) {
                return Some(c);
            }
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_modules_form_no_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &files {
        if let Some(module) = module_of(rel) {
            let mut deps = uses(text);
            deps.remove(&module);
            graph.entry(module).or_default().extend(deps);
        }
    }
    assert!(graph.len() > 20, "modules found: {:?}", graph.keys());
    assert!(
        graph["resolver"].contains("config"),
        "the reader sees imports"
    );
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let found = cycle(&graph, module, &mut Vec::new(), &mut done);
        assert!(
            found.is_none(),
            "import cycle: {}",
            found.unwrap().join(" -> ")
        );
    }
    for leaf in ["net", "failure", "policy", "framing"] {
        let up: Vec<&String> = graph[leaf]
            .iter()
            .filter(|d| graph.contains_key(*d))
            .collect();
        assert!(up.is_empty(), "{leaf} is a leaf but uses {up:?}");
    }
}
