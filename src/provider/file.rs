//! The file provider: Gateway API YAML from a file or a directory of files.
//!
//! In comes a path; out go [`Event`]s carrying the objects found there,
//! defaulted the way the API server defaults them from the CRD schemas, with
//! `metadata.generation` and `creationTimestamp` kept across reloads as a
//! cluster keeps them. The whole input is parsed and validated before anything
//! is sent: a file that fails keeps the last good set and the error is
//! published (with file and line) for logs and the admin endpoint.

mod defaults;
mod unique;
mod watch;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::object::{Kind, Object, ObjectKey};
use unique::KeyRegistry;

pub use watch::{ProviderState, spawn_file_provider};

#[cfg(test)]
mod tests;

/// Why the input could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct LoadError {
    /// The file at fault.
    pub file: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A document that was read but not used (an unknown kind), reported and skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The file it came from.
    pub file: PathBuf,
    /// The line its document starts on.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

/// What one read of the input produced: owned objects, or (from a cached
/// read) objects shared with the cache.
#[derive(Clone, Debug)]
pub struct Loaded<T = Object> {
    /// The objects, defaulted, in input order.
    pub objects: Vec<T>,
    /// Documents skipped, with the reason.
    pub skipped: Vec<Skipped>,
}

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Self {
            objects: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

impl Loaded<Arc<Object>> {
    /// Owned copies of the objects (free for objects nothing else shares).
    fn into_owned(self) -> Loaded {
        Loaded {
            objects: self.objects.into_iter().map(Arc::unwrap_or_clone).collect(),
            skipped: self.skipped,
        }
    }
}

/// Reads every object under `path` (a file, or a directory searched
/// recursively for `*.yaml`, `*.yml` and `*.json`, in name order).
pub fn load_path(path: &Path) -> Result<Loaded, LoadError> {
    // The cache goes out of scope first, so the objects are not copied.
    let loaded = load_path_cached(path, &mut DocumentCache::default())?;
    Ok(loaded.into_owned())
}

/// What parsing one document gave, kept by the document's text so that a
/// reload parses only the documents that changed.
#[derive(Clone, Debug)]
enum Parsed {
    Object(Arc<Object>),
    Skipped(String),
    Empty,
}

/// The documents of the latest successful read, by file, so that a reload
/// parses only the documents whose text changed.
#[derive(Debug, Default)]
pub struct DocumentCache {
    files: HashMap<PathBuf, CachedFile>,
    keys: KeyRegistry,
}

impl DocumentCache {
    /// How many documents are kept.
    pub fn documents(&self) -> usize {
        self.files.values().map(|f| f.docs.len()).sum()
    }
}

/// One file's text and what each of its documents parsed to.
#[derive(Debug)]
struct CachedFile {
    text: String,
    docs: Vec<CachedDoc>,
}

/// One document of a cached file.
#[derive(Clone, Debug)]
struct CachedDoc {
    /// The 1-based line it starts on.
    line: usize,
    /// Where its text is in the file's.
    range: Range<usize>,
    parsed: Parsed,
}

impl CachedFile {
    /// Where a document with this text was in the previous read, looking
    /// from `from` on: an edit usually leaves the documents in order, or
    /// shifts them by the few that were added or removed.
    fn find(&self, from: usize, doc: &str) -> Option<usize> {
        /// How far ahead to look for a document.
        const LOOKAHEAD: usize = 8;
        let end = (from + LOOKAHEAD).min(self.docs.len());
        (from..end).find(|&i| self.text.get(self.docs[i].range.clone()) == Some(doc))
    }
}

/// Like [`load_path`], reusing (and then replacing) `cache`: an unchanged
/// document gives the very object it gave before, shared with the cache,
/// instead of being parsed again.
pub fn load_path_cached(
    path: &Path,
    cache: &mut DocumentCache,
) -> Result<Loaded<Arc<Object>>, LoadError> {
    let mut files = Vec::new();
    collect_files(path, &mut files)?;
    let mut loaded = Loaded::default();
    let mut next = DocumentCache::default();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| LoadError {
            file: file.clone(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        let (one, cached) = parse_file(&file, text, cache.files.get(&file))?;
        loaded.objects.extend(one.objects);
        loaded.skipped.extend(one.skipped);
        next.files.insert(file, cached);
    }
    cache.keys.check(&loaded.objects).map_err(|key| LoadError {
        file: path.to_path_buf(),
        line: None,
        message: format!("{key} is defined more than once"),
    })?;
    next.keys = std::mem::take(&mut cache.keys);
    *cache = next;
    Ok(loaded)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io_err = |e: std::io::Error| LoadError {
        file: path.to_path_buf(),
        line: None,
        message: format!("cannot read: {e}"),
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(entry);
        }
    }
    Ok(())
}

/// Splits multi-document YAML on `---` lines, from byte `from` of `text`
/// (the start of a document, on line `line`) on, appending each document's
/// byte range and the 1-based line it starts on to `docs`.
fn split_documents_from(
    text: &str,
    from: usize,
    line: usize,
    docs: &mut Vec<(usize, Range<usize>)>,
) {
    let (mut start, mut start_line) = (from, line);
    let mut offset = from;
    for (i, line_text) in text[from..].split_inclusive('\n').enumerate() {
        let content = line_text.trim_end_matches(['\n', '\r']);
        if content == "---" || content.starts_with("--- ") || content == "..." {
            docs.push((start_line, start..offset));
            start = offset + line_text.len();
            start_line = line + i + 1;
        }
        offset += line_text.len();
    }
    docs.push((start_line, start..text.len()));
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 4096;
    let mut same = 0;
    for (x, y) in a.chunks(CHUNK).zip(b.chunks(CHUNK)) {
        if x == y {
            same += x.len();
        } else {
            return same + x.iter().zip(y).take_while(|(p, q)| p == q).count();
        }
    }
    same
}

/// Parses one file's text: every document must be a known kind with valid
/// fields, or an unknown kind (skipped and reported).
pub fn parse_documents(file: &Path, text: &str) -> Result<Loaded, LoadError> {
    let (loaded, _) = parse_file(file, text.to_string(), None)?;
    Ok(loaded.into_owned())
}

/// Parses one file, taking each document that is unchanged since
/// `previous` from there; returns the objects and what to keep for the
/// next read.
fn parse_file(
    file: &Path,
    text: String,
    previous: Option<&CachedFile>,
) -> Result<(Loaded<Arc<Object>>, CachedFile), LoadError> {
    if let Some(previous) = previous.filter(|p| p.text == text) {
        let docs = previous.docs.clone();
        return Ok((collect(file, &docs), CachedFile { text, docs }));
    }
    let mut docs = Vec::new();
    // Documents wholly before the first changed byte (with the separator
    // that ends them) are the previous read's: take them without
    // splitting or comparing that part again.
    let mut split = Vec::new();
    let mut cursor = 0;
    match previous {
        Some(previous) => {
            let same = common_prefix(previous.text.as_bytes(), text.as_bytes());
            let kept = previous
                .docs
                .windows(2)
                .take_while(|pair| pair[1].range.start <= same)
                .count();
            docs.extend(previous.docs[..kept].iter().cloned());
            let (from, line) = previous
                .docs
                .get(kept)
                .map_or((0, 1), |d| (d.range.start, d.line));
            split_documents_from(&text, from, line, &mut split);
            cursor = kept;
        }
        None => split_documents_from(&text, 0, 1, &mut split),
    }
    // Where in the previous read's documents to look next.
    for (line, range) in split {
        let doc = &text[range.clone()];
        let parsed = match previous.and_then(|p| p.find(cursor, doc).map(|i| (p, i))) {
            Some((p, i)) => {
                cursor = i + 1;
                p.docs[i].parsed.clone()
            }
            None => parse_document(file, line, doc)?,
        };
        docs.push(CachedDoc {
            line,
            range,
            parsed,
        });
    }
    Ok((collect(file, &docs), CachedFile { text, docs }))
}

/// The objects and skipped documents of one file's documents.
fn collect(file: &Path, docs: &[CachedDoc]) -> Loaded<Arc<Object>> {
    let mut loaded = Loaded::default();
    for doc in docs {
        match &doc.parsed {
            Parsed::Object(object) => loaded.objects.push(object.clone()),
            Parsed::Skipped(reason) => loaded.skipped.push(Skipped {
                file: file.to_path_buf(),
                line: doc.line,
                reason: reason.clone(),
            }),
            Parsed::Empty => {}
        }
    }
    loaded
}

/// Parses one document starting on line `start` of `file`.
fn parse_document(file: &Path, start: usize, doc: &str) -> Result<Parsed, LoadError> {
    let err = |line: Option<usize>, message: String| LoadError {
        file: file.to_path_buf(),
        line,
        message,
    };
    // The usual document names its kind on top-level lines: deserialize it
    // straight from the text. Anything else (JSON, flow style, unknown
    // kinds, and every error, for its message and line) takes the way
    // through a parsed value below.
    if let Some(kind) = type_meta_lines(doc).and_then(|(v, k)| Kind::from_type_meta(v, k))
        && let Ok(mut object) = parse_object_text(kind, doc)
        && object.meta().name.as_deref().is_some_and(|n| !n.is_empty())
    {
        defaults::apply(&mut object);
        return Ok(Parsed::Object(Arc::new(object)));
    }
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc)
        .map_err(|e| err(yaml_line(&e, start).or(Some(start)), yaml_message(&e)))?;
    if value.is_null() {
        return Ok(Parsed::Empty);
    }
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or("");
    let (api_version, kind) = (field("apiVersion").to_string(), field("kind").to_string());
    if api_version.is_empty() || kind.is_empty() {
        return Err(err(
            Some(start),
            "document has no apiVersion or kind".to_string(),
        ));
    }
    let Some(k) = Kind::from_type_meta(&api_version, &kind) else {
        return Ok(Parsed::Skipped(format!(
            "unknown kind {kind} in {api_version}"
        )));
    };
    // Deserialize from the parsed value; only when that fails, parse the
    // text again to say on which line.
    let mut object = match parse_object(k, value) {
        Ok(object) => object,
        Err((_, message)) => {
            let line = parse_object_text(k, doc).err().and_then(|(line, _)| line);
            return Err(err(line.map(|l| l + start - 1).or(Some(start)), message));
        }
    };
    defaults::apply(&mut object);
    if object.meta().name.as_deref().unwrap_or("").is_empty() {
        return Err(err(Some(start), format!("{kind} has no metadata.name")));
    }
    Ok(Parsed::Object(Arc::new(object)))
}

