//! contrib/kubernetes, read and run as written: every flag the manifests and the
//! Dockerfile pass to wirekit exists in its `--help`; the Deployment's server starts with
//! exactly its arguments (paths moved into a scratch directory) and the ConfigMap's
//! remap rules, and its probes pass against it; the Service reaches the container's port;
//! termination leaves the server its grace. Needs no root and no cluster.
//!
//! The manifests are read by a small YAML reader below that knows the subset they are
//! written in (block mappings and sequences, plain and quoted scalars, literal blocks,
//! comments) and fails on anything else, so a manifest edited into another style is
//! noticed here rather than misread.
#![cfg(feature = "cli")]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{BIN, Serving};
use common::files::TempDir;
use common::peers::{find_program, require_peers, run, run_for};

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/kubernetes")
}

// ------------------------------------------------------------------- a YAML subset

/// A YAML node of the subset the manifests use.
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Map(Vec<(String, Yaml)>),
    Seq(Vec<Yaml>),
    Str(String),
}

impl Yaml {
    /// The value under `path` (keys, or indexes as numbers), if there is one.
    fn at(&self, path: &[&str]) -> Option<&Yaml> {
        let mut node = self;
        for key in path {
            node = match node {
                Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)?,
                Yaml::Seq(items) => items.get(key.parse::<usize>().ok()?)?,
                Yaml::Str(_) => return None,
            };
        }
        Some(node)
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        match self.at(path)? {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    fn seq_at(&self, path: &[&str]) -> &[Yaml] {
        match self.at(path) {
            Some(Yaml::Seq(items)) => items,
            other => panic!("{path:?} is no sequence: {other:?}"),
        }
    }

    /// The strings of a sequence of scalars.
    fn strings_at(&self, path: &[&str]) -> Vec<String> {
        self.seq_at(path)
            .iter()
            .map(|item| match item {
                Yaml::Str(s) => s.clone(),
                other => panic!("{path:?} holds a non-scalar {other:?}"),
            })
            .collect()
    }

    /// Every sequence of scalars under a key named `key`, anywhere below this node.
    fn lists_named(&self, key: &str, out: &mut Vec<Vec<String>>) {
        match self {
            Yaml::Map(entries) => {
                for (k, v) in entries {
                    if let (true, Yaml::Seq(items)) = (k == key, v) {
                        out.push(
                            items
                                .iter()
                                .map(|i| match i {
                                    Yaml::Str(s) => s.clone(),
                                    other => panic!("{key}: holds {other:?}"),
                                })
                                .collect(),
                        );
                    }
                    v.lists_named(key, out);
                }
            }
            Yaml::Seq(items) => items.iter().for_each(|i| i.lists_named(key, out)),
            Yaml::Str(_) => {}
        }
    }
}

/// The documents of a multi-document YAML file.
fn parse_documents(text: &str, what: &str) -> Vec<Yaml> {
    let mut docs = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if current.iter().any(|l| !content(l).is_empty()) {
                let mut reader = Reader {
                    lines: std::mem::take(&mut current),
                    pos: 0,
                    what: what.to_string(),
                };
                let indent = reader.next_indent().expect("a line");
                let doc = reader.node(indent);
                if let Some(i) = reader.next_indent() {
                    panic!(
                        "{what}: line {:?} (indent {i}) is outside the document's structure",
                        reader.lines[reader.pos]
                    );
                }
                docs.push(doc);
            }
            current.clear();
        } else {
            assert!(!line.contains('\t'), "{what}: a tab in {line:?}");
            current.push(line.to_string());
        }
    }
    docs
}

/// A line without its comment and trailing blanks (a `#` at its start or after a blank,
/// outside quotes, starts a comment).
fn content(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev == ' ' => return line[..i].trim_end(),
            _ => {}
        }
        prev = c;
    }
    line.trim_end()
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

struct Reader {
    lines: Vec<String>,
    pos: usize,
    what: String,
}

