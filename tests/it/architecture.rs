//! The shape of the code, checked on its source: who may make a scope, and which way imports
//! run (DESIGN, "the shape of the code").

use std::path::{Path, PathBuf};

/// Every Rust file under `src/`, with its path relative to the crate and its text.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a source file");
            let relative = path
                .strip_prefix(root)
                .expect("under the crate")
                .to_string_lossy()
                .replace('\\', "/");
            (relative, text)
        })
        .collect()
}

/// The places in `sources` outside `allowed` prefixes where one of `needles` occurs.
fn occurrences(sources: &[(String, String)], allowed: &[&str], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources {
        if allowed.iter().any(|prefix| path.starts_with(prefix)) {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for needle in needles {
                if code.contains(needle) {
                    found.push(format!("{path}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    found
}

/// Scopes and the "sees everything" reach are made only by the access module (from a
/// principal's rights, or as the service's own work, `ServiceWork`); the store defines them
/// and uses them for its own bookkeeping. Everything else holds one it was given: a handler
/// cannot widen what a caller reads.
#[test]
fn only_the_access_module_makes_scopes() {
    let sources = sources();
    assert!(sources.len() > 50, "the sources were found");
    let found = occurrences(
        &sources,
        &["src/domain/access/", "src/store/"],
        &[
            "Scope::everything(",
            "Scope::customer(",
            "TicketScope::paths(",
            "TicketPaths {",
            "Administrator::operator(",
        ],
    );
    assert!(
        found.is_empty(),
        "scopes made outside domain/access (use the caller's rights or a ServiceWork):\n{}",
        found.join("\n")
    );
    // And the check sees what it looks for: the access module does make them.
    assert!(
        !occurrences(&sources, &[], &["Scope::everything("]).is_empty(),
        "the needle matches the code"
    );
}

/// Imports run one way: server → api / auth → domain → store. The api and the auth layer
/// reach the data only through the domain (whose query types they use); the domain never
/// reaches into the auth layer, the api or the server; the store never into the layers above
/// it. Only the server, which builds everything, names the store beside the domain.
#[test]
fn imports_run_one_way() {
    let sources = sources();
    let layer = |prefix: &str, forbidden: &[&str]| {
        let others: Vec<(String, String)> = sources
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .cloned()
            .collect();
        assert!(!others.is_empty(), "{prefix} has files");
        occurrences(&others, &[], forbidden)
    };
    let mut found = layer("src/api/", &["crate::store", "store::", "crate::server"]);
    found.extend(layer(
        "src/auth/",
        &["crate::store", "store::", "crate::api", "crate::server"],
    ));
    found.extend(layer(
        "src/domain/",
        &["crate::auth", "crate::api", "crate::server", "auth::{"],
    ));
    found.extend(layer(
        "src/store/",
        &[
            "crate::domain",
            "crate::auth",
            "crate::api",
            "crate::server",
        ],
    ));
    assert!(
        found.is_empty(),
        "imports against the grain:\n{}",
        found.join("\n")
    );
}
