//! The source layout a maintainer relies on, checked by reading the sources: the
//! top-level modules of `src/` import each other without a cycle (and
//! docs/architecture.md lists their edges as they are), bb's option names appear only
//! in the grammar tables, one place prints `bb-remote: error:`, no `#[allow]`, and no
//! file refers to a document the repository does not have.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` whose name ends with one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // Installed or generated trees (npm, cargo, hidden caches) are not ours.
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if !(name == "node_modules" || name == "target" || name.starts_with('.')) {
                    todo.push(path);
                }
            } else if exts.iter().any(|e| path.to_string_lossy().ends_with(e)) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of a Rust file that are code, not tests: comments dropped, and nothing
/// from the first `#[cfg(test)]` module on (tests may reach anywhere).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            break;
        }
        let code = line.find("//").map_or(*line, |at| &line[..at]);
        out.push((i + 1, code.to_owned()));
    }
    out
}

/// `src/<top>.rs` or `src/<top>/...`: the top-level module a library file belongs to.
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "bin" | "lib.rs" => None,
        _ => Some(first.trim_end_matches(".rs").to_owned()),
    }
}

/// The top-level modules named right after `crate::` in `code`, including each of a
/// `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => out.push(std::mem::take(&mut item)),
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            out.push(item);
        } else {
            out.push(rest.to_owned());
        }
    }
    out.iter()
        .map(|p| {
            p.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty() && m != "self")
        .collect()
}