impl Reader {
    /// Skips blank and comment lines; the indent of the next line with content.
    fn next_indent(&mut self) -> Option<usize> {
        while self.pos < self.lines.len() && content(&self.lines[self.pos]).is_empty() {
            self.pos += 1;
        }
        (self.pos < self.lines.len()).then(|| indent_of(&self.lines[self.pos]))
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "{}: {why} at {:?} (this reader knows block mappings and sequences, scalars and \
             literal blocks only)",
            self.what,
            self.lines.get(self.pos)
        )
    }

    /// The node whose first line is the next one, at `indent`.
    fn node(&mut self, indent: usize) -> Yaml {
        let line = content(&self.lines[self.pos]).trim_start();
        if line == "-" || line.starts_with("- ") {
            self.sequence(indent)
        } else if split_key(line).is_some() {
            self.mapping(indent)
        } else {
            self.fail("a lone scalar")
        }
    }

    fn sequence(&mut self, indent: usize) -> Yaml {
        let mut items = Vec::new();
        while self.next_indent() == Some(indent) {
            let line = content(&self.lines[self.pos]).trim_start().to_string();
            let Some(rest) = line.strip_prefix('-') else {
                break;
            };
            let rest = rest.trim_start();
            if rest.is_empty() {
                self.pos += 1;
                match self.next_indent() {
                    Some(i) if i > indent => items.push(self.node(i)),
                    _ => items.push(Yaml::Str(String::new())),
                }
            } else if split_key(rest).is_some() {
                // `- key: value` opens a mapping whose keys line up after the dash.
                let inner = indent + (line.len() - rest.len());
                self.lines[self.pos] = format!("{}{rest}", " ".repeat(inner));
                items.push(self.mapping(inner));
            } else {
                items.push(self.scalar(rest));
                self.pos += 1;
            }
        }
        Yaml::Seq(items)
    }

    fn mapping(&mut self, indent: usize) -> Yaml {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        while self.next_indent() == Some(indent) {
            let line = content(&self.lines[self.pos]).trim_start().to_string();
            if line.starts_with("- ") || line == "-" {
                break;
            }
            let Some((key, rest)) = split_key(&line) else {
                self.fail("neither a key nor an item")
            };
            let key = self.scalar(key).into_key(self);
            if entries.iter().any(|(k, _)| *k == key) {
                self.fail("a repeated key");
            }
            self.pos += 1;
            let value = match rest {
                "" => match self.next_indent() {
                    Some(i) if i > indent => self.node(i),
                    Some(i)
                        if i == indent
                            && content(&self.lines[self.pos])
                                .trim_start()
                                .starts_with("- ") =>
                    {
                        self.sequence(i)
                    }
                    _ => Yaml::Str(String::new()),
                },
                "|" | "|-" => self.literal(indent, rest == "|"),
                _ => self.scalar(rest),
            };
            entries.push((key, value));
        }
        Yaml::Map(entries)
    }

    /// A literal block (`|`): the following lines indented deeper than `indent`, as they
    /// are, comments included.
    fn literal(&mut self, indent: usize, keep_last_newline: bool) -> Yaml {
        let mut block: Vec<&str> = Vec::new();
        let mut at = None;
        while self.pos < self.lines.len() {
            let line = &self.lines[self.pos];
            if line.trim().is_empty() {
                block.push("");
            } else if indent_of(line) > indent {
                let at = *at.get_or_insert(indent_of(line));
                if indent_of(line) < at {
                    self.fail("a literal block line left of the block");
                }
                block.push(&line[at..]);
            } else {
                break;
            }
            self.pos += 1;
        }
        while block.last() == Some(&"") {
            block.pop();
        }
        let mut text = block.join("\n");
        if keep_last_newline {
            text.push('\n');
        }
        Yaml::Str(text)
    }

    fn scalar(&self, text: &str) -> Yaml {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            if inner.contains('\\') {
                self.fail("an escape in a double-quoted scalar");
            }
            return Yaml::Str(inner.to_string());
        }
        if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            return Yaml::Str(inner.replace("''", "'"));
        }
        if text.starts_with(['[', '{', '&', '*', '!', '>', '|', '"', '\'']) {
            self.fail("a flow collection, anchor, tag, folded block or broken quote");
        }
        Yaml::Str(text.to_string())
    }
}

