//! The module tree reads bottom-up: no file of `src/` imports, directly or
//! through others, a file that imports it back. Checked over the source
//! text: every `crate::`, `super::` and `self::` path and every `use` tree,
//! with re-exports (`pub use`) followed to the file that defines the item.
//! Test modules (`tests.rs`, `#[cfg(test)] mod tests { … }`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

type Module = Vec<String>;

struct Crate {
    /// Module path → file (relative to `src/`).
    files: BTreeMap<Module, String>,
    /// Module path → item name → the path it re-exports.
    reexports: BTreeMap<Module, BTreeMap<String, Module>>,
    /// Module path → the paths its code names.
    paths: BTreeMap<Module, Vec<Module>>,
}

fn main_files(dir: &Path, prefix: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            main_files(&path, prefix, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(prefix).unwrap().to_string_lossy().into_owned());
        }
    }
}

fn module_of(file: &str) -> Option<Module> {
    let stem = file.strip_suffix(".rs")?;
    let mut parts: Module = stem.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match parts.as_slice() {
        [only] if only == "lib" => Some(vec![]),
        [only] if only == "main" => None,
        _ if parts.last().is_some_and(|p| p == "tests") => None,
        _ => Some(parts),
    }
}

/// The text without comments, string and character literals, and without a
/// trailing `#[cfg(test)] mod tests { … }`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut hashes = 0;
                let mut j = i + 1;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let end: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                j += 1;
                while j < b.len() && !b[j..].starts_with(&end) {
                    j += 1;
                }
                i = j + end.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // A character literal ('a', '\n', '\u{..}') or a lifetime.
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    out.push('\'');
                    i += 1;
                }
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

fn tokens(code: &str) -> Vec<Token> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token::Ident(code[start..i].to_string()));
            continue;
        }
        out.push(match c {
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 1;
                Token::Colons
            }
            b'{' => Token::Open,
            b'}' => Token::Close,
            b',' => Token::Comma,
            b';' => Token::Semi,
            b'*' => Token::Star,
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => Token::Other,
        });
        i += 1;
    }
    out
}

/// Expands a `use` tree starting at `t[*i]` into (path, alias) pairs.
fn use_tree(t: &[Token], i: &mut usize, prefix: &Module, out: &mut Vec<(Module, Option<String>)>) {
    let mut path = prefix.clone();
    loop {
        match t.get(*i) {
            Some(Token::Ident(s)) => {
                path.push(s.clone());
                *i += 1;
                if matches!(t.get(*i), Some(Token::Ident(a)) if a == "as") {
                    let alias = match t.get(*i + 1) {
                        Some(Token::Ident(a)) => Some(a.clone()),
                        _ => None,
                    };
                    *i += 2;
                    out.push((path, alias));
                    return;
                }
                if t.get(*i) != Some(&Token::Colons) {
                    out.push((path, None));
                    return;
                }
                *i += 1;
            }
            Some(Token::Star) => {
                *i += 1;
                out.push((path, Some("*".into())));
                return;
            }
            Some(Token::Open) => {
                *i += 1;
                loop {
                    match t.get(*i) {
                        Some(Token::Close) => {
                            *i += 1;
                            return;
                        }
                        Some(Token::Comma) => *i += 1,
                        None => return,
                        _ => use_tree(t, i, &path, out),
                    }
                }
            }
            _ => return,
        }
    }
}

impl Crate {
    fn read() -> Self {
        let mut names = Vec::new();
        main_files(Path::new(SRC), Path::new(SRC), &mut names);
        let files: BTreeMap<Module, String> =
            names.iter().filter_map(|f| module_of(f).map(|m| (m, f.clone()))).collect();
        let mut krate = Crate { files, reexports: BTreeMap::new(), paths: BTreeMap::new() };
        for (module, file) in krate.files.clone() {
            let text = std::fs::read_to_string(Path::new(SRC).join(&file)).unwrap();
            krate.scan(&module, &tokens(&code(&text)));
        }
        krate
    }

