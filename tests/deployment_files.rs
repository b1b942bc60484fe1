//! The deployment files against the program: every environment variable that `Dockerfile`,
//! `compose.yaml` and `.env.example` name is one the program reads, and `.env.example` names
//! every variable the program reads.
//!
//! A misspelt variable in a deployment file is silently ignored at run time (the bot starts
//! with the default instead), so only a test can catch it. The images themselves cannot be built
//! where these tests run (no registry of base images is reachable), so the files are checked as
//! text. "What the program reads" is not a hand-kept list, which is how `.env.example` came to
//! miss the shard variables: it is found by scanning `src/` for the shapes a variable is read
//! through (see [`READ_SHAPES`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How `src/` reads a variable, each followed by the name as a string literal: the config's
/// `get("NAME")` and `lookup("NAME")` (src/config.rs), `std::env::var("NAME")` (main.rs's
/// `RUST_LOG`), and clap's `env = "NAME"` attribute.
const READ_SHAPES: &[&str] = &[
    "get(\"",
    "lookup(\"",
    "env::var(\"",
    "env::var_os(\"",
    "env = \"",
];

/// Read by the program but set by the platform, not by the operator: the fallbacks for the
/// embedding cache's folder when `EMBEDDING_CACHE_DIR` is unset, and the terminal's width the
/// command line wraps its output to. `.env.example` need not list them.
const PLATFORM_VARIABLES: &[&str] = &["HOME", "XDG_CACHE_HOME", "COLUMNS"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The variables `src/` reads, each with where (`file:line`) it is first read.
fn read_by_src() -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    assert!(!files.is_empty(), "no .rs file under src/");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let shown = file.strip_prefix(repo()).unwrap().display().to_string();
        for name in read_in(&text) {
            found.entry(name.0).or_insert(format!("{shown}:{}", name.1));
        }
    }
    found
}

/// The variable names in `text` that follow one of [`READ_SHAPES`], with their line numbers.
/// Lowercase or punctuated literals (`get("retry-after")`, a map's `get("[UNK]")`) are not
/// variables and are skipped.
fn read_in(text: &str) -> Vec<(String, usize)> {
    let mut names = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for shape in READ_SHAPES {
            for (at, _) in line.match_indices(shape) {
                let rest = &line[at + shape.len()..];
                let Some(end) = rest.find('"') else { continue };
                if is_variable_name(&rest[..end]) {
                    names.push((rest[..end].to_string(), index + 1));
                }
            }
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What the program reads: the scan of `src/`.
struct Known {
    src: BTreeMap<String, String>,
}

impl Known {
    fn now() -> Known {
        let known = Known { src: read_by_src() };
        // The scan must see the variables this test was written against, or its shapes have
        // drifted from how src/ reads them and it would accept nothing and flag everything.
        for name in ["DISCORD_TOKEN", "DATABASE_URL", "SHARD_RANGE", "RUST_LOG"] {
            assert!(
                known.src.contains_key(name),
                "the scan of src/ no longer finds {name}: update READ_SHAPES to how src/ reads variables"
            );
        }
        known
    }

    fn reads(&self, name: &str) -> bool {
        self.src.contains_key(name)
    }

    /// Every variable the operator sets: what src/ reads, less the platform's.
    fn configurable(&self) -> BTreeSet<String> {
        self.src
            .keys()
            .map(String::as_str)
            .filter(|name| !PLATFORM_VARIABLES.contains(name))
            .map(str::to_string)
            .collect()
    }
}

/// A variable a deployment file names, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    name: String,
    line: usize,
}

/// `NAME=value` lines of an env file, commented out (`# NAME=value`) or not: a commented line
/// documents the variable, so a misspelling there misleads as much.
fn named_in_env_file(text: &str) -> Vec<Named> {
    let mut named = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        let assignment = line.strip_prefix('#').map(str::trim_start).unwrap_or(line);
        if let Some((name, _)) = assignment.split_once('=') {
            if is_variable_name(name) {
                named.push(Named {
                    name: name.to_string(),
                    line: index + 1,
                });
            }
        }
    }
    named
}