impl Yaml {
    fn into_key(self, reader: &Reader) -> String {
        match self {
            Yaml::Str(s) => s,
            _ => reader.fail("a key that is no scalar"),
        }
    }
}

/// `key: rest` or `key:`, split at the first `: ` (or a final `:`) outside quotes.
fn split_key(line: &str) -> Option<(&str, &str)> {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b':' if !single && !double && (i + 1 == bytes.len() || bytes[i + 1] == b' ') => {
                return Some((&line[..i], line[i + 1..].trim()));
            }
            _ => {}
        }
    }
    None
}

#[test]
fn the_yaml_reader_reads_what_it_claims_and_refuses_the_rest() {
    let text = "a: 1\nb:\n  - x\n  - \"y z\"\n  - k: v\n    l: 'it''s'\nc: |\n  one # kept\n  two\nd:\n- e\n";
    let docs = parse_documents(text, "sample");
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d.str_at(&["a"]), Some("1"));
    assert_eq!(d.str_at(&["b", "1"]), Some("y z"));
    assert_eq!(d.str_at(&["b", "2", "l"]), Some("it's"));
    assert_eq!(d.str_at(&["c"]), Some("one # kept\ntwo\n"));
    assert_eq!(d.strings_at(&["d"]), ["e"]);
    for bad in [
        "a: [1, 2]\n",
        "a: {b: 1}\n",
        "a: >\n  folded\n",
        "a: &x 1\n",
    ] {
        let refused = std::panic::catch_unwind(|| parse_documents(bad, "bad"));
        assert!(refused.is_err(), "{bad:?} was read");
    }
}

// ------------------------------------------------------------------- the manifests

/// Every document of every manifest, with its file name.
fn manifests() -> Vec<(String, Yaml)> {
    let mut files: Vec<PathBuf> = fs::read_dir(contrib())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", contrib().display());
    files
        .iter()
        .flat_map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            parse_documents(&fs::read_to_string(p).unwrap(), &name)
                .into_iter()
                .map(move |d| (name.clone(), d))
        })
        .collect()
}

/// The one document of `kind`.
fn document(kind: &str) -> Yaml {
    let found: Vec<Yaml> = manifests()
        .into_iter()
        .filter(|(_, d)| d.str_at(&["kind"]) == Some(kind))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1, "{} documents of kind {kind}", found.len());
    found.into_iter().next().unwrap()
}

/// The Deployment's wirekit container.
fn container() -> Yaml {
    let deployment = document("Deployment");
    let containers = deployment.seq_at(&["spec", "template", "spec", "containers"]);
    containers
        .iter()
        .find(|c| c.str_at(&["name"]) == Some("wirekit"))
        .cloned()
        .expect("a container named wirekit")
}