type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// module -> (module it uses -> the first `file:line` that does).
fn module_graph() -> Graph {
    let mut graph = Graph::new();
    for path in files(&root().join("src"), &[".rs"]) {
        let Some(from) = top_module(&path) else {
            continue;
        };
        graph.entry(from.clone()).or_default();
        // A `crate::{...}` group may span lines: join the code first.
        let code = code_lines(&path);
        for (n, line) in &code {
            let mut text = line.clone();
            if line.contains("crate::{") && !line.contains('}') {
                let more = code.iter().skip_while(|(m, _)| m <= n);
                for (_, l) in more {
                    text.push_str(l);
                    if l.contains('}') {
                        break;
                    }
                }
            }
            for to in crate_paths(&text) {
                if to != from {
                    let at = format!("{}:{n}", path.strip_prefix(root()).unwrap().display());
                    graph
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert(at);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the path of edges around it, or `None`.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("delegate") && graph.contains_key("config"));
    if let Some(cycle) = find_cycle(&graph) {
        let edges: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
            .collect();
        panic!("import cycle:\n  {}", edges.join("\n  "));
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(f, t)| {
            (
                f.to_owned(),
                BTreeMap::from([(t.to_owned(), String::new())]),
            )
        })
        .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(
        crate_paths("use crate::{config::{Env, X}, route::Plan, self}; crate::diag::x()"),
        ["config", "route", "diag"]
    );
}

/// The dependency list of docs/architecture.md, one line per module, as the sources
/// have it: `- module → dep, dep`.
#[test]
fn architecture_doc_lists_the_module_graph_as_it_is() {
    let graph = module_graph();
    let listed: Vec<String> = graph
        .iter()
        .map(|(module, deps)| {
            let deps: Vec<&str> = deps.keys().map(String::as_str).collect();
            match deps.is_empty() {
                true => format!("- `{module}` → nothing"),
                false => format!("- `{module}` → {}", deps.join(", ")),
            }
        })
        .collect();
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let start = doc
        .find("<!-- module-graph:start -->")
        .expect("start marker");
    let end = doc.find("<!-- module-graph:end -->").expect("end marker");
    let documented: Vec<&str> = doc[start..end]
        .lines()
        .filter(|l| l.starts_with("- `"))
        .collect();
    assert_eq!(
        documented,
        listed,
        "docs/architecture.md's module graph is not the sources':\n{}",
        listed.join("\n")
    );
}

/// bb's option spellings, as the grammar tables write them (`"-o"`, `"--output_path"`).
fn bb_option_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for table in ["src/grammar/legacy_table.rs", "src/grammar/modern_table.rs"] {
        for (_, line) in code_lines(&root().join(table)) {
            for quoted in line.split('"').skip(1).step_by(2) {
                if quoted.starts_with('-') && quoted.len() > 1 && !quoted.contains(' ') {
                    names.insert(quoted.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn bb_option_names_appear_only_in_the_grammar() {
    let names = bb_option_names();
    assert!(names.contains("-o") && names.contains("--output_path") && names.contains("-c"));
    let mut found = Vec::new();
    for path in files(&root().join("src"), &[".rs"]) {
        if path.starts_with(root().join("src/grammar")) {
            continue;
        }
        let lines = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = lines.lines().collect();
        for (n, line) in code_lines(&path) {
            // A shell's own `-c` (`"/bin/sh", "-c"`) is not bb's.
            if lines[n - 1].contains("/bin/sh") {
                continue;
            }
            for quoted in line.split('"').skip(1).step_by(2) {
                let name = quoted.split('=').next().unwrap_or_default();
                if names.contains(name) {
                    let rel = path.strip_prefix(root()).unwrap().display().to_string();
                    found.push(format!("{rel}:{n}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "bb's option names outside src/grammar (use the tables):\n{}",
        found.join("\n")
    );
}

#[test]
fn one_place_prints_the_error_line_and_no_lint_is_allowed() {
    let mut printers = Vec::new();
    let mut allows = Vec::new();
    for dir in ["src", "shim-tests", "tools"] {
        for path in files(&root().join(dir), &[".rs"]) {
            let rel = path.strip_prefix(root()).unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            if dir == "src" {
                for (n, line) in code_lines(&path) {
                    if line.contains(concat!("bb-remote: ", "error:")) {
                        printers.push(format!("{rel}:{n}"));
                    }
                }
            }
            for (n, line) in text.lines().enumerate() {
                if line.contains(concat!("#[", "allow(")) || line.contains(concat!("#![", "allow("))
                {
                    allows.push(format!("{rel}:{}", n + 1));
                }
            }
        }
    }
    assert!(!printers.is_empty(), "the error line is written somewhere");
    assert!(
        printers.iter().all(|p| p.starts_with("src/diag.rs:")),
        "`bb-remote: error:` written outside diag: {printers:?}"
    );
    assert!(
        allows.is_empty(),
        "#[allow] instead of #[expect]: {allows:?}"
    );
}

/// Every `*.md` a source, script or document names exists in the repository (beside
/// the naming file, under `docs/`, or at the root): nothing cites a document a
/// maintainer cannot open.
#[test]
fn every_document_named_is_in_the_repository() {
    let mut named = Vec::new();
    let mut paths = files(&root().join("src"), &[".rs"]);
    for dir in ["shim-tests", "scripts", "docs", "tools", "testbed", ".ci"] {
        if root().join(dir).is_dir() {
            paths.extend(files(&root().join(dir), &[""]).into_iter().filter(|p| {
                let ext = p.extension().and_then(|e| e.to_str());
                matches!(
                    ext,
                    None | Some("rs" | "md" | "py" | "sh" | "mjs" | "c" | "toml")
                )
            }));
        }
    }
    paths.extend(["README.md", "Cargo.toml", "Dockerfile"].map(|f| root().join(f)));
    for path in paths.iter().filter(|p| p.is_file()) {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let rel = path.strip_prefix(root()).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            for word in line.split(|c: char| !(c.is_alphanumeric() || "._-/".contains(c))) {
                let doc = word.trim_start_matches("./");
                if !doc.ends_with(".md") || doc.len() <= 3 || doc.contains("://") {
                    continue;
                }
                let beside = path.parent().unwrap().join(doc);
                let exists = [beside, root().join("docs").join(doc), root().join(doc)]
                    .iter()
                    .any(|p| p.is_file());
                if !exists {
                    named.push(format!("{rel}:{}: {doc}", n + 1));
                }
            }
            for outside in ["../shared", "design §", "spec/"] {
                if line.contains(outside) && !rel.ends_with("layout.rs") {
                    named.push(format!("{rel}:{}: {outside}", n + 1));
                }
            }
        }
    }
    assert!(
        named.is_empty(),
        "documents named that the repository does not have:\n{}",
        named.join("\n")
    );
}
