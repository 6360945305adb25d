//! The hydrate bundle's size: raw, `gzip -9` and `brotli -q 11` (the command-line tools), and when
//! over budget the largest contributors according to `twiggy`, if it is installed.
use std::{
    collections::HashMap,
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use serde_json::{json, Value};

/// Goal for wasm + js, brotli: 200 KB, read as 200 000 bytes.
pub const BROTLI_BUDGET: u64 = 200_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    pub raw: u64,
    pub gzip: Option<u64>,
    pub brotli: Option<u64>,
}

impl Sizes {
    fn to_json(self) -> Value {
        json!({ "raw": self.raw, "gzip": self.gzip, "brotli": self.brotli })
    }
}

pub struct Bundle {
    pub wasm: Sizes,
    /// `pulse.js` and the split loader it imports: the JavaScript every page loads.
    pub js: Sizes,
    pub css: Sizes,
    /// The chunks `cargo leptos --split` moved out of `pulse.wasm` (the settings screens), loaded
    /// only by the pages that need them; not part of the budget, which is what every page loads.
    pub lazy_chunks: Sizes,
    pub lazy_chunk_count: usize,
    pub twiggy: Option<Value>,
    pub notes: Vec<String>,
}

impl Bundle {
    pub fn wasm_js_brotli(&self) -> Option<u64> {
        Some(self.wasm.brotli? + self.js.brotli?)
    }

    pub fn to_json(&self) -> Value {
        let total = self.wasm_js_brotli();
        json!({
            "pulse.wasm": self.wasm.to_json(),
            "pulse.js": self.js.to_json(),
            "pulse.css": self.css.to_json(),
            "lazy_chunks": self.lazy_chunks.to_json(),
            "lazy_chunk_count": self.lazy_chunk_count,
            "wasm_js_raw": self.wasm.raw + self.js.raw,
            "wasm_js_gzip": self.wasm.gzip.zip(self.js.gzip).map(|(a, b)| a + b),
            "wasm_js_brotli": total,
            "goal_wasm_js_brotli_max_bytes": BROTLI_BUDGET,
            "met": total.map(|t| t <= BROTLI_BUDGET),
            "largest_contributors": self.twiggy,
            "notes": self.notes,
        })
    }
}