/// The names the `ENV` instructions of a Dockerfile set (`ENV A=1 B=2` or `ENV A 1`).
fn named_in_dockerfile(text: &str) -> Vec<Named> {
    let mut named = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        // An instruction continues over lines ending in a backslash.
        let first = index;
        let mut instruction = String::new();
        while index < lines.len() {
            let line = lines[index].trim_end();
            index += 1;
            match line.strip_suffix('\\') {
                Some(start) => instruction.push_str(start),
                None => {
                    instruction.push_str(line);
                    break;
                }
            }
        }
        let trimmed = instruction.trim_start();
        let Some(rest) = trimmed
            .get(..4)
            .filter(|word| word.eq_ignore_ascii_case("ENV "))
            .map(|_| &trimmed[4..])
        else {
            continue;
        };
        let mut push = |name: &str| {
            assert!(
                is_variable_name(name),
                "Dockerfile:{}: ENV sets {name:?}, which this test cannot read as a variable name",
                first + 1
            );
            named.push(Named {
                name: name.to_string(),
                line: first + 1,
            });
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.first().is_some_and(|w| w.contains('=')) {
            for word in words {
                let (name, _) = word.split_once('=').unwrap_or_else(|| {
                    panic!(
                        "Dockerfile:{}: {word:?} in ENV is not NAME=value (quoted values with spaces are not read by this test)",
                        first + 1
                    )
                });
                push(name);
            }
        } else if let Some(name) = words.first() {
            push(name);
        }
    }
    named
}

/// A line of a YAML mapping or list, as far as compose.yaml needs: no flow mappings, no
/// multi-line scalars, no anchors (the reader refuses a tab).
#[derive(Debug)]
struct YamlNode {
    line: usize,
    /// `key: value` → Some(key); `- item` → None.
    key: Option<String>,
    value: String,
    children: Vec<YamlNode>,
}

fn parse_yaml(text: &str) -> Vec<YamlNode> {
    let mut flat = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        assert!(
            !raw.contains('\t'),
            "compose.yaml:{}: a tab; indent with spaces",
            index + 1
        );
        let content = strip_yaml_comment(raw).trim_end();
        if content.trim().is_empty() {
            continue;
        }
        let indent = content.len() - content.trim_start().len();
        let content = content.trim_start();
        let (key, value) = match content.strip_prefix("- ") {
            Some(item) => (None, item.trim().to_string()),
            None => match content.split_once(':') {
                Some((key, value)) if !key.contains(' ') || key.starts_with('"') => (
                    Some(key.trim_matches('"').to_string()),
                    value.trim().to_string(),
                ),
                _ => panic!("compose.yaml:{}: cannot read {content:?}", index + 1),
            },
        };
        flat.push((
            indent,
            YamlNode {
                line: index + 1,
                key,
                value,
                children: Vec::new(),
            },
        ));
    }
    nest(&mut flat.into_iter().peekable(), 0)
}

/// Builds the tree from lines indented at least `min_indent`.
fn nest(
    lines: &mut std::iter::Peekable<impl Iterator<Item = (usize, YamlNode)>>,
    min_indent: usize,
) -> Vec<YamlNode> {
    let mut nodes: Vec<YamlNode> = Vec::new();
    while let Some((indent, _)) = lines.peek() {
        if *indent < min_indent {
            break;
        }
        let (indent, mut node) = lines.next().unwrap();
        if let Some((next, _)) = lines.peek() {
            if *next > indent {
                let next = *next;
                node.children = nest(lines, next);
            }
        }
        nodes.push(node);
    }
    nodes
}

/// Drops a `#` comment: one at the start of the content or after a space, outside quotes.
fn strip_yaml_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous == ' ' => return &line[..at],
            _ => {}
        }
        previous = c;
    }
    line
}

fn child<'a>(nodes: &'a [YamlNode], key: &str) -> Option<&'a YamlNode> {
    nodes.iter().find(|n| n.key.as_deref() == Some(key))
}