/// The long and short options `wirekit SUBCOMMAND --help` defines: the words that start
/// an option's line (`-l, --listen <ADDR:PORT>`), not flags its descriptions mention.
fn options_of(subcommand: &str) -> BTreeSet<String> {
    let out = run(Command::new(BIN).args([subcommand, "--help"])).success("--help");
    out.stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| {
            let definition = l.split("  ").next().unwrap_or("");
            definition
                .split([',', ' '])
                .filter(|w| w.starts_with('-'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A wirekit command line as `[SUBCOMMAND, ARGS...]`, from a container's `command` (the
/// program's path first) or `args` (after the image's entrypoint, the program).
fn wirekit_line(list: &[String]) -> Option<Vec<String>> {
    match list.first()? {
        p if p.ends_with("/wirekit") || p == "wirekit" => Some(list[1..].to_vec()),
        s if ["serve", "get", "put"].contains(&s.as_str()) => Some(list.to_vec()),
        _ => None,
    }
}

/// Checks that each `--flag` (and `-f`) of `line` is one `wirekit SUBCOMMAND` has.
fn assert_flags_exist(line: &[String], what: &str) {
    let subcommand = &line[0];
    let known = options_of(subcommand);
    let mut checked = 0;
    for word in &line[1..] {
        if !word.starts_with('-') || word == "-" {
            continue;
        }
        let flag = word.split('=').next().unwrap();
        assert!(
            known.contains(flag),
            "{what}: `wirekit {subcommand}` has no {flag} (it has {known:?})"
        );
        checked += 1;
    }
    eprintln!(
        "{what}: wirekit {}: {checked} flags, all known",
        line.join(" ")
    );
}

#[test]
fn every_flag_the_manifests_pass_exists() {
    let mut lines = 0;
    for (file, doc) in manifests() {
        let mut lists = Vec::new();
        doc.lists_named("command", &mut lists);
        doc.lists_named("args", &mut lists);
        for list in lists {
            let line = wirekit_line(&list)
                .unwrap_or_else(|| panic!("{file}: a command that is not wirekit: {list:?}"));
            assert_flags_exist(&line, &file);
            lines += 1;
        }
    }
    // The server's arguments and its two probes.
    assert!(lines >= 3, "found {lines} wirekit command lines");
}

/// The JSON array of a Dockerfile instruction such as `CMD ["a", "b"]`.
fn dockerfile_array(dockerfile: &str, instruction: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .rfind(|l| l.starts_with(&format!("{instruction} ")))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"));
    let array = line[instruction.len()..].trim();
    let inner = array
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or_else(|| panic!("{instruction} is not in exec form: {line}"));
    inner
        .split(',')
        .map(|item| {
            let item = item.trim();
            assert!(
                item.len() >= 2 && item.starts_with('"') && item.ends_with('"'),
                "{line}"
            );
            item[1..item.len() - 1].to_string()
        })
        .collect()
}

#[test]
fn the_dockerfile_holds_the_program_alone_and_runs_it_with_known_flags() {
    let dockerfile = fs::read_to_string(contrib().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "not a multi-stage build: {stages:?}");
    assert_eq!(*stages.last().unwrap(), "FROM scratch");
    let final_stage = dockerfile.rsplit("FROM scratch").next().unwrap();
    let copies: Vec<&str> = final_stage
        .lines()
        .filter(|l| l.starts_with("COPY") || l.starts_with("ADD") || l.starts_with("RUN"))
        .collect();
    assert_eq!(copies, ["COPY --from=build /wirekit /wirekit"]);
    assert_eq!(dockerfile_array(&dockerfile, "ENTRYPOINT"), ["/wirekit"]);
    let cmd = dockerfile_array(&dockerfile, "CMD");
    assert_flags_exist(&cmd, "Dockerfile CMD");
    assert!(cmd.iter().any(|a| a == "--single-port"), "{cmd:?}");
    // The Deployment's image runs the same entrypoint.
    let args = container().strings_at(&["args"]);
    assert_eq!(
        args[0], cmd[0],
        "the Deployment's args and the image's CMD disagree"
    );
}

/// The port of `ADDRESS:PORT`.
fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {addr}"))
        .1
}

/// The value after `flag` in `args`.
fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .map(|i| args[i + 1].as_str())
}

#[test]
fn the_service_reaches_the_port_the_server_listens_on() {
    let service = document("Service");
    let c = container();
    let args = c.strings_at(&["args"]);
    assert!(args.iter().any(|a| a == "--single-port"), "{args:?}");
    let listen = value_of(&args, "--listen").expect("--listen");
    let ports = c.seq_at(&["ports"]);
    let svc_ports = service.seq_at(&["spec", "ports"]);
    assert_eq!(svc_ports.len(), 1);
    let svc = &svc_ports[0];
    assert_eq!(svc.str_at(&["protocol"]), Some("UDP"));
    assert_eq!(svc.str_at(&["port"]), Some("69"));
    let target = svc.str_at(&["targetPort"]).expect("targetPort");
    let port = ports
        .iter()
        .find(|p| {
            p.str_at(&["name"]) == Some(target) || p.str_at(&["containerPort"]) == Some(target)
        })
        .unwrap_or_else(|| panic!("targetPort {target} is no port of the container"));
    assert_eq!(port.str_at(&["protocol"]), Some("UDP"));
    assert_eq!(port.str_at(&["containerPort"]), Some(port_of(listen)));
    // The Service selects the Deployment's pods.
    let deployment = document("Deployment");
    let labels = deployment
        .at(&["spec", "template", "metadata", "labels"])
        .expect("pod labels");
    let Some(Yaml::Map(selector)) = service.at(&["spec", "selector"]) else {
        panic!("no selector")
    };
    for (k, v) in selector {
        assert_eq!(labels.at(&[k.as_str()]), Some(v), "selector {k}");
    }
    assert_eq!(
        service.str_at(&["spec", "externalTrafficPolicy"]),
        Some("Local")
    );
}

/// The Deployment's probes, and its server's arguments with paths and address moved to
/// where a test may put them: the served directory, the remap file (written from the
/// ConfigMap), and port 0 of loopback.
struct AsDeployed {
    args: Vec<String>,
    probes: Vec<Vec<String>>,
    probe_file: String,
    served: TempDir,
    /// Holds the remap rules.
    _config: TempDir,
}

fn as_deployed() -> AsDeployed {
    let deployment = document("Deployment");
    let c = container();
    let pod = deployment.at(&["spec", "template", "spec"]).unwrap();
    let mut args = c.strings_at(&["args"]);
    let served = TempDir::new("k8s-served");
    let config = TempDir::new("k8s-config");

    // The served directory is the files volume, mounted read-only.
    let dir = args[1].clone();
    assert!(dir.starts_with('/'), "serve's directory {dir:?}");
    let mounts = c.seq_at(&["volumeMounts"]);
    let mount_of = |path: &str| {
        mounts
            .iter()
            .find(|m| m.str_at(&["mountPath"]) == Some(path))
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"))
            .clone()
    };
    assert_eq!(mount_of(&dir).str_at(&["readOnly"]), Some("true"));
    args[1] = served.path().to_str().unwrap().to_string();

    // The remap file is a key of the ConfigMap mounted at its directory.
    let remap_at = args.iter().position(|a| a == "--remap").expect("--remap") + 1;
    let remap = PathBuf::from(&args[remap_at]);
    let (remap_dir, key) = (
        remap.parent().unwrap().to_str().unwrap(),
        remap.file_name().unwrap().to_str().unwrap(),
    );
    let volume_name = mount_of(remap_dir).str_at(&["name"]).unwrap().to_string();
    let volume = pod
        .seq_at(&["volumes"])
        .iter()
        .find(|v| v.str_at(&["name"]) == Some(volume_name.as_str()))
        .expect("the remap volume")
        .clone();
    let map_name = volume
        .str_at(&["configMap", "name"])
        .expect("the remap volume is a ConfigMap");
    let config_map = document("ConfigMap");
    assert_eq!(config_map.str_at(&["metadata", "name"]), Some(map_name));
    let rules = config_map
        .str_at(&["data", key])
        .unwrap_or_else(|| panic!("the ConfigMap has no {key}"));
    let rules_file = config.join(key);
    fs::write(&rules_file, rules).unwrap();
    args[remap_at] = rules_file.to_str().unwrap().to_string();

    let listen_at = args.iter().position(|a| a == "--listen").expect("--listen") + 1;
    let listen = args[listen_at].clone();
    args[listen_at] = "127.0.0.1:0".to_string();

    let probes: Vec<Vec<String>> = ["readinessProbe", "livenessProbe"]
        .iter()
        .map(|probe| {
            let command = c.strings_at(&[probe, "exec", "command"]);
            let line = wirekit_line(&command).expect("a wirekit probe");
            assert_eq!(line[0], "get", "{probe}");
            // It asks the server of its own pod, on the port it listens on.
            let target = line
                .iter()
                .find(|a| a.starts_with("127.0.0.1:"))
                .unwrap_or_else(|| panic!("{probe} asks no 127.0.0.1:PORT: {line:?}"));
            assert_eq!(port_of(target), port_of(&listen), "{probe}");
            line
        })
        .collect();
    let probe_file = probes[0][probes[0].len() - 2].clone();
    AsDeployed {
        args,
        probes,
        probe_file,
        served,
        _config: config,
    }
}

#[test]
fn the_deployment_serves_as_written_and_its_probes_pass() {
    let deployed = as_deployed();
    fs::write(deployed.served.join(&deployed.probe_file), b"probe").unwrap();
    fs::create_dir_all(deployed.served.join("efi/boot")).unwrap();
    fs::write(deployed.served.join("efi/boot/bootx64.efi"), b"shim").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(&deployed.args);
    let server = Serving::spawn(cmd);
    let addr = server.addr().to_string();
    for probe in &deployed.probes {
        let line: Vec<String> = probe
            .iter()
            .map(|a| {
                if a.starts_with("127.0.0.1:") {
                    addr.clone()
                } else {
                    a.clone()
                }
            })
            .collect();
        let out = run(Command::new(BIN).args(&line));
        assert!(
            out.status.success(),
            "the probe `wirekit {}` fails: {out:?}",
            line.join(" ")
        );
    }
    // The ConfigMap's rules are in force: firmware set up for /tftpboot, and in upper
    // case, gets its file.
    for (asked, want) in [
        (format!("/tftpboot/{}", deployed.probe_file), &b"probe"[..]),
        ("EFI/BOOT/BOOTX64.EFI".to_string(), b"shim"),
    ] {
        let out = run(Command::new(BIN).args(["get", &addr, &asked, "-"]));
        assert!(out.status.success(), "get {asked}: {out:?}");
        assert_eq!(out.stdout.as_bytes(), want, "get {asked}");
    }
}

#[test]
fn termination_leaves_the_server_its_grace() {
    let deployment = document("Deployment");
    let pod = deployment.at(&["spec", "template", "spec"]).unwrap();
    let c = container();
    let args = c.strings_at(&["args"]);
    let grace: u64 = value_of(&args, "--grace").map_or_else(
        || {
            // The default, as `serve --help` states it.
            // Short help puts it on the flag's line, long help a few lines below it.
            let help = run(Command::new(BIN).args(["serve", "--help"])).stdout;
            let line = help
                .lines()
                .skip_while(|l| !l.contains("--grace"))
                .find(|l| l.contains("[default: "))
                .unwrap()
                .to_string();
            let default = line.rsplit("[default: ").next().unwrap();
            default.trim().trim_end_matches(']').parse().unwrap()
        },
        |g| g.parse().unwrap(),
    );
    let pre_stop: u64 = c
        .str_at(&["lifecycle", "preStop", "sleep", "seconds"])
        .map_or(0, |s| s.parse().unwrap());
    let period: u64 = pod
        .str_at(&["terminationGracePeriodSeconds"])
        .expect("terminationGracePeriodSeconds")
        .parse()
        .unwrap();
    assert!(
        period > pre_stop + grace,
        "terminationGracePeriodSeconds {period} leaves no room for the preStop sleep \
         ({pre_stop} s) and the server's --grace ({grace} s)"
    );
}

/// Builds the image, only where asked (`WIREKIT_CONTAINER_BUILD=1`) and where docker
/// works: the build pulls the Rust image and the crates from the network.
#[test]
fn the_container_image_builds() {
    if std::env::var("WIREKIT_CONTAINER_BUILD").as_deref() != Ok("1") {
        eprintln!(
            "skipping: building the image pulls from the network; set \
             WIREKIT_CONTAINER_BUILD=1 to build it"
        );
        return;
    }
    let Some(docker) = find_program("docker") else {
        assert!(!require_peers(), "docker is not installed");
        eprintln!("skipping: docker is not installed");
        return;
    };
    if !run(Command::new(&docker).arg("info")).status.success() {
        assert!(!require_peers(), "docker cannot reach its daemon");
        eprintln!("skipping: docker cannot reach its daemon");
        return;
    }
    let tag = format!("wirekit-test:{}", std::process::id());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run_for(
        Command::new(&docker)
            .args([
                "build",
                "-f",
                "contrib/kubernetes/Dockerfile",
                "-t",
                &tag,
                ".",
            ])
            .current_dir(root),
        &[],
        std::time::Duration::from_secs(1800),
    )
    .success("docker build");
    let out = run(Command::new(&docker).args(["run", "--rm", &tag, "--version"]));
    let _ = run(Command::new(&docker).args(["rmi", &tag]));
    assert!(out.stdout.starts_with("wirekit "), "{out:?}");
}