/// Measures `<site>/pkg/pulse.{wasm,js,css}`; `names_wasm` is a build of the same wasm that
/// still has its name section (before wasm-opt), for twiggy.
pub fn measure(site_root: &Path, names_wasm: Option<&Path>) -> Bundle {
    let pkg = site_root.join("pkg");
    let mut notes = Vec::new();
    let have_brotli = tool_works("brotli", &["--version"]);
    if !have_brotli {
        notes.push("brotli is not installed: brotli sizes are missing (apt-get install -y brotli)".to_owned());
    }
    let sizes = |name: &str| -> Sizes {
        let Ok(bytes) = std::fs::read(pkg.join(name)) else {
            return Sizes::default();
        };
        Sizes {
            raw: bytes.len() as u64,
            gzip: compressed_len("gzip", &["-9", "-c"], &bytes),
            brotli: if have_brotli {
                compressed_len("brotli", &["-c", "-q", "11"], &bytes)
            } else {
                None
            },
        }
    };
    let sum = |parts: Vec<Sizes>| Sizes {
        raw: parts.iter().map(|p| p.raw).sum(),
        gzip: parts.iter().map(|p| p.gzip).sum(),
        brotli: parts.iter().map(|p| p.brotli).sum(),
    };
    let names: Vec<String> = std::fs::read_dir(&pkg)
        .map(|dir| {
            dir.filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let loaders: Vec<Sizes> = names
        .iter()
        .filter(|n| n.starts_with("__wasm_split") && n.ends_with(".js"))
        .map(|n| sizes(n))
        .collect();
    let chunks: Vec<Sizes> = names
        .iter()
        .filter(|n| n.ends_with(".wasm") && n.as_str() != "pulse.wasm")
        .map(|n| sizes(n))
        .collect();
    let lazy_chunk_count = chunks.len();
    let (wasm, css) = (sizes("pulse.wasm"), sizes("pulse.css"));
    let js = sum(std::iter::once(sizes("pulse.js")).chain(loaders).collect());
    let mut bundle = Bundle {
        wasm,
        js,
        css,
        lazy_chunks: sum(chunks),
        lazy_chunk_count,
        twiggy: None,
        notes,
    };
    if bundle.wasm_js_brotli().is_some_and(|total| total > BROTLI_BUDGET) {
        match names_wasm.filter(|path| path.is_file()) {
            Some(path) => bundle.twiggy = largest_contributors(path, &mut bundle.notes),
            None => bundle.notes.push(
                "over budget; no wasm with function names was given (--names-wasm), so no breakdown: the shipped one has none".to_owned(),
            ),
        }
    }
    bundle
}

/// What the wasm is made of: shallow bytes per crate from `twiggy top` (CSV), over code and data
/// only (the name section and wasm-bindgen's descriptors do not survive into the shipped file),
/// plus the largest single items.
fn largest_contributors(wasm: &Path, notes: &mut Vec<String>) -> Option<Value> {
    if !tool_works("twiggy", &["--version"]) {
        notes.push("over budget, but twiggy is not installed (cargo install twiggy)".to_owned());
        return None;
    }
    let output = Command::new("twiggy")
        .args(["top", "-n", "1000000", "-f", "csv"])
        .arg(wasm)
        .output()
        .ok()?;
    if !output.status.success() {
        notes.push(format!(
            "twiggy failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut by_crate: HashMap<String, u64> = HashMap::new();
    let mut items: Vec<(String, u64)> = Vec::new();
    let mut total = 0u64;
    for record in text.lines().skip(1).map(csv_fields) {
        let (Some(name), Some(size)) = (record.first(), record.get(1).and_then(|s| s.parse::<u64>().ok())) else {
            continue;
        };
        if name.starts_with('"') || name.starts_with("custom section") || name.contains("__wbindgen_describe") {
            continue;
        }
        total += size;
        *by_crate.entry(crate_of(name)).or_default() += size;
        items.push((name.clone(), size));
    }
    let mut crates: Vec<(String, u64)> = by_crate.into_iter().collect();
    crates.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    items.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    let share = |bytes: u64| (bytes as f64 * 1000.0 / total.max(1) as f64).round() / 10.0;
    notes.push(format!(
        "largest contributors: twiggy over {} (before wasm-opt)",
        wasm.display()
    ));
    Some(json!({
        "source": wasm.display().to_string(),
        "code_and_data_bytes_before_wasm_opt": total,
        "by_crate": crates.iter().take(15).map(|(name, bytes)| json!({ "crate": name, "bytes": bytes, "percent": share(*bytes) })).collect::<Vec<_>>(),
        "top_items": items.iter().take(10).map(|(name, bytes)| json!({ "item": name.chars().take(120).collect::<String>(), "bytes": bytes })).collect::<Vec<_>>(),
    }))
}

/// The crate an item belongs to: the first `name::` (or `name[hash]::`) in its path; for
/// `<T as trait>` items that is usually the trait's or the type's crate.
fn crate_of(item: &str) -> String {
    if item.starts_with("data segment") {
        return "(static data)".to_owned();
    }
    let bytes = item.as_bytes();
    let mut start = None;
    for (at, &b) in bytes.iter().enumerate() {
        let ident = b.is_ascii_alphanumeric() || b == b'_';
        match (start, ident) {
            (None, true) if at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') => {
                start = Some(at)
            }
            (Some(from), false) => {
                let rest = &item[at..];
                let rest = if rest.starts_with('[') {
                    rest.find(']').map(|end| &rest[end + 1..]).unwrap_or(rest)
                } else {
                    rest
                };
                if rest.starts_with("::") && !bytes[from].is_ascii_digit() && &item[from..at] != "T" {
                    return item[from..at].to_owned();
                }
                start = None;
            }
            _ => {}
        }
    }
    "(other: primitives, glue)".to_owned()
}

/// Splits one CSV line (RFC 4180 quoting; twiggy writes no line breaks inside fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(field) = fields.last_mut() {
                    field.push('"');
                }
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

fn tool_works(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The length of `tool args` run over `bytes` (stdin → stdout).
fn compressed_len(tool: &str, args: &[&str], bytes: &[u8]) -> Option<u64> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = bytes.to_vec();
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    output.status.success().then_some(output.stdout.len() as u64)
}