/// The services of compose.yaml that run insight-bot: every one but the database's (its
/// `environment` is the postgres image's own variables).
fn bot_services(compose: &[YamlNode]) -> Vec<&YamlNode> {
    let services = child(compose, "services").expect("compose.yaml has no services:");
    let bots: Vec<&YamlNode> = services
        .children
        .iter()
        .filter(|service| {
            child(&service.children, "image")
                .is_none_or(|image| !image.value.starts_with("postgres:"))
        })
        .collect();
    assert!(!bots.is_empty(), "compose.yaml runs no insight-bot service");
    bots
}

/// The variables compose.yaml hands to the bot: the keys of each bot service's `environment`
/// (a mapping, or a list of `NAME=value`), and every `${NAME}` taken from the shell or `.env`.
fn named_in_compose(text: &str) -> Vec<Named> {
    let compose = parse_yaml(text);
    let mut named = Vec::new();
    for service in bot_services(&compose) {
        let Some(environment) = child(&service.children, "environment") else {
            continue;
        };
        for entry in &environment.children {
            let name = match &entry.key {
                Some(key) => key.clone(),
                None => entry
                    .value
                    .trim_matches('"')
                    .split('=')
                    .next()
                    .unwrap()
                    .to_string(),
            };
            named.push(Named {
                name,
                line: entry.line,
            });
        }
    }
    for (index, line) in text.lines().enumerate() {
        let line = strip_yaml_comment(line);
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            // `$${` is compose's escape for a literal `${`.
            let escaped = rest[..at].ends_with('$');
            let after = &rest[at + 2..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if !escaped {
                named.push(Named {
                    name: after[..end].to_string(),
                    line: index + 1,
                });
            }
            rest = &after[end..];
        }
    }
    named
}

/// The names in `named` the program does not read, as `file:line: NAME` lines.
fn unknown(file: &str, named: &[Named], known: &Known) -> Vec<String> {
    named
        .iter()
        .filter(|n| !known.reads(&n.name))
        .map(|n| format!("{file}:{}: {}", n.line, n.name))
        .collect()
}