/// `apiVersion` and `kind` when the document gives them as plain or quoted
/// scalars on lines of their own at the top level (block style).
fn type_meta_lines(doc: &str) -> Option<(&str, &str)> {
    fn scalar(rest: &str) -> Option<&str> {
        let rest = rest.trim();
        let rest = match rest.find(" #") {
            Some(i) => rest[..i].trim_end(),
            None => rest,
        };
        let unquoted = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
            .unwrap_or(rest);
        let plain = unquoted
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-'));
        (!unquoted.is_empty() && plain).then_some(unquoted)
    }
    let (mut api_version, mut kind) = (None, None);
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("apiVersion:") {
            api_version = Some(scalar(rest)?);
        } else if let Some(rest) = line.strip_prefix("kind:") {
            kind = Some(scalar(rest)?);
        }
    }
    Some((api_version?, kind?))
}

fn parse_object_text(kind: Kind, doc: &str) -> Result<Object, (Option<usize>, String)> {
    let de = serde_yaml_ng::Deserializer::from_str(doc);
    parse_with(kind, de)
}

fn parse_object(
    kind: Kind,
    value: serde_yaml_ng::Value,
) -> Result<Object, (Option<usize>, String)> {
    parse_with(kind, value)
}

fn parse_with<'de, D>(kind: Kind, de: D) -> Result<Object, (Option<usize>, String)>
where
    D: serde::Deserializer<'de, Error = serde_yaml_ng::Error>,
{
    Ok(match kind {
        Kind::GatewayClass => Object::GatewayClass(strict(de)?),
        Kind::Gateway => Object::Gateway(strict(de)?),
        Kind::HttpRoute => Object::HttpRoute(strict(de)?),
        Kind::ReferenceGrant => Object::ReferenceGrant(strict(de)?),
        Kind::Namespace => Object::Namespace(strict(de)?),
        Kind::Service => Object::Service(strict(de)?),
        Kind::EndpointSlice => Object::EndpointSlice(strict(de)?),
        Kind::Secret => Object::Secret(strict(de)?),
        Kind::Backend => Object::Backend(strict(de)?),
        Kind::DirectResponse => Object::DirectResponse(strict(de)?),
        Kind::GatewayParameters => Object::GatewayParameters(strict(de)?),
    })
}

