//! The layers of docs/architecture.md, read from the source: no app imports another app (nor
//! the wiring, `app.rs` and `cli.rs`, that composes them), and the runtime and the shared layer
//! below the apps import none of them. An import is any path that starts `crate::NAME` (or
//! `super::NAME` from an app's top module), grouped `use crate::{..}` lists included; comments
//! are left out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

/// The apps: each a directory under `src/`.
const APPS: [&str; 8] = ["hub", "http", "proxy", "exec", "agent", "client", "broadcast", "tunnel"];
/// The wiring above the apps.
const WIRING: [&str; 2] = ["app", "cli"];
/// What lies below the apps, as directories or files under `src/`: `redis` is a sans-IO
/// client, like `proto`, that the hub drives.
const BELOW: [&str; 6] = ["proto", "json", "server", "redis", "access.rs", "log.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file at or under `path`.
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The first segment of each path a line of code names after `prefix` (`crate::` or
/// `super::`): `crate::hub::Hub` gives `hub`, `use crate::{http, info}` gives `http` and `info`.
fn roots_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let ident = |s: &'a str| {
        let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
        &s[..end]
    };
    let mut roots = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        rest = after;
        let Some(group) = after.strip_prefix('{') else {
            roots.push(ident(after));
            continue;
        };
        // The names at the group's top level: after `{` and after each `,` at depth 0.
        let mut depth = 0;
        let mut start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if c.is_whitespace() => {}
                _ if start => {
                    roots.push(ident(&group[i..]));
                    start = false;
                }
                _ => {}
            }
        }
    }
    roots
}

/// `(file:line, root)` for each name of `forbidden` that a file at or under `src/<module>`
/// imports. A group of `use` split over lines is joined first.
fn imports_of(module: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(&src().join(module)) {
        let text = fs::read_to_string(&file).unwrap();
        let top = file.file_name().is_some_and(|n| n == "mod.rs")
            && file.parent() == Some(&src().join(module));
        let mut statement = String::new();
        let mut first_line = 0;
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if statement.is_empty() {
                first_line = n + 1;
            }
            statement.push_str(code);
            statement.push(' ');
            // A `use` group is read whole, to its closing brace.
            if statement.matches('{').count() > statement.matches('}').count()
                && statement.trim_start().starts_with("use ")
            {
                continue;
            }
            let mut roots = roots_after(&statement, "crate::");
            if top {
                roots.extend(roots_after(&statement, "super::"));
            }
            for root in roots {
                if forbidden.contains(&root) && root != module {
                    let at = file.strip_prefix(src()).unwrap().display();
                    found.push(format!("src/{at}:{first_line} imports {root}"));
                }
            }
            statement.clear();
        }
    }
    found
}

#[test]
fn no_app_imports_another_app_or_the_wiring() {
    let forbidden: Vec<&str> = APPS.iter().chain(&WIRING).copied().collect();
    let found: Vec<String> = APPS.iter().flat_map(|app| imports_of(app, &forbidden)).collect();
    assert!(found.is_empty(), "apps stand side by side (docs/architecture.md):\n{found:#?}");
}

#[test]
fn the_runtime_and_the_shared_layer_import_no_app() {
    let forbidden: Vec<&str> = APPS.iter().chain(&WIRING).copied().collect();
    let found: Vec<String> = BELOW.iter().flat_map(|m| imports_of(m, &forbidden)).collect();
    assert!(
        found.is_empty(),
        "the layers below the apps know none (docs/architecture.md):\n{found:#?}"
    );
}

#[test]
fn the_reader_finds_every_form_of_import() {
    assert_eq!(roots_after("use crate::hub::Hub;", "crate::"), ["hub"]);
    assert_eq!(roots_after("use crate::{http, info};", "crate::"), ["http", "info"]);
    assert_eq!(
        roots_after("use crate::{proto::{Opcode, frame}, proxy::Proxy};", "crate::"),
        ["proto", "proxy"]
    );
    assert_eq!(roots_after("fn f(s: &crate::proxy::RouteStats) {}", "crate::"), ["proxy"]);
    assert_eq!(roots_after("let x = 1;", "crate::"), Vec::<&str>::new());
}