#[test]
fn the_deployment_files_name_only_variables_the_program_reads() {
    let known = Known::now();
    let mut problems = Vec::new();
    for (file, named) in [
        ("Dockerfile", named_in_dockerfile(&read("Dockerfile"))),
        ("compose.yaml", named_in_compose(&read("compose.yaml"))),
        (".env.example", named_in_env_file(&read(".env.example"))),
    ] {
        // Each file must yield names, or a reader that broke would pass by finding none.
        assert!(!named.is_empty(), "{file}: no variable found");
        println!(
            "{file}: {}",
            named
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        problems.extend(unknown(file, &named, &known));
    }
    assert!(
        problems.is_empty(),
        "variables the program does not read (a typo is ignored at run time):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_example_env_names_every_variable_the_program_reads() {
    let known = Known::now();
    let listed: BTreeSet<String> = named_in_env_file(&read(".env.example"))
        .into_iter()
        .map(|n| n.name)
        .collect();
    let missing: Vec<String> = known
        .configurable()
        .into_iter()
        .filter(|name| !listed.contains(name))
        .map(|name| format!("{name} (read at {})", known.src[&name]))
        .collect();
    assert!(
        missing.is_empty(),
        ".env.example does not name these variables the program reads:\n{}",
        missing.join("\n")
    );
}

/// The secrets compose.yaml points the bot at are mounted in that service and defined from a
/// file: a `_FILE` variable naming a secret that is not there stops the bot at start-up.
#[test]
fn the_bots_secret_files_are_mounted() {
    let text = read("compose.yaml");
    let compose = parse_yaml(&text);
    let defined: BTreeSet<&str> = child(&compose, "secrets")
        .expect("compose.yaml defines no secrets:")
        .children
        .iter()
        .filter(|s| child(&s.children, "file").is_some())
        .filter_map(|s| s.key.as_deref())
        .collect();
    let mut checked = 0;
    for service in bot_services(&compose) {
        let mounted: BTreeSet<&str> = child(&service.children, "secrets")
            .map(|s| s.children.iter().map(|item| item.value.as_str()).collect())
            .unwrap_or_default();
        let environment = child(&service.children, "environment")
            .map(|e| e.children.as_slice())
            .unwrap_or_default();
        for entry in environment {
            let Some(name) = entry.key.as_deref().filter(|k| k.ends_with("_FILE")) else {
                continue;
            };
            let secret = entry
                .value
                .strip_prefix("/run/secrets/")
                .unwrap_or_else(|| {
                    panic!(
                        "compose.yaml:{}: {name} is {:?}, not a /run/secrets/ path",
                        entry.line, entry.value
                    )
                });
            assert!(
                mounted.contains(secret),
                "compose.yaml:{}: {name} reads the secret {secret:?}, which the service does not mount (its secrets: {mounted:?})",
                entry.line
            );
            assert!(
                defined.contains(secret),
                "compose.yaml:{}: the secret {secret:?} is not defined from a file under the top-level secrets:",
                entry.line
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "compose.yaml passes the bot no secret file");
}

/// The checks above catch a misspelt variable: each file, with one name misspelt, is refused.
#[test]
fn a_misspelt_variable_in_each_file_is_caught() {
    let known = Known::now();
    let compose = read("compose.yaml").replace("DISCORD_TOKEN_FILE:", "DISCORD_TOKN_FILE:");
    assert_eq!(
        unknown("compose.yaml", &named_in_compose(&compose), &known)
            .iter()
            .map(|p| p.rsplit(' ').next().unwrap())
            .collect::<Vec<_>>(),
        ["DISCORD_TOKN_FILE"]
    );
    let compose = read("compose.yaml").replace("${RUST_LOG:-info}", "${RUST_LOGS:-info}");
    assert!(unknown("compose.yaml", &named_in_compose(&compose), &known)
        .iter()
        .any(|p| p.ends_with(" RUST_LOGS")));
    let dockerfile = read("Dockerfile").replace("ENV METRICS_ADDR=", "ENV METRIC_ADDR=");
    assert!(
        unknown("Dockerfile", &named_in_dockerfile(&dockerfile), &known)
            .iter()
            .any(|p| p.ends_with(" METRIC_ADDR"))
    );
    let example = read(".env.example").replace("\nDISCORD_GUILD_ID=", "\nDISCORD_GUILD=");
    assert!(
        unknown(".env.example", &named_in_env_file(&example), &known)
            .iter()
            .any(|p| p.ends_with(" DISCORD_GUILD"))
    );
}

#[test]
fn the_readers_find_what_the_formats_allow() {
    assert_eq!(
        named_in_dockerfile("FROM x\nENV A=1 B=2\nenv C 3\nENV D=4 \\\n    E=5\nRUN echo F=6\n")
            .into_iter()
            .map(|n| (n.name, n.line))
            .collect::<Vec<_>>(),
        [("A", 2), ("B", 2), ("C", 3), ("D", 4), ("E", 4)].map(|(n, l)| (n.to_string(), l))
    );
    let compose = "services:\n  db:\n    image: postgres:15\n    environment:\n      POSTGRES_DB: x\n  \
                   bot:\n    environment:\n      - \"A=1\"\n      - B=${C:-x} # ${NOT_ME}\n      - D=$${E}\n";
    assert_eq!(
        named_in_compose(compose)
            .into_iter()
            .map(|n| n.name)
            .collect::<Vec<_>>(),
        ["A", "B", "D", "C"]
    );
    assert_eq!(
        named_in_env_file("# prose, not a variable\nA=\n# B=x\nlower=1\n  # C=\n")
            .into_iter()
            .map(|n| n.name)
            .collect::<Vec<_>>(),
        ["A", "B", "C"]
    );
    assert_eq!(
        read_in("let a = get(\"DISCORD_TOKEN\"); lookup(\"HOME\"); x.get(\"retry-after\");\n#[arg(env = \"SOME_VAR\")]")
            .into_iter()
            .collect::<Vec<_>>(),
        [("DISCORD_TOKEN", 1), ("HOME", 1), ("SOME_VAR", 2)].map(|(n, l)| (n.to_string(), l))
    );
}

#[test]
fn the_operations_guide_names_every_variable_the_program_reads() {
    let guide = read("docs/operations.md");
    let missing: Vec<String> = Known::now()
        .configurable()
        .into_iter()
        .filter(|name| !guide.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md does not describe these variables the program reads: {missing:?}"
    );
}