/// Deserializes one document, failing on fields the type does not have, as
/// `kubectl apply` does with strict field validation. `status` is ignored, as
/// the API server ignores it on the main resource.
fn strict<'de, T, D>(de: D) -> Result<T, (Option<usize>, String)>
where
    T: DeserializeOwned,
    D: serde::Deserializer<'de, Error = serde_yaml_ng::Error>,
{
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(de, |path| {
        let path = field_path(&path);
        // `apiVersion` and `kind` were checked already; the generated root
        // types of the CRDs do not keep them.
        let server_side = path == "status" || path.starts_with("status.");
        if !server_side && path != "apiVersion" && path != "kind" {
            unknown.push(path);
        }
    })
    .map_err(|e| (yaml_line(&e, 1), yaml_message(&e)))?;
    if let Some(path) = unknown.first() {
        return Err((None, format!("unknown field \"{path}\"")));
    }
    Ok(value)
}

/// Spells an ignored field's path as `spec.rules[0].matchez`.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

fn yaml_line(e: &serde_yaml_ng::Error, start: usize) -> Option<usize> {
    e.location().map(|l| l.line() + start - 1)
}

fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// What the provider remembers of an object between reloads, to keep
/// `metadata.generation` and `creationTimestamp` as the API server does.
#[derive(Clone, Debug)]
struct Remembered {
    key: ObjectKey,
    /// The object as read, before stamping. With the document cache an
    /// unchanged document gives this very object again, so most objects
    /// need no comparison at all.
    parsed: Arc<Object>,
    /// The object as last handed on, stamped.
    stamped: Arc<Object>,
    generation: i64,
    created: Time,
}

