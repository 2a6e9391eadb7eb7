//! The layout's rule, checked: a module imports only from the folders below its own, in the
//! order of [`LAYERS`] (the command line on top, plumbing at the bottom), and folders of one
//! layer do not import each other.

use std::path::Path;

/// The folders of `src/`, top layer first; folders on one line share a layer.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["service"],
    &["http", "fleet"],
    &["transport"],
    &["telemetry"],
    &["config"],
    &["runtime"],
];

fn layer(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&folder))
}

/// The first path segment of every `crate::…` path in `source` outside comments, including
/// each item of a `use crate::{a::…, b}` group.
fn crate_imports(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    found.push(first_segment(item.trim()));
                }
            } else {
                found.push(first_segment(rest));
            }
        }
    }
    found.retain(|segment| !segment.is_empty());
    found
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn imports_run_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("below src");
        let folder = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(own) = layer(&folder) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for target in crate_imports(code) {
            checked += 1;
            match layer(&target) {
                Some(theirs) if target != folder && theirs <= own => {
                    wrong.push(format!("{} imports crate::{target}", relative.display()))
                }
                _ => {}
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} imports found: the scan is broken"
    );
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_reads_groups_and_inline_paths() {
    let source = "use crate::{fleet::sticky, http};\nlet x = crate::cli::run(); // crate::nope\n";
    assert_eq!(crate_imports(source), ["fleet", "http", "cli"]);
}