    /// The absolute form of a path as written in `module`.
    fn absolute(&self, module: &Module, path: &[String]) -> Option<Module> {
        let (first, rest) = path.split_first()?;
        let mut base = match first.as_str() {
            "crate" => vec![],
            "self" => module.clone(),
            "super" => module[..module.len().checked_sub(1)?].to_vec(),
            child => {
                let mut m = module.clone();
                m.push(child.to_string());
                if !self.files.contains_key(&m) {
                    return None;
                }
                return Some(m.into_iter().chain(rest.iter().cloned()).collect());
            }
        };
        let mut rest = rest;
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn scan(&mut self, module: &Module, t: &[Token]) {
        let mut i = 0;
        let mut found = Vec::new();
        while i < t.len() {
            let public = matches!(t.get(i), Some(Token::Ident(p)) if p == "pub");
            let at_use = |j: usize| matches!(t.get(j), Some(Token::Ident(u)) if u == "use");
            // `pub use`, `pub(crate) use`, `use`.
            let use_at = if at_use(i) {
                Some(i)
            } else if public && at_use(i + 1) {
                Some(i + 1)
            } else if public && t.get(i + 1) == Some(&Token::Other) && at_use(i + 4) {
                Some(i + 4)
            } else {
                None
            };
            if let Some(u) = use_at {
                let mut j = u + 1;
                let mut trees = Vec::new();
                use_tree(t, &mut j, &vec![], &mut trees);
                for (path, alias) in trees {
                    let Some(abs) = self.absolute(module, &path) else { continue };
                    if public && alias.as_deref() != Some("*") {
                        let name = alias.unwrap_or_else(|| path.last().cloned().unwrap_or_default());
                        self.reexports.entry(module.clone()).or_default().insert(name, abs.clone());
                    }
                    found.push(abs);
                }
                i = j;
                continue;
            }
            if let Some(Token::Ident(first)) = t.get(i)
                && matches!(first.as_str(), "crate" | "super" | "self")
                && t.get(i + 1) == Some(&Token::Colons)
                && (i == 0 || t[i - 1] != Token::Colons)
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while t.get(j) == Some(&Token::Colons) {
                    match t.get(j + 1) {
                        Some(Token::Ident(s)) => path.push(s.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                if let Some(abs) = self.absolute(module, &path) {
                    found.push(abs);
                }
                i = j;
                continue;
            }
            i += 1;
        }
        self.paths.insert(module.clone(), found);
    }

    /// The file that defines what `path` names.
    fn defining(&self, path: &[String], depth: usize) -> Option<Module> {
        for n in (0..=path.len()).rev() {
            let module = path[..n].to_vec();
            if !self.files.contains_key(&module) {
                continue;
            }
            if let Some(item) = path.get(n)
                && let Some(target) = self.reexports.get(&module).and_then(|r| r.get(item))
                && depth < 16
                && target.as_slice() != &path[..=n]
            {
                let mut next = target.clone();
                next.extend(path[n + 1..].iter().cloned());
                return self.defining(&next, depth + 1);
            }
            return Some(module);
        }
        None
    }

    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut edges = BTreeMap::new();
        for (module, paths) in &self.paths {
            let targets: BTreeSet<Module> =
                paths.iter().filter_map(|p| self.defining(p, 0)).filter(|t| t != module).collect();
            edges.insert(module.clone(), targets);
        }
        edges
    }
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let Some((w, _)) = s.edges.get_key_value(w) else { continue };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_file_imports_one_that_imports_it_back() {
    let krate = Crate::read();
    assert!(krate.files.len() > 50, "{} files read", krate.files.len());
    let edges = krate.edges();
    let file = |m: &Module| krate.files[m].clone();
    let found = cycles(&edges);
    let mut report = String::new();
    for component in &found {
        let names: BTreeSet<&Module> = component.iter().collect();
        report.push_str(&format!("a circle of {} files:\n", component.len()));
        for m in component {
            let inside: Vec<String> = edges[m].iter().filter(|t| names.contains(t)).map(file).collect();
            report.push_str(&format!("  {} -> {}\n", file(m), inside.join(", ")));
        }
    }
    assert!(found.is_empty(), "{report}");
}

#[test]
fn the_checker_sees_a_circle() {
    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    let c = vec!["c".to_string()];
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone(), c.clone()])),
        (c.clone(), BTreeSet::new()),
    ]);
    assert_eq!(cycles(&edges), [vec![a, b]]);
    let text = "use crate::x::{y::Z, w as V};\nlet s = \"crate::fake::path\"; // crate::comment\nsuper::q::r();";
    let t = tokens(&code(text));
    assert!(!t.contains(&Token::Ident("fake".into())) && !t.contains(&Token::Ident("comment".into())));
}