/// One stamping of a whole read: every object, and how the set differs
/// from the previous one.
#[derive(Debug, Default)]
pub struct Stamped {
    /// Every object, stamped, in input order.
    pub objects: Vec<Arc<Object>>,
    /// Objects that are new or differ from the previous read.
    pub changed: Vec<Arc<Object>>,
    /// Objects of the previous read that are gone.
    pub removed: Vec<ObjectKey>,
}

/// Stamps server-set metadata onto loaded objects across reloads, and tells
/// what changed since the previous read.
#[derive(Debug, Default)]
pub struct MetadataStamper {
    /// The previous read's objects, in input order.
    seen: Vec<Remembered>,
}

impl MetadataStamper {
    /// Sets `generation` (1 when new, +1 when the spec changed) and
    /// `creationTimestamp` (kept from the first sighting unless the file
    /// gives one) on every object; forgets objects no longer present.
    pub fn stamp(&mut self, objects: &mut [Object], now: Timestamp) {
        let shared = objects.iter().map(|o| Arc::new(o.clone())).collect();
        let stamped = self.stamp_shared(shared, now);
        for (object, stamped) in objects.iter_mut().zip(stamped.objects) {
            *object = (*stamped).clone();
        }
    }

    /// Like [`MetadataStamper::stamp`] for shared objects: an object equal
    /// to the one read before comes back as the same stamped object and is
    /// not listed as changed. Objects are matched by position first (the
    /// same object at the same place, as an unchanged document gives) and
    /// by key only where that fails.
    pub fn stamp_shared(&mut self, objects: Vec<Arc<Object>>, now: Timestamp) -> Stamped {
        let mut previous: Vec<Option<Remembered>> = std::mem::take(&mut self.seen)
            .into_iter()
            .map(Some)
            .collect();
        let mut next: Vec<Option<Remembered>> = Vec::with_capacity(objects.len());
        let mut unmatched = Vec::new();
        for (i, parsed) in objects.iter().enumerate() {
            match previous.get_mut(i) {
                Some(slot)
                    if slot
                        .as_ref()
                        .is_some_and(|p| Arc::ptr_eq(&p.parsed, parsed)) =>
                {
                    next.push(slot.take());
                }
                _ => {
                    next.push(None);
                    unmatched.push(i);
                }
            }
        }
        let mut by_key: HashMap<ObjectKey, Remembered> = previous
            .into_iter()
            .flatten()
            .map(|r| (r.key.clone(), r))
            .collect();
        let mut changed = Vec::new();
        for i in unmatched {
            let parsed = objects[i].clone();
            let key = parsed.key();
            let remembered = match by_key.remove(&key) {
                Some(prev) if Arc::ptr_eq(&prev.parsed, &parsed) || prev.parsed == parsed => {
                    Remembered { parsed, ..prev }
                }
                Some(prev) => {
                    let generation =
                        if prev.parsed.generation_payload() == parsed.generation_payload() {
                            prev.generation
                        } else {
                            prev.generation + 1
                        };
                    let stamped = stamp_one(&parsed, generation, &prev.created);
                    changed.push(stamped.clone());
                    Remembered {
                        key,
                        parsed,
                        stamped,
                        generation,
                        created: prev.created,
                    }
                }
                None => {
                    let created = Time(now);
                    let stamped = stamp_one(&parsed, 1, &created);
                    changed.push(stamped.clone());
                    Remembered {
                        key,
                        parsed,
                        stamped,
                        generation: 1,
                        created,
                    }
                }
            };
            next[i] = Some(remembered);
        }
        self.seen = next.into_iter().flatten().collect();
        let mut removed: Vec<ObjectKey> = by_key.into_keys().collect();
        removed.sort();
        Stamped {
            objects: self.seen.iter().map(|r| r.stamped.clone()).collect(),
            changed,
            removed,
        }
    }
}

fn stamp_one(parsed: &Object, generation: i64, created: &Time) -> Arc<Object> {
    let mut object = parsed.clone();
    let meta = object.meta_mut();
    meta.generation = Some(generation);
    if meta.creation_timestamp.is_none() {
        meta.creation_timestamp = Some(created.clone());
    }
    Arc::new(object)
}
