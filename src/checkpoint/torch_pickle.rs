//! Reader for PyTorch checkpoints written by `torch.save` (the zip format, PyTorch ≥ 1.6),
//! in pure Rust: no Python and no libtorch needed to open an official `NPR.pth`.
//!
//! Layout of the archive (the top folder's name varies with the file name it was saved
//! under, so it is taken from the `data.pkl` entry):
//!
//! ```text
//! archive/data.pkl      pickle (protocol 2) of the saved object
//! archive/byteorder     "little" or "big" (absent before PyTorch 1.10: little)
//! archive/data/<key>    raw bytes of one storage, numel × element size
//! ```
//!
//! The pickle is run on a small stack machine that knows only the opcodes `torch.save`
//! emits (plus a few harmless neighbours from protocols 3–4); any other opcode is a
//! typed error naming it. Its object model is just big enough for checkpoints:
//! dicts (`collections.OrderedDict` too), lists, tuples, scalars, strings, storages
//! (persistent ids `('storage', torch.FloatStorage, key, location, numel)`, or
//! `torch.UntypedStorage` whose dtype comes from `_rebuild_tensor_v3`), and tensors from
//! `torch._utils._rebuild_tensor{,_v2,_v3}` / `_rebuild_parameter{,_with_state}`.
//! Every other global becomes an opaque value, so an optimizer, an `argparse.Namespace`
//! or an epoch counter next to the weights never stops loading.
//!
//! The result is flattened: nested dicts join their keys with `.`
//! (`{'model': {'module.conv1.weight': t}}` → `model.module.conv1.weight`), lists and
//! tuples that hold tensors use the index as key, insertion order is kept. Tensors come
//! back contiguous, row-major and little-endian, with storage offset and strides applied;
//! every other leaf is only named in [`StateDict::skipped`].
//!
//! The file is untrusted input: every length, index, offset and stride is checked, so a
//! truncated or malicious file gives a [`TorchPickleError`], never a panic. Objects live
//! in an arena and refer to each other by index, so cyclic or deeply nested pickles
//! neither leak nor overflow the stack when dropped.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use zip::result::ZipError;
use zip::ZipArchive;

/// Largest `data.pkl` accepted. The pickle only describes the tensors (the data lives in
/// separate entries): a ResNet-50 state_dict plus Adam state is well under 1 MiB.
const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Deepest nesting of dicts and lists walked when flattening. Real checkpoints nest a few
/// levels (`optimizer.state.0.exp_avg`); anything deeper is malformed.
const MAX_NESTING: usize = 64;

/// How many `_rebuild_from_type_v2` wrappers may nest around one tensor (PyTorch emits one).
const MAX_REBUILD_WRAPPERS: usize = 8;

/// Highest pickle protocol understood (PROTO argument).
const MAX_PROTOCOL: u8 = 5;

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

/// Element type of a tensor, named as in PyTorch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// PyTorch's name without the `torch.` prefix (`float32`, `bfloat16`, `bool`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::Bool => "bool",
        }
    }

    /// The legacy typed storage class (`torch.FloatStorage`, …) of this dtype.
    fn from_storage_class(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// A `torch.<dtype>` global, as pickled for `_rebuild_tensor_v3`.
    fn from_torch_name(name: &str) -> Option<DType> {
        Some(match name {
            "float32" | "float" => DType::F32,
            "float64" | "double" => DType::F64,
            "float16" | "half" => DType::F16,
            "bfloat16" => DType::BF16,
            "int64" | "long" => DType::I64,
            "int32" | "int" => DType::I32,
            "int16" | "short" => DType::I16,
            "int8" => DType::I8,
            "uint8" => DType::U8,
            "bool" => DType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names of the supported dtypes, for error messages.
const SUPPORTED_DTYPES: &str =
    "float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool";

/// One tensor: contiguous, row-major, little-endian bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTensor {
    pub dtype: DType,
    /// Empty for a 0-dim (scalar) tensor such as BatchNorm's `num_batches_tracked`.
    pub shape: Vec<usize>,
    /// `numel × dtype.size()` bytes.
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Everything a checkpoint holds, flattened.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    /// Tensors in the order the checkpoint lists them, under their dotted names.
    pub tensors: Vec<(String, RawTensor)>,
    /// Dotted names of the leaves that are not tensors (`epoch`, `args`, …), in order.
    pub skipped: Vec<String>,
}

impl StateDict {
    /// The tensor stored under `name`, if any.
    pub fn get(&self, name: &str) -> Option<&RawTensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// Why a checkpoint could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchPickleError {
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: not a zip archive ({detail}). torch.save writes zip archives since PyTorch 1.6; \
         this may be a checkpoint in the legacy format (older PyTorch, or \
         _use_new_zipfile_serialization=False). Re-save it with PyTorch: \
         `torch.save(torch.load(p), p2)` (pass weights_only=False to torch.load if it \
         refuses, for a file you trust) and load p2",
        .path.display()
    )]
    NotZip { path: PathBuf, detail: String },
    #[error("{}: the zip archive is truncated or corrupted ({detail}); copy or download it again", .path.display())]
    CorruptZip { path: PathBuf, detail: String },
    #[error(
        "{}: no <folder>/data.pkl in the zip archive, so torch.save did not write it \
         (entries: {entries})",
        .path.display()
    )]
    MissingDataPkl { path: PathBuf, entries: String },
    #[error("{}: cannot read archive entry {entry}: {detail}", .path.display())]
    Entry {
        path: PathBuf,
        entry: String,
        detail: String,
    },
    #[error(
        "{}: {entry}: unsupported pickle opcode {name} (0x{opcode:02x}) at byte {offset}; \
         only the opcodes torch.save emits are understood",
        .path.display()
    )]
    UnsupportedOpcode {
        path: PathBuf,
        entry: String,
        opcode: u8,
        name: &'static str,
        offset: usize,
    },
    #[error("{}: {entry}: malformed pickle at byte {offset}: {detail}", .path.display())]
    Pickle {
        path: PathBuf,
        entry: String,
        offset: usize,
        detail: String,
    },
    #[error("{}: {detail}", .path.display())]
    Structure { path: PathBuf, detail: String },
    #[error("{}: tensor {tensor}: bad storage key {key:?}: {detail}", .path.display())]
    BadStorageKey {
        path: PathBuf,
        tensor: String,
        key: String,
        detail: String,
    },
    #[error(
        "{}: tensor {tensor}: storage {entry} is truncated: {needed} bytes needed, {actual} present",
        .path.display()
    )]
    TruncatedStorage {
        path: PathBuf,
        tensor: String,
        entry: String,
        needed: u64,
        actual: u64,
    },
    #[error(
        "{}: tensor {tensor} has dtype {dtype}, which is not supported (supported: {SUPPORTED_DTYPES})",
        .path.display()
    )]
    UnsupportedDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },
    #[error("{}: tensor {tensor}: {detail}", .path.display())]
    BadTensor {
        path: PathBuf,
        tensor: String,
        detail: String,
    },
}

/// Reads every tensor of a `torch.save` checkpoint.
pub fn read_state_dict(path: &Path) -> Result<StateDict, TorchPickleError> {
    let file = File::open(path).map_err(|source| TorchPickleError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_state_dict_from_reader(BufReader::new(file), path)
}

/// Like [`read_state_dict`], from any seekable reader; `origin` only names it in errors.
pub fn read_state_dict_from_reader<R: Read + Seek>(
    mut reader: R,
    origin: &Path,
) -> Result<StateDict, TorchPickleError> {
    let path = || origin.to_path_buf();
    let io_err = |source| TorchPickleError::Io {
        path: path(),
        source,
    };

    // Sniff the first bytes so the common mistakes get a precise message.
    let mut head = [0u8; 4];
    let head_len = read_up_to(&mut reader, &mut head).map_err(io_err)?;
    let head = &head[..head_len];
    if head.is_empty() {
        return Err(TorchPickleError::NotZip {
            path: path(),
            detail: "the file is empty".into(),
        });
    }
    if !head.starts_with(b"PK") {
        let detail = if head[0] == 0x80 {
            "it starts with a pickle header, as the legacy torch.save format does"
        } else {
            "it does not start with the zip signature \"PK\""
        };
        return Err(TorchPickleError::NotZip {
            path: path(),
            detail: detail.into(),
        });
    }
    reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut zip = ZipArchive::new(reader).map_err(|e| TorchPickleError::CorruptZip {
        path: path(),
        detail: e.to_string(),
    })?;

    // The top folder is whatever the data.pkl entry sits in.
    let prefix = zip
        .file_names()
        .find_map(|n| {
            n.strip_suffix("/data.pkl")
                .filter(|p| !p.is_empty() && !p.contains('/'))
        })
        .map(str::to_owned);
    let Some(prefix) = prefix else {
        let mut names: Vec<&str> = zip.file_names().take(6).collect();
        if zip.len() > names.len() {
            names.push("…");
        }
        return Err(TorchPickleError::MissingDataPkl {
            path: path(),
            entries: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        });
    };

    let pkl_name = format!("{prefix}/data.pkl");
    let entry_err = |entry: &str, detail: String| TorchPickleError::Entry {
        path: path(),
        entry: entry.to_owned(),
        detail,
    };
    let pkl = read_entry(&mut zip, &pkl_name, MAX_PICKLE_BYTES)
        .map_err(|d| entry_err(&pkl_name, d))?
        .ok_or_else(|| entry_err(&pkl_name, "listed but not found".into()))?;

    let byteorder_name = format!("{prefix}/byteorder");
    let big_endian = match read_entry(&mut zip, &byteorder_name, 64)
        .map_err(|d| entry_err(&byteorder_name, d))?
    {
        None => false,
        Some(b) => match String::from_utf8_lossy(&b).trim() {
            "little" => false,
            "big" => true,
            other => {
                return Err(TorchPickleError::Structure {
                    path: path(),
                    detail: format!(
                        "{byteorder_name} says {other:?}, expected \"little\" or \"big\""
                    ),
                })
            }
        },
    };

    let (objs, root) = Machine::new(&pkl).run().map_err(|fault| match fault {
        Fault::Unsupported { opcode, offset } => TorchPickleError::UnsupportedOpcode {
            path: path(),
            entry: pkl_name.clone(),
            opcode,
            name: opcode_name(opcode),
            offset,
        },
        Fault::Malformed { offset, detail } => TorchPickleError::Pickle {
            path: path(),
            entry: pkl_name.clone(),
            offset,
            detail,
        },
    })?;

    let flat = flatten(&objs, &root).map_err(|detail| TorchPickleError::Structure {
        path: path(),
        detail,
    })?;
    let tensors = materialize(&mut zip, &prefix, &objs, flat.tensors, big_endian, origin)?;
    Ok(StateDict {
        tensors,
        skipped: flat.skipped,
    })
}

// ---------------------------------------------------------------------------------------
// Zip helpers
// ---------------------------------------------------------------------------------------

/// Fills `buf` as far as the reader allows; returns how many bytes were read.
fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The whole entry `name`, `None` when absent; an error when larger than `limit`.
fn read_entry<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, String> {
    let entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if entry.size() > limit {
        return Err(format!(
            "{} bytes, more than the {limit} accepted",
            entry.size()
        ));
    }
    let mut buf = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > limit {
        return Err(format!("more than the {limit} bytes accepted"));
    }
    Ok(Some(buf))
}

// ---------------------------------------------------------------------------------------
// Object model
// ---------------------------------------------------------------------------------------

/// A pickle value. Containers and objects live in the arena and are shared by index, as
/// Python shares them by reference (the memo hands out the same object again).
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Obj(usize),
}

#[derive(Debug)]
enum Obj {
    Tuple(Vec<Value>),
    /// Lists, and sets (only their members matter here).
    List(Vec<Value>),
    Dict(Dict),
    Global {
        module: Rc<str>,
        name: Rc<str>,
    },
    Storage(Storage),
    Tensor(TensorMeta),
    /// Anything else: instances of unknown classes, results of unknown callables,
    /// integers too large for i64. Holds a short description.
    Opaque(String),
}

#[derive(Debug, Default)]
struct Dict {
    entries: Vec<(Value, Value)>,
    /// Position of each hashable key in `entries`, so a repeated key replaces in place.
    index: HashMap<DictKey, usize>,
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum DictKey {
    Str(Rc<str>),
    Int(i64),
    None,
}

impl Dict {
    fn insert(&mut self, key: Value, value: Value) {
        let hashable = match &key {
            Value::Str(s) => Some(DictKey::Str(s.clone())),
            Value::Int(i) => Some(DictKey::Int(*i)),
            Value::Bool(b) => Some(DictKey::Int(i64::from(*b))),
            Value::None => Some(DictKey::None),
            _ => None,
        };
        match hashable {
            Some(k) => match self.index.get(&k) {
                Some(&i) => self.entries[i].1 = value,
                None => {
                    self.index.insert(k, self.entries.len());
                    self.entries.push((key, value));
                }
            },
            None => self.entries.push((key, value)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum StorageKind {
    Typed(DType),
    /// `torch.UntypedStorage`: bytes; the tensor's dtype comes from `_rebuild_tensor_v3`.
    Untyped,
    /// A storage class this reader has no dtype for (`torch.ComplexFloatStorage`, …).
    Unsupported(String),
}

#[derive(Debug, Clone)]
struct Storage {
    kind: StorageKind,
    key: Rc<str>,
    numel: u64,
}

impl Storage {
    fn element_size(&self) -> u64 {
        match &self.kind {
            StorageKind::Typed(d) => d.size() as u64,
            StorageKind::Untyped | StorageKind::Unsupported(_) => 1,
        }
    }
}

/// A tensor as the pickle describes it; its bytes are read from the archive later.
#[derive(Debug, Clone)]
struct TensorMeta {
    storage: Storage,
    /// `Err(name)` for a dtype this reader does not support.
    dtype: Result<DType, String>,
    /// In elements of `dtype`, as are the strides.
    offset: u64,
    shape: Vec<u64>,
    stride: Vec<u64>,
}

fn describe(objs: &[Obj], v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(b) => format!("bool {}", if *b { "True" } else { "False" }),
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {f:?}"),
        Value::Str(s) => format!("str {:?}", truncate(s, 40)),
        Value::Bytes(b) => format!("bytes ({} long)", b.len()),
        Value::Obj(i) => match &objs[*i] {
            Obj::Tuple(t) => format!("tuple of {}", t.len()),
            Obj::List(l) => format!("list of {}", l.len()),
            Obj::Dict(d) => format!("dict of {}", d.entries.len()),
            Obj::Global { module, name } => format!("global {module}.{name}"),
            Obj::Storage(_) => "storage".into(),
            Obj::Tensor(_) => "tensor".into(),
            Obj::Opaque(d) => format!("object {d}"),
        },
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Pickle machine
// ---------------------------------------------------------------------------------------

enum Fault {
    Unsupported { opcode: u8, offset: usize },
    Malformed { offset: usize, detail: String },
}

type PResult<T> = Result<T, Fault>;

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const BINFLOAT: u8 = b'G';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
}

/// Python's name for a pickle opcode, for error messages.
fn opcode_name(code: u8) -> &'static str {
    match code {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run, for error messages.
    op_start: usize,
    stack: Vec<Value>,
    /// Stack heights at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    objs: Vec<Obj>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Machine {
            data,
            pos: 0,
            op_start: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            objs: Vec::new(),
        }
    }

    fn bad<T>(&self, detail: impl Into<String>) -> PResult<T> {
        Err(Fault::Malformed {
            offset: self.op_start,
            detail: detail.into(),
        })
    }

    // --- reading the byte stream -------------------------------------------------------

    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let data: &'a [u8] = self.data;
        match self.pos.checked_add(n).filter(|&end| end <= data.len()) {
            Some(end) => {
                let s = &data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self.bad(format!(
                "{} needs {n} more bytes, {} left (truncated?)",
                opcode_name(data[self.op_start]),
                data.len() - self.pos
            )),
        }
    }

    fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32_le(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A length given as a u64 (protocol 4 opcodes), as usize.
    fn len_u64(&mut self) -> PResult<usize> {
        let n = u64::from_le_bytes(self.array()?);
        match usize::try_from(n) {
            Ok(n) => Ok(n),
            Err(_) => self.bad(format!("length {n} too large")),
        }
    }

    /// A newline-terminated line (GLOBAL's operands), without the newline.
    fn line(&mut self) -> PResult<&'a str> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.bad("GLOBAL operand without a newline (truncated?)");
        };
        self.pos += n + 1;
        match std::str::from_utf8(&rest[..n]) {
            Ok(s) => Ok(s),
            Err(_) => self.bad("GLOBAL operand is not UTF-8"),
        }
    }

    fn utf8(&self, bytes: &[u8]) -> PResult<Value> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(Rc::from(s))),
            Err(e) => self.bad(format!("string is not valid UTF-8 ({e})")),
        }
    }

    // --- stack ---------------------------------------------------------------------------

    /// Stack height below which the current MARK frame may not reach.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    fn pop(&mut self) -> PResult<Value> {
        if self.stack.len() <= self.floor() {
            return self.bad("stack underflow");
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.bad("stack underflow"),
        }
    }

    fn top(&self) -> PResult<&Value> {
        if self.stack.len() <= self.floor() {
            return self.bad("stack underflow");
        }
        match self.stack.last() {
            Some(v) => Ok(v),
            None => self.bad("stack underflow"),
        }
    }

    /// Everything pushed since the last MARK, which is removed.
    fn pop_mark(&mut self) -> PResult<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return self.bad("no MARK to pop to");
        };
        // `pop` never goes below the innermost mark, so `mark <= len` holds; `min` keeps
        // `split_off` safe regardless.
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn alloc(&mut self, obj: Obj) -> Value {
        self.objs.push(obj);
        Value::Obj(self.objs.len() - 1)
    }

    fn memo_put(&mut self, index: u32) -> PResult<()> {
        let v = self.top()?.clone();
        self.memo.insert(index, v);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> PResult<()> {
        match self.memo.get(&index) {
            Some(v) => {
                let v = v.clone();
                self.push(v);
                Ok(())
            }
            None => self.bad(format!("memo index {index} was never stored")),
        }
    }

    /// Index of the arena object on top of the stack (the target of APPEND, SETITEM, …).
    fn top_obj(&self, what: &str) -> PResult<usize> {
        match self.top()? {
            Value::Obj(i) => Ok(*i),
            other => self.bad(format!("{what} on {}", describe(&self.objs, other))),
        }
    }

    fn extend_list(&mut self, items: Vec<Value>, what: &str) -> PResult<()> {
        let target = self.top_obj(what)?;
        match &mut self.objs[target] {
            Obj::List(list) => {
                list.extend(items);
                Ok(())
            }
            // An unknown list-like class: its items do not matter here.
            Obj::Opaque(_) => Ok(()),
            _ => {
                let d = describe(&self.objs, &Value::Obj(target));
                self.bad(format!("{what} on {d}"))
            }
        }
    }

    fn set_items(&mut self, items: Vec<Value>, what: &str) -> PResult<()> {
        if !items.len().is_multiple_of(2) {
            return self.bad(format!("{what} with an odd number of items"));
        }
        let target = self.top_obj(what)?;
        match &mut self.objs[target] {
            Obj::Dict(dict) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    dict.insert(k, v);
                }
                Ok(())
            }
            Obj::Opaque(_) => Ok(()),
            _ => {
                let d = describe(&self.objs, &Value::Obj(target));
                self.bad(format!("{what} on {d}"))
            }
        }
    }

    // --- the loop ------------------------------------------------------------------------

    fn run(mut self) -> PResult<(Vec<Obj>, Value)> {
        loop {
            self.op_start = self.pos;
            let Some(&code) = self.data.get(self.pos) else {
                return self.bad("the pickle ends without STOP (truncated?)");
            };
            self.pos += 1;
            match code {
                op::PROTO => {
                    let version = self.u8()?;
                    if version > MAX_PROTOCOL {
                        return self.bad(format!("pickle protocol {version} is not supported"));
                    }
                }
                op::FRAME => {
                    self.len_u64()?;
                }
                op::STOP => {
                    let root = self.pop()?;
                    return Ok((self.objs, root));
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.stack.len() > self.floor() {
                        self.pop()?;
                    } else {
                        self.pop_mark()?;
                    }
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DUP => {
                    let v = self.top()?.clone();
                    self.push(v);
                }

                // Scalars and strings.
                op::NONE => self.push(Value::None),
                op::NEWTRUE => self.push(Value::Bool(true)),
                op::NEWFALSE => self.push(Value::Bool(false)),
                op::BININT1 => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)));
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(v)));
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(v)));
                }
                op::LONG1 => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    let v = self.long(bytes);
                    self.push(v);
                }
                op::LONG4 => {
                    let n = i32::from_le_bytes(self.array()?);
                    let Ok(n) = usize::try_from(n) else {
                        return self.bad(format!("LONG4 with negative length {n}"));
                    };
                    let bytes = self.take(n)?;
                    let v = self.long(bytes);
                    self.push(v);
                }
                op::BINFLOAT => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Value::Float(v));
                }
                op::SHORT_BINUNICODE => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    let v = self.utf8(b)?;
                    self.push(v);
                }
                op::BINUNICODE => {
                    let n = self.u32_le()? as usize;
                    let b = self.take(n)?;
                    let v = self.utf8(b)?;
                    self.push(v);
                }
                op::BINUNICODE8 => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    let v = self.utf8(b)?;
                    self.push(v);
                }
                // Python 2 `str`: decoded as text, as torch.load does for ASCII.
                op::SHORT_BINSTRING => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    self.push(Value::Str(Rc::from(String::from_utf8_lossy(b).as_ref())));
                }
                op::BINSTRING => {
                    let n = i32::from_le_bytes(self.array()?);
                    let Ok(n) = usize::try_from(n) else {
                        return self.bad(format!("BINSTRING with negative length {n}"));
                    };
                    let b = self.take(n)?;
                    self.push(Value::Str(Rc::from(String::from_utf8_lossy(b).as_ref())));
                }
                op::SHORT_BINBYTES => {
                    let n = usize::from(self.u8()?);
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                op::BINBYTES => {
                    let n = self.u32_le()? as usize;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }
                op::BINBYTES8 => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    self.push(Value::Bytes(Rc::from(b)));
                }

                // Containers.
                op::EMPTY_TUPLE => {
                    let v = self.alloc(Obj::Tuple(Vec::new()));
                    self.push(v);
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let v = self.alloc(Obj::Tuple(items));
                    self.push(v);
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::Tuple(items));
                    self.push(v);
                }
                op::EMPTY_LIST | op::EMPTY_SET => {
                    let v = self.alloc(Obj::List(Vec::new()));
                    self.push(v);
                }
                op::LIST | op::FROZENSET => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::List(items));
                    self.push(v);
                }
                op::APPEND => {
                    let item = self.pop()?;
                    self.extend_list(vec![item], "APPEND")?;
                }
                op::APPENDS | op::ADDITEMS => {
                    let items = self.pop_mark()?;
                    self.extend_list(items, opcode_name(code))?;
                }
                op::EMPTY_DICT => {
                    let v = self.alloc(Obj::Dict(Dict::default()));
                    self.push(v);
                }
                op::DICT => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::Dict(Dict::default()));
                    self.push(v);
                    self.set_items(items, "DICT")?;
                }
                op::SETITEM => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value], "SETITEM")?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    self.set_items(items, "SETITEMS")?;
                }

                // Memo.
                op::BINPUT => {
                    let i = self.u8()?;
                    self.memo_put(u32::from(i))?;
                }
                op::LONG_BINPUT => {
                    let i = self.u32_le()?;
                    self.memo_put(i)?;
                }
                op::MEMOIZE => {
                    let Ok(i) = u32::try_from(self.memo.len()) else {
                        return self.bad("memo is full");
                    };
                    self.memo_put(i)?;
                }
                op::BINGET => {
                    let i = self.u8()?;
                    self.memo_get(u32::from(i))?;
                }
                op::LONG_BINGET => {
                    let i = self.u32_le()?;
                    self.memo_get(i)?;
                }

                // Objects.
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let v = self.alloc(Obj::Global {
                        module: Rc::from(module),
                        name: Rc::from(name),
                    });
                    self.push(v);
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return self.bad("STACK_GLOBAL operands are not strings");
                    };
                    let v = self.alloc(Obj::Global { module, name });
                    self.push(v);
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(&callable, &args, 0)?;
                    self.push(v);
                }
                op::NEWOBJ => {
                    let _args = self.pop()?;
                    let class = self.pop()?;
                    let v = self.instantiate(&class)?;
                    self.push(v);
                }
                op::NEWOBJ_EX => {
                    let _kwargs = self.pop()?;
                    let _args = self.pop()?;
                    let class = self.pop()?;
                    let v = self.instantiate(&class)?;
                    self.push(v);
                }
                op::BUILD => {
                    // `__setstate__`: attributes of objects we do not model (an
                    // OrderedDict's `_metadata`, a Namespace's fields) are not needed.
                    let _state = self.pop()?;
                    self.top()?;
                }
                op::BINPERSID => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(&pid)?;
                    self.push(v);
                }
                _ => {
                    return Err(Fault::Unsupported {
                        opcode: code,
                        offset: self.op_start,
                    })
                }
            }
        }
    }

    /// A little-endian two's-complement integer (LONG1/LONG4).
    fn long(&mut self, bytes: &[u8]) -> Value {
        if bytes.len() > 8 {
            return self.alloc(Obj::Opaque(format!("int of {} bytes", bytes.len())));
        }
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut buf = if negative { [0xff; 8] } else { [0; 8] };
        buf[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(buf))
    }

    fn global_name(&self, v: &Value) -> Option<(Rc<str>, Rc<str>)> {
        match v {
            Value::Obj(i) => match &self.objs[*i] {
                Obj::Global { module, name } => Some((module.clone(), name.clone())),
                _ => None,
            },
            _ => None,
        }
    }

    /// NEWOBJ: `cls.__new__(cls, *args)`.
    fn instantiate(&mut self, class: &Value) -> PResult<Value> {
        match self.global_name(class) {
            Some((m, n)) if &*m == "collections" && &*n == "OrderedDict" => {
                Ok(self.alloc(Obj::Dict(Dict::default())))
            }
            Some((m, n)) => Ok(self.alloc(Obj::Opaque(format!("{m}.{n}")))),
            None => {
                let d = describe(&self.objs, class);
                Ok(self.alloc(Obj::Opaque(format!("instance of {d}"))))
            }
        }
    }

    /// The items of a tuple (or list) argument.
    fn items(&self, v: &Value, what: &str) -> PResult<Vec<Value>> {
        match v {
            Value::Obj(i) => match &self.objs[*i] {
                Obj::Tuple(t) | Obj::List(t) => Ok(t.clone()),
                _ => self.bad(format!(
                    "{what}: expected a tuple, found {}",
                    describe(&self.objs, v)
                )),
            },
            _ => self.bad(format!(
                "{what}: expected a tuple, found {}",
                describe(&self.objs, v)
            )),
        }
    }

    /// REDUCE: `callable(*args)` for the few callables torch.save uses; anything else is
    /// an opaque object.
    fn call(&mut self, callable: &Value, args: &Value, depth: usize) -> PResult<Value> {
        let Some((module, name)) = self.global_name(callable) else {
            let d = describe(&self.objs, callable);
            return Ok(self.alloc(Obj::Opaque(format!("result of calling {d}"))));
        };
        match (&*module, &*name) {
            ("collections", "OrderedDict") | ("builtins", "dict") => {
                let args = self.items(args, "OrderedDict")?;
                let v = self.alloc(Obj::Dict(Dict::default()));
                // `OrderedDict([(k, v), ...])`; torch.save passes `()` and uses SETITEMS.
                if let Some(pairs) = args.first() {
                    let mut items = Vec::new();
                    for pair in self.items(pairs, "OrderedDict items")? {
                        let kv = self.items(&pair, "OrderedDict item")?;
                        if kv.len() != 2 {
                            return self.bad("OrderedDict item is not a (key, value) pair");
                        }
                        items.extend(kv);
                    }
                    self.push(v.clone());
                    self.set_items(items, "OrderedDict")?;
                    self.stack.pop();
                }
                Ok(v)
            }
            ("torch._utils", "_rebuild_tensor") => self.rebuild_tensor(args, 1),
            ("torch._utils", "_rebuild_tensor_v2") => self.rebuild_tensor(args, 2),
            ("torch._utils", "_rebuild_tensor_v3") => self.rebuild_tensor(args, 3),
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                let args = self.items(args, &name)?;
                match args.first() {
                    Some(t @ Value::Obj(i)) if matches!(self.objs[*i], Obj::Tensor(_)) => {
                        Ok(t.clone())
                    }
                    other => {
                        let d = other.map_or("nothing".into(), |v| describe(&self.objs, v));
                        self.bad(format!("{name}: expected a tensor, found {d}"))
                    }
                }
            }
            // Tensor subclasses: `(func, type, args, state)`, rebuilt by `func(*args)`.
            ("torch._tensor", "_rebuild_from_type_v2") => {
                let a = self.items(args, &name)?;
                if a.len() < 3 {
                    return self.bad(format!("{name}: {} arguments, expected 4", a.len()));
                }
                if depth >= MAX_REBUILD_WRAPPERS {
                    return self.bad(format!(
                        "{name} nested more than {MAX_REBUILD_WRAPPERS} deep"
                    ));
                }
                self.call(&a[0], &a[2], depth + 1)
            }
            _ => Ok(self.alloc(Obj::Opaque(format!("{module}.{name}")))),
        }
    }

    fn nonneg_int(&self, v: &Value, what: &str) -> PResult<u64> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            other => self.bad(format!(
                "{what}: expected a non-negative int, found {}",
                describe(&self.objs, other)
            )),
        }
    }

    /// `_rebuild_tensor(storage, offset, size, stride)`, v2 adds
    /// `(requires_grad, backward_hooks[, metadata])`, v3 adds a `dtype` after those.
    fn rebuild_tensor(&mut self, args: &Value, version: u8) -> PResult<Value> {
        let what = "tensor";
        let a = self.items(args, what)?;
        let needed = match version {
            1 => 4,
            2 => 6,
            _ => 7,
        };
        if a.len() < needed {
            return self.bad(format!(
                "_rebuild_tensor_v{version} with {} arguments, expected at least {needed}",
                a.len()
            ));
        }
        let storage = match &a[0] {
            Value::Obj(i) => match &self.objs[*i] {
                Obj::Storage(s) => s.clone(),
                _ => {
                    return self.bad(format!(
                        "{what}: expected a storage, found {}",
                        describe(&self.objs, &a[0])
                    ))
                }
            },
            other => {
                return self.bad(format!(
                    "{what}: expected a storage, found {}",
                    describe(&self.objs, other)
                ))
            }
        };
        let offset = self.nonneg_int(&a[1], "tensor storage offset")?;
        let shape = self
            .items(&a[2], "tensor size")?
            .iter()
            .map(|v| self.nonneg_int(v, "tensor size"))
            .collect::<PResult<Vec<u64>>>()?;
        let stride = self
            .items(&a[3], "tensor stride")?
            .iter()
            .map(|v| self.nonneg_int(v, "tensor stride"))
            .collect::<PResult<Vec<u64>>>()?;
        if shape.len() != stride.len() {
            return self.bad(format!(
                "tensor has {} sizes but {} strides",
                shape.len(),
                stride.len()
            ));
        }
        let dtype = if version == 3 {
            match self.global_name(&a[6]) {
                Some((m, n)) if &*m == "torch" => {
                    DType::from_torch_name(&n).ok_or_else(|| n.to_string())
                }
                _ => {
                    let d = describe(&self.objs, &a[6]);
                    return self.bad(format!(
                        "_rebuild_tensor_v3: expected a torch dtype, found {d}"
                    ));
                }
            }
        } else {
            match &storage.kind {
                StorageKind::Typed(d) => Ok(*d),
                StorageKind::Untyped => Ok(DType::U8),
                StorageKind::Unsupported(n) => Err(n.clone()),
            }
        };
        Ok(self.alloc(Obj::Tensor(TensorMeta {
            storage,
            dtype,
            offset,
            shape,
            stride,
        })))
    }

    /// BINPERSID: `('storage', storage_class, key, location, numel)`.
    fn persistent_load(&mut self, pid: &Value) -> PResult<Value> {
        let a = self.items(pid, "persistent id")?;
        let tag = match a.first() {
            Some(Value::Str(s)) => s.to_string(),
            Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        if tag != "storage" || a.len() < 5 {
            let d = describe(&self.objs, pid);
            return self.bad(format!(
                "persistent id {d} is not ('storage', class, key, location, numel)"
            ));
        }
        let kind = match self.global_name(&a[1]) {
            Some((m, n)) => match (&*m, &*n) {
                ("torch" | "torch.storage", "UntypedStorage") => StorageKind::Untyped,
                ("torch" | "torch.cuda", class) => match DType::from_storage_class(class) {
                    Some(d) => StorageKind::Typed(d),
                    None => StorageKind::Unsupported(format!("{m}.{n}")),
                },
                _ => StorageKind::Unsupported(format!("{m}.{n}")),
            },
            None => {
                let d = describe(&self.objs, &a[1]);
                return self.bad(format!("storage class is {d}, expected a global"));
            }
        };
        let key: Rc<str> = match &a[2] {
            Value::Str(s) => s.clone(),
            Value::Int(i) => Rc::from(i.to_string().as_str()),
            other => {
                let d = describe(&self.objs, other);
                return self.bad(format!("storage key is {d}, expected a str"));
            }
        };
        let numel = self.nonneg_int(&a[4], "storage numel")?;
        Ok(self.alloc(Obj::Storage(Storage { kind, key, numel })))
    }
}

// ---------------------------------------------------------------------------------------
// Flattening
// ---------------------------------------------------------------------------------------

struct Flat {
    /// (dotted name, arena index of the tensor)
    tensors: Vec<(String, usize)>,
    skipped: Vec<String>,
}

/// Walks the root dict. Each container is expanded once (a second reference, or a cycle,
/// is a skipped leaf), so the work is linear in the pickle's size.
fn flatten(objs: &[Obj], root: &Value) -> Result<Flat, String> {
    let root_index = match root {
        Value::Obj(i) if matches!(objs[*i], Obj::Dict(_)) => *i,
        other => {
            return Err(format!(
            "expected a dict at the top (a state_dict, or {{'model': state_dict, ...}}), found {}",
            describe(objs, other)
        ))
        }
    };
    let mut walker = Walker {
        objs,
        reaches_tensor: reaches_tensor(objs),
        expanded: vec![false; objs.len()],
        flat: Flat {
            tensors: Vec::new(),
            skipped: Vec::new(),
        },
    };
    walker.expanded[root_index] = true;
    walker.children(root_index, "", 0)?;
    Ok(walker.flat)
}

struct Walker<'a> {
    objs: &'a [Obj],
    reaches_tensor: Vec<bool>,
    expanded: Vec<bool>,
    flat: Flat,
}

impl Walker<'_> {
    fn visit(&mut self, v: &Value, name: String, depth: usize) -> Result<(), String> {
        let Value::Obj(i) = v else {
            self.flat.skipped.push(name);
            return Ok(());
        };
        let i = *i;
        let expandable = match &self.objs[i] {
            Obj::Tensor(_) => {
                self.flat.tensors.push((name, i));
                return Ok(());
            }
            Obj::Dict(d) => !d.entries.is_empty(),
            Obj::List(items) | Obj::Tuple(items) => !items.is_empty() && self.reaches_tensor[i],
            _ => false,
        } && !self.expanded[i];
        if !expandable {
            self.flat.skipped.push(name);
            return Ok(());
        }
        if depth >= MAX_NESTING {
            return Err(format!(
                "containers nested more than {MAX_NESTING} levels deep at {}",
                truncate(&name, 200)
            ));
        }
        self.expanded[i] = true;
        self.children(i, &name, depth + 1)
    }

    fn children(&mut self, i: usize, name: &str, depth: usize) -> Result<(), String> {
        let join = |key: String| {
            if name.is_empty() {
                key
            } else {
                format!("{name}.{key}")
            }
        };
        let objs = self.objs;
        match &objs[i] {
            Obj::Dict(d) => {
                for (k, v) in &d.entries {
                    self.visit(v, join(key_string(objs, k)), depth)?;
                }
            }
            Obj::List(items) | Obj::Tuple(items) => {
                for (n, v) in items.iter().enumerate() {
                    self.visit(v, join(n.to_string()), depth)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Which arena objects have a tensor somewhere below them: a breadth-first search from
/// every tensor along reversed container edges, linear and safe on cycles.
fn reaches_tensor(objs: &[Obj]) -> Vec<bool> {
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); objs.len()];
    let mut edge = |parent: usize, child: &Value| {
        if let Value::Obj(c) = child {
            parents[*c].push(parent);
        }
    };
    for (i, o) in objs.iter().enumerate() {
        match o {
            Obj::Tuple(items) | Obj::List(items) => items.iter().for_each(|c| edge(i, c)),
            Obj::Dict(d) => d.entries.iter().for_each(|(_, c)| edge(i, c)),
            _ => {}
        }
    }
    let mut reached = vec![false; objs.len()];
    let mut queue: VecDeque<usize> = VecDeque::new();
    for (i, o) in objs.iter().enumerate() {
        if matches!(o, Obj::Tensor(_)) {
            reached[i] = true;
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        for &p in &parents[i] {
            if !reached[p] {
                reached[p] = true;
                queue.push_back(p);
            }
        }
    }
    reached
}

fn key_string(objs: &[Obj], key: &Value) -> String {
    match key {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => (if *b { "True" } else { "False" }).into(),
        Value::None => "None".into(),
        Value::Float(f) => format!("{f:?}"),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Obj(_) => format!("<{}>", describe(objs, key)),
    }
}

// ---------------------------------------------------------------------------------------
// Tensor data
// ---------------------------------------------------------------------------------------

/// Reads the storages and lays every tensor out contiguously. Each storage is read once
/// and dropped after its last tensor.
fn materialize<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    prefix: &str,
    objs: &[Obj],
    tensors: Vec<(String, usize)>,
    big_endian: bool,
    origin: &Path,
) -> Result<Vec<(String, RawTensor)>, TorchPickleError> {
    let path = || origin.to_path_buf();
    // `flatten` lists only tensors, so nothing is dropped here.
    let tensors: Vec<(String, &TensorMeta)> = tensors
        .into_iter()
        .filter_map(|(name, i)| match &objs[i] {
            Obj::Tensor(m) => Some((name, m)),
            _ => None,
        })
        .collect();
    let mut uses: HashMap<Rc<str>, usize> = HashMap::new();
    for (_, meta) in &tensors {
        *uses.entry(meta.storage.key.clone()).or_default() += 1;
    }
    let mut cache: HashMap<Rc<str>, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(tensors.len());

    for (name, meta) in tensors {
        let dtype = meta
            .dtype
            .clone()
            .map_err(|dtype| TorchPickleError::UnsupportedDtype {
                path: path(),
                tensor: name.clone(),
                dtype,
            })?;
        let key = &meta.storage.key;
        if key.is_empty()
            || key.contains(['/', '\\'])
            || key.starts_with('.')
            || key.chars().any(char::is_control)
        {
            return Err(TorchPickleError::BadStorageKey {
                path: path(),
                tensor: name,
                key: key.to_string(),
                detail: "not a plain entry name".into(),
            });
        }
        let entry = format!("{prefix}/data/{key}");
        let needed = meta
            .storage
            .numel
            .checked_mul(meta.storage.element_size())
            .ok_or_else(|| TorchPickleError::BadTensor {
                path: path(),
                tensor: name.clone(),
                detail: format!("storage of {} elements is too large", meta.storage.numel),
            })?;

        if !cache.contains_key(key) {
            let bytes = read_storage(zip, &entry, needed).map_err(|e| match e {
                StorageFault::Missing => TorchPickleError::BadStorageKey {
                    path: path(),
                    tensor: name.clone(),
                    key: key.to_string(),
                    detail: format!("the archive has no entry {entry}"),
                },
                StorageFault::Short(actual) => TorchPickleError::TruncatedStorage {
                    path: path(),
                    tensor: name.clone(),
                    entry: entry.clone(),
                    needed,
                    actual,
                },
                StorageFault::Read(detail) => TorchPickleError::Entry {
                    path: path(),
                    entry: entry.clone(),
                    detail,
                },
            })?;
            cache.insert(key.clone(), bytes);
        }
        let have = cache.get(key).map_or(0, |b| b.len() as u64);
        if have < needed {
            // Two persistent ids disagree on the size of one storage.
            return Err(TorchPickleError::TruncatedStorage {
                path: path(),
                tensor: name,
                entry,
                needed,
                actual: have,
            });
        }

        let last_use = match uses.get_mut(key) {
            Some(n) => {
                *n -= 1;
                *n == 0
            }
            None => true,
        };
        let bad = |detail: String| TorchPickleError::BadTensor {
            path: path(),
            tensor: name.clone(),
            detail,
        };
        let storage: &[u8] = cache.get(key).map_or(&[], Vec::as_slice);
        let layout = Layout::new(meta, dtype, storage.len()).map_err(bad)?;
        let mut data = if last_use && layout.is_whole(storage.len()) {
            cache.remove(key).unwrap_or_default()
        } else {
            let data = layout.gather(storage).map_err(bad)?;
            if last_use {
                cache.remove(key);
            }
            data
        };
        if big_endian && dtype.size() > 1 {
            data.chunks_exact_mut(dtype.size())
                .for_each(<[u8]>::reverse);
        }
        out.push((
            name,
            RawTensor {
                dtype,
                shape: layout.shape,
                data,
            },
        ));
    }
    Ok(out)
}

enum StorageFault {
    Missing,
    Short(u64),
    Read(String),
}

/// The first `needed` bytes of the storage entry.
fn read_storage<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    entry: &str,
    needed: u64,
) -> Result<Vec<u8>, StorageFault> {
    let file = match zip.by_name(entry) {
        Ok(f) => f,
        Err(ZipError::FileNotFound) => return Err(StorageFault::Missing),
        Err(e) => return Err(StorageFault::Read(e.to_string())),
    };
    let declared = file.size();
    if declared < needed {
        return Err(StorageFault::Short(declared));
    }
    // Start small: the declared size is the file's word and may be a lie.
    let mut buf = Vec::new();
    let initial = usize::try_from(needed.min(64 << 20)).unwrap_or(0);
    buf.try_reserve_exact(initial)
        .map_err(|e| StorageFault::Read(e.to_string()))?;
    // Read to the entry's end when it is exactly the storage (as torch writes it), so
    // the zip reader checks the CRC.
    let limit = if declared == needed {
        needed.saturating_add(1)
    } else {
        needed
    };
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| StorageFault::Read(e.to_string()))?;
    if (buf.len() as u64) < needed {
        return Err(StorageFault::Short(buf.len() as u64));
    }
    buf.truncate(needed as usize);
    Ok(buf)
}

/// A validated view of a storage, in bytes.
struct Layout {
    shape: Vec<usize>,
    /// Byte strides.
    strides: Vec<usize>,
    /// Byte offset of the first element.
    start: usize,
    elem: usize,
    numel: usize,
}

impl Layout {
    /// Checks that every element of the view lies inside `storage_len` bytes.
    fn new(meta: &TensorMeta, dtype: DType, storage_len: usize) -> Result<Layout, String> {
        let elem = dtype.size();
        let too_big = || {
            format!(
                "sizes {:?} and strides {:?} overflow",
                meta.shape, meta.stride
            )
        };
        let to_usize = |v: u64| usize::try_from(v).map_err(|_| too_big());
        let shape = meta
            .shape
            .iter()
            .map(|&s| to_usize(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut numel: usize = 1;
        for &s in &shape {
            numel = numel.checked_mul(s).ok_or_else(too_big)?;
        }
        let mut strides = Vec::with_capacity(shape.len());
        for &st in &meta.stride {
            strides.push(to_usize(st)?.checked_mul(elem).ok_or_else(too_big)?);
        }
        let start = to_usize(meta.offset)?
            .checked_mul(elem)
            .ok_or_else(too_big)?;
        if numel > 0 {
            // Byte just past the last element the view touches.
            let mut last = start;
            for (&s, &st) in shape.iter().zip(&strides) {
                last = (s - 1)
                    .checked_mul(st)
                    .and_then(|d| last.checked_add(d))
                    .ok_or_else(too_big)?;
            }
            let end = last.checked_add(elem).ok_or_else(too_big)?;
            if end > storage_len {
                return Err(format!(
                    "offset {}, sizes {:?} and strides {:?} reach byte {end} of a {storage_len}-byte storage",
                    meta.offset, meta.shape, meta.stride
                ));
            }
        }
        Ok(Layout {
            shape,
            strides,
            start,
            elem,
            numel,
        })
    }

    /// Whether the view is one contiguous row-major run of bytes.
    fn is_contiguous(&self) -> bool {
        let mut expected = self.elem;
        for (&s, &st) in self.shape.iter().zip(&self.strides).rev() {
            if s != 1 && st != expected {
                return false;
            }
            expected = expected.saturating_mul(s);
        }
        true
    }

    /// The view's elements in row-major order. Validated by [`Layout::new`] against
    /// `storage`, so every index below is in bounds.
    fn gather(&self, storage: &[u8]) -> Result<Vec<u8>, String> {
        let bytes = self
            .numel
            .checked_mul(self.elem)
            .ok_or_else(|| "tensor too large".to_string())?;
        let mut out = Vec::new();
        out.try_reserve_exact(bytes)
            .map_err(|e| format!("cannot allocate {bytes} bytes: {e}"))?;
        if bytes == 0 {
            return Ok(out);
        }
        if self.is_contiguous() {
            out.extend_from_slice(&storage[self.start..self.start + bytes]);
            return Ok(out);
        }
        // Innermost dimension as runs; an odometer over the outer ones.
        let (inner_len, inner_stride) = match (self.shape.last(), self.strides.last()) {
            (Some(&n), Some(&st)) => (n, st),
            _ => (1, self.elem),
        };
        let outer = &self.shape[..self.shape.len().saturating_sub(1)];
        let outer_strides = &self.strides[..outer.len()];
        let mut index = vec![0usize; outer.len()];
        let mut base = self.start;
        loop {
            if inner_stride == self.elem {
                out.extend_from_slice(&storage[base..base + inner_len * self.elem]);
            } else {
                for k in 0..inner_len {
                    let at = base + k * inner_stride;
                    out.extend_from_slice(&storage[at..at + self.elem]);
                }
            }
            // Advance the odometer; `base` follows it.
            let mut d = outer.len();
            loop {
                if d == 0 {
                    return Ok(out);
                }
                d -= 1;
                index[d] += 1;
                base += outer_strides[d];
                if index[d] < outer[d] {
                    break;
                }
                base -= outer_strides[d] * outer[d];
                index[d] = 0;
            }
        }
    }

    /// Whether the view is the whole storage, in order (then the bytes can be moved).
    fn is_whole(&self, storage_len: usize) -> bool {
        self.start == 0
            && self.is_contiguous()
            && self.numel.checked_mul(self.elem) == Some(storage_len)
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures come from the real `torch.save` (Python with torch: `$NPR_PYTHON`, else the
    //! crate's `.venv/bin/python`), which also writes, next to each checkpoint, the
    //! expected flattening and the raw little-endian bytes of every `.contiguous()` tensor;
    //! values are compared bit for bit. Malformed inputs are built here by hand.

    use super::*;
    use std::fs;
    use std::io::{Cursor, Write};
    use std::process::Command;

    /// Python side of the fixtures: `save(obj, path)` = `torch.save` plus `path.expected`,
    /// one line per leaf in the order this module must produce them:
    /// `T<TAB>name<TAB>dtype<TAB>d0,d1,..<TAB>hex of the contiguous bytes` or `S<TAB>name`.
    const PY_PRELUDE: &str = r#"
import argparse, collections, torch

def contains(v):
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, dict):
        return any(contains(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(contains(x) for x in v)
    return False

def keystr(k):
    if isinstance(k, bool):
        return 'True' if k else 'False'
    return 'None' if k is None else str(k)

def flat(v, name, out):
    join = lambda k: k if not name else name + '.' + k
    if isinstance(v, torch.Tensor):
        out.append(('T', name, v))
    elif isinstance(v, dict) and len(v) > 0:
        for k, x in v.items():
            flat(x, join(keystr(k)), out)
    elif isinstance(v, (list, tuple)) and len(v) > 0 and contains(v):
        for i, x in enumerate(v):
            flat(x, join(str(i)), out)
    else:
        out.append(('S', name))

def save(obj, path, **kw):
    torch.save(obj, path, **kw)
    out = []
    for k, x in obj.items():
        flat(x, keystr(k), out)
    with open(path + '.expected', 'w') as f:
        for e in out:
            if e[0] == 'S':
                f.write('S\t%s\n' % e[1])
                continue
            t = e[2].detach()
            raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()
            dtype = str(t.dtype).replace('torch.', '')
            f.write('T\t%s\t%s\t%s\t%s\n' % (e[1], dtype, ','.join(map(str, t.shape)), raw))

def small_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(collections.OrderedDict([
        ('conv1', torch.nn.Conv2d(3, 4, 3, stride=2, bias=False)),
        ('bn1', torch.nn.BatchNorm2d(4)),
        ('relu', torch.nn.ReLU()),
        ('pool', torch.nn.AdaptiveAvgPool2d(1)),
        ('flatten', torch.nn.Flatten()),
        ('fc1', torch.nn.Linear(4, 1)),
    ]))
    net.train()
    x = torch.randn(2, 3, 9, 9)
    return net, x
"#;

    fn python() -> PathBuf {
        std::env::var_os("NPR_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
            })
    }

    /// Runs `script` (after the prelude) in a fresh temp folder and returns the folder.
    fn python_fixtures(script: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let python = python();
        let out = Command::new(&python)
            .arg("-c")
            .arg(format!("{PY_PRELUDE}\n{script}"))
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}); these tests need Python with torch: set NPR_PYTHON",
                    python.display()
                )
            });
        assert!(
            out.status.success(),
            "fixture script failed under {}:\n{}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Reads `path` and checks names, order, dtypes, shapes and bytes against the manifest
    /// Python wrote beside it.
    fn assert_matches_python(path: &Path) -> StateDict {
        let sd = read_state_dict(path).unwrap_or_else(|e| panic!("{e}"));
        let manifest =
            fs::read_to_string(format!("{}.expected", path.display())).expect("manifest");
        let mut names = Vec::new();
        let mut skipped = Vec::new();
        for line in manifest.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f[0] {
                "T" => {
                    let (name, dtype, shape, hex) = (f[1], f[2], f[3], f[4]);
                    let t = sd.get(name).unwrap_or_else(|| panic!("{name} missing"));
                    assert_eq!(t.dtype.name(), dtype, "{name}");
                    let shape: Vec<usize> = if shape.is_empty() {
                        Vec::new()
                    } else {
                        shape.split(',').map(|s| s.parse().expect("dim")).collect()
                    };
                    assert_eq!(t.shape, shape, "{name}");
                    assert_eq!(t.data.len(), t.numel() * t.dtype.size(), "{name}");
                    assert!(t.data == from_hex(hex), "{name}: bytes differ from torch's");
                    names.push(name.to_string());
                }
                "S" => skipped.push(f[1].to_string()),
                other => panic!("bad manifest line kind {other}"),
            }
        }
        let got: Vec<&str> = sd.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got, names, "tensor names and order");
        assert_eq!(sd.skipped, skipped, "skipped names and order");
        sd
    }

    fn f32s(t: &RawTensor) -> Vec<f32> {
        assert_eq!(t.dtype, DType::F32);
        t.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    fn read_bytes(bytes: Vec<u8>) -> Result<StateDict, TorchPickleError> {
        read_state_dict_from_reader(Cursor::new(bytes), Path::new("test.pth"))
    }

    fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, data) in entries {
            w.start_file(*name, opts).expect("zip entry");
            w.write_all(data).expect("zip write");
        }
        w.finish().expect("zip finish").into_inner()
    }

    fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut z = ZipArchive::new(Cursor::new(bytes)).expect("zip");
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).expect("entry");
                let mut data = Vec::new();
                f.read_to_end(&mut data).expect("read entry");
                (f.name().to_string(), data)
            })
            .collect()
    }

    fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        zip_bytes(&refs)
    }

    /// Hand-written pickles, opcode by opcode.
    struct Pk(Vec<u8>);

    impl Pk {
        fn new() -> Self {
            Pk(vec![op::PROTO, 2])
        }
        fn op(&mut self, code: u8) -> &mut Self {
            self.0.push(code);
            self
        }
        fn str(&mut self, s: &str) -> &mut Self {
            self.0.push(op::BINUNICODE);
            self.0.extend((s.len() as u32).to_le_bytes());
            self.0.extend(s.as_bytes());
            self
        }
        fn int(&mut self, i: i32) -> &mut Self {
            self.0.push(op::BININT);
            self.0.extend(i.to_le_bytes());
            self
        }
        fn global(&mut self, module: &str, name: &str) -> &mut Self {
            self.0.push(op::GLOBAL);
            self.0.extend(format!("{module}\n{name}\n").as_bytes());
            self
        }
        fn ints(&mut self, v: &[i32]) -> &mut Self {
            self.op(op::MARK);
            v.iter().for_each(|&i| {
                self.int(i);
            });
            self.op(op::TUPLE)
        }
        /// `_rebuild_tensor_v2(('storage', torch.<class>, key, 'cpu', numel), ...)`, or v3
        /// with `dtype` after the backward hooks.
        fn tensor(&mut self, t: &Spec) -> &mut Self {
            let f = if t.v3_dtype.is_some() {
                "_rebuild_tensor_v3"
            } else {
                "_rebuild_tensor_v2"
            };
            self.global("torch._utils", f).op(op::MARK);
            self.op(op::MARK).str("storage").global("torch", t.class);
            self.str(t.key)
                .str("cpu")
                .int(t.numel)
                .op(op::TUPLE)
                .op(op::BINPERSID);
            self.int(t.offset)
                .ints(t.shape)
                .ints(t.stride)
                .op(op::NEWFALSE);
            self.global("collections", "OrderedDict")
                .op(op::EMPTY_TUPLE)
                .op(op::REDUCE);
            if let Some(d) = t.v3_dtype {
                self.global("torch", d);
            }
            self.op(op::TUPLE).op(op::REDUCE)
        }
        fn finish(&mut self) -> Vec<u8> {
            self.op(op::STOP);
            std::mem::take(&mut self.0)
        }
    }

    /// A tensor record for [`Pk::tensor`]: storage class, key, numel; view offset, shape,
    /// stride (in elements); the dtype argument of `_rebuild_tensor_v3`, if that is used.
    struct Spec<'a> {
        class: &'a str,
        key: &'a str,
        numel: i32,
        offset: i32,
        shape: &'a [i32],
        stride: &'a [i32],
        v3_dtype: Option<&'a str>,
    }

    fn spec<'a>(
        class: &'a str,
        numel: i32,
        offset: i32,
        shape: &'a [i32],
        stride: &'a [i32],
    ) -> Spec<'a> {
        Spec {
            class,
            key: "0",
            numel,
            offset,
            shape,
            stride,
            v3_dtype: None,
        }
    }

    /// A checkpoint whose pickle is `{'w': tensor}` over the one storage `data/0`.
    fn one_tensor_archive(t: &Spec, byteorder: &[u8], storage: &[u8]) -> Vec<u8> {
        let mut pk = Pk::new();
        pk.op(op::EMPTY_DICT).str("w").tensor(t);
        let pkl = pk.op(op::SETITEM).finish();
        zip_bytes(&[
            ("ckpt/data.pkl", &pkl),
            ("ckpt/byteorder", byteorder),
            ("ckpt/data/0", storage),
        ])
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    // --- real torch.save files -----------------------------------------------------------

    #[test]
    fn flat_conv_bn_state_dict_matches_torch() {
        let dir =
            python_fixtures("net, x = small_net()\nnet(x)\nsave(net.state_dict(), 'flat.pth')");
        let sd = assert_matches_python(&dir.path().join("flat.pth"));
        let names: Vec<&str> = sd.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv1.weight",
                "bn1.weight",
                "bn1.bias",
                "bn1.running_mean",
                "bn1.running_var",
                "bn1.num_batches_tracked",
                "fc1.weight",
                "fc1.bias"
            ]
        );
        assert!(sd.skipped.is_empty(), "{:?}", sd.skipped);
        let tracked = sd.get("bn1.num_batches_tracked").expect("tracked");
        assert_eq!(
            (tracked.dtype, tracked.shape.as_slice()),
            (DType::I64, &[][..])
        );
        assert_eq!(tracked.data, 1i64.to_le_bytes());
        let conv = sd.get("conv1.weight").expect("conv");
        assert_eq!(conv.shape, [4, 3, 3, 3]);
        // BatchNorm starts at weight 1, bias 0.
        assert_eq!(f32s(sd.get("bn1.weight").expect("bn")), [1.0; 4]);
    }

    #[test]
    fn wrapped_checkpoint_with_module_prefix_and_extras() {
        let dir = python_fixtures(
            r#"
net, x = small_net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
net(x).sum().backward()
opt.step()
save({'model': {'module.' + k: v for k, v in net.state_dict().items()},
      'epoch': 3,
      'opt': opt.state_dict(),
      'args': argparse.Namespace(lr=0.1, name='npr', sizes=[1, 2]),
      'best': {'acc': 0.5, 'big': 2**70, 'none': None, 'names': ('a', 'b'), 'empty': {}}},
     'wrapped.pth')
"#,
        );
        let sd = assert_matches_python(&dir.path().join("wrapped.pth"));
        assert_eq!(sd.tensors[0].0, "model.module.conv1.weight");
        assert!(sd.get("model.module.bn1.num_batches_tracked").is_some());
        assert!(
            sd.get("opt.state.0.exp_avg").is_some(),
            "optimizer tensors are kept"
        );
        for leaf in [
            "epoch",
            "opt.param_groups",
            "args",
            "best.acc",
            "best.big",
            "best.empty",
        ] {
            assert!(
                sd.skipped.iter().any(|s| s == leaf),
                "{leaf} not in {:?}",
                sd.skipped
            );
        }
    }

    #[test]
    fn views_with_offsets_strides_and_shared_storage() {
        let dir = python_fixtures(
            r#"
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
obj = {'base': base, 't': base.t(), 'slice': base[1:3, 2:5], 'step': base[:, ::2],
       'elem': base[2, 3], 'row': base[3], 'again': base,
       'expanded': torch.arange(3.).expand(2, 3), 'empty': torch.zeros(0, 5),
       'perm': torch.arange(60).reshape(3, 4, 5).permute(2, 0, 1),
       'list': [base[0], 7]}
assert obj['slice'].storage_offset() == 8 and not obj['t'].is_contiguous()
save(obj, 'views.pth')
"#,
        );
        let sd = assert_matches_python(&dir.path().join("views.pth"));
        let at = |name: &str| f32s(sd.get(name).expect(name));
        // Independent of Python's dump: the values of arange(24).reshape(4, 6).
        let t: Vec<f32> = (0..6)
            .flat_map(|j| (0..4).map(move |i| (i * 6 + j) as f32))
            .collect();
        assert_eq!(at("t"), t);
        assert_eq!(at("slice"), [8.0, 9.0, 10.0, 14.0, 15.0, 16.0]);
        assert_eq!(at("elem"), [15.0]);
        assert_eq!(sd.get("elem").expect("elem").shape, Vec::<usize>::new());
        assert_eq!(at("row"), [18.0, 19.0, 20.0, 21.0, 22.0, 23.0]);
        assert_eq!(at("expanded"), [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
        assert_eq!(sd.get("empty").expect("empty").shape, [0, 5]);
        assert_eq!(at("list.0"), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(sd.skipped.contains(&"list.1".to_string()));
    }

    #[test]
    fn half_bfloat16_bool_and_integer_dtypes() {
        let dir = python_fixtures(
            r#"
g = torch.Generator().manual_seed(1)
x = torch.randn(2, 3, generator=g)
obj = {'f16': x.half(), 'bf16': x.bfloat16(), 'f64': x.double(), 'bool': x > 0,
       'i8': (x * 50).to(torch.int8), 'u8': (x * 50 + 100).to(torch.uint8),
       'i16': (x * 1000).to(torch.int16), 'i32': (x * 1e6).to(torch.int32),
       'i64': (x * 1e12).to(torch.int64), 'f16_t': x.half().t(), 'bf16_s': x.bfloat16()[:, 1],
       'param': torch.nn.Parameter(x.clone())}
save(obj, 'dtypes.pth')
save(obj, 'no_byteorder.pth', _disable_byteorder_record=True)
"#,
        );
        let sd = assert_matches_python(&dir.path().join("dtypes.pth"));
        let dtypes: Vec<DType> = sd.tensors.iter().map(|(_, t)| t.dtype).collect();
        use DType::*;
        assert_eq!(
            dtypes,
            [F16, BF16, F64, Bool, I8, U8, I16, I32, I64, F16, BF16, F32]
        );
        // bfloat16 is the top half of the float32 (torch rounds to nearest even).
        let param = f32s(sd.get("param").expect("param"));
        let bf16 = &sd.get("bf16").expect("bf16").data;
        for (k, &p) in param.iter().enumerate() {
            let b =
                f32::from_bits(u32::from(u16::from_le_bytes([bf16[2 * k], bf16[2 * k + 1]])) << 16);
            assert!((b - p).abs() <= p.abs() / 128.0, "{b} vs {p}");
        }
        let without = assert_matches_python(&dir.path().join("no_byteorder.pth"));
        assert_eq!(without.tensors, sd.tensors);
    }

    #[test]
    fn unsupported_dtype_and_legacy_format_are_explained() {
        let dir = python_fixtures(
            r#"
torch.save({'w': torch.arange(4).to(torch.uint16)}, 'u16.pth')
torch.save({'w': torch.ones(2)}, 'legacy.pth', _use_new_zipfile_serialization=False)
"#,
        );
        let err = read_state_dict(&dir.path().join("u16.pth")).expect_err("uint16");
        assert!(
            matches!(&err, TorchPickleError::UnsupportedDtype { tensor, dtype, .. }
            if tensor == "w" && dtype == "uint16"),
            "{err}"
        );
        let legacy = dir.path().join("legacy.pth");
        let err = read_state_dict(&legacy).expect_err("legacy");
        let msg = err.to_string();
        assert!(matches!(err, TorchPickleError::NotZip { .. }), "{msg}");
        assert!(
            msg.contains("legacy") && msg.contains("torch.save(torch.load(p), p2)"),
            "{msg}"
        );
        assert!(msg.contains(&legacy.display().to_string()), "{msg}");
    }

    #[test]
    fn damaged_real_checkpoints_give_errors() {
        let dir = python_fixtures("net, x = small_net()\nsave(net.state_dict(), 'net.pth')");
        let path = dir.path().join("net.pth");
        let bytes = fs::read(&path).expect("read");

        // Cut anywhere: an error, never a panic.
        for len in (0..bytes.len()).step_by(7) {
            let r = read_bytes(bytes[..len].to_vec());
            assert!(r.is_err(), "cut at {len} of {} still loaded", bytes.len());
        }
        let cut = dir.path().join("cut.pth");
        fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let err = read_state_dict(&cut).expect_err("cut");
        assert!(matches!(err, TorchPickleError::CorruptZip { .. }), "{err}");

        let entries = unzip(&bytes);
        let storage = |e: &(String, Vec<u8>)| e.0.ends_with("/data/0");
        // Storage entry gone.
        let gone: Vec<_> = entries.iter().filter(|e| !storage(e)).cloned().collect();
        let err = read_bytes(rezip(&gone)).expect_err("no storage");
        assert!(
            matches!(&err, TorchPickleError::BadStorageKey { tensor, .. } if tensor == "conv1.weight"),
            "{err}"
        );
        // Storage entry short.
        let short: Vec<_> = entries
            .iter()
            .map(|e| {
                if storage(e) {
                    (e.0.clone(), e.1[..e.1.len() - 4].to_vec())
                } else {
                    e.clone()
                }
            })
            .collect();
        let err = read_bytes(rezip(&short)).expect_err("short storage");
        assert!(
            matches!(
                &err,
                TorchPickleError::TruncatedStorage {
                    needed: 432,
                    actual: 428,
                    ..
                }
            ),
            "{err}"
        );
        // data.pkl gone.
        let no_pkl: Vec<_> = entries
            .iter()
            .filter(|e| !e.0.ends_with("data.pkl"))
            .cloned()
            .collect();
        let err = read_bytes(rezip(&no_pkl)).expect_err("no data.pkl");
        assert!(
            matches!(err, TorchPickleError::MissingDataPkl { .. }),
            "{err}"
        );
    }

    #[test]
    fn mutated_pickles_never_panic() {
        let dir = python_fixtures(
            "net, x = small_net()\nsave({'model': net.state_dict(), 'epoch': 1, 'v': net.fc1.weight.t()}, 'net.pth')",
        );
        let entries = unzip(&fs::read(dir.path().join("net.pth")).expect("read"));
        let pkl_at = entries
            .iter()
            .position(|e| e.0.ends_with("data.pkl"))
            .expect("pkl");
        let pkl = entries[pkl_at].1.clone();
        let (mut ok, mut failed) = (0, 0);
        for (at, &byte) in pkl.iter().enumerate() {
            for new in [0x00, 0xff, byte ^ 0x80, byte.wrapping_add(1)] {
                let mut mutated = entries.clone();
                mutated[pkl_at].1[at] = new;
                match read_bytes(rezip(&mutated)) {
                    Ok(_) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            // And cut short there.
            let mut cut = entries.clone();
            cut[pkl_at].1.truncate(at);
            assert!(
                read_bytes(rezip(&cut)).is_err(),
                "pickle cut at {at} loaded"
            );
        }
        assert!(ok > 0 && failed > 0, "{ok} loaded, {failed} failed");
    }

    // --- hand-made archives --------------------------------------------------------------

    #[test]
    fn empty_and_non_zip_files_are_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty.pth");
        fs::write(&empty, b"").expect("write");
        let err = read_state_dict(&empty).expect_err("empty");
        assert!(
            matches!(&err, TorchPickleError::NotZip { detail, .. } if detail.contains("empty")),
            "{err}"
        );
        let text = dir.path().join("notes.pth");
        fs::write(&text, b"hello, this is not a checkpoint").expect("write");
        let err = read_state_dict(&text).expect_err("text");
        assert!(matches!(err, TorchPickleError::NotZip { .. }), "{err}");
        assert!(read_bytes(b"PK".to_vec()).is_err());
        let missing = read_state_dict(&dir.path().join("missing.pth")).expect_err("missing");
        assert!(matches!(missing, TorchPickleError::Io { .. }), "{missing}");
    }

    #[test]
    fn untyped_storage_with_v3_dtype() {
        // float16 1.0, 2.0, 3.0, 4.0 in an UntypedStorage of 8 bytes; view [1..3].
        let storage: Vec<u8> = [0x3c00u16, 0x4000, 0x4200, 0x4400]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let zip = one_tensor_archive(
            &Spec {
                v3_dtype: Some("float16"),
                ..spec("UntypedStorage", 8, 1, &[2], &[1])
            },
            b"little",
            &storage,
        );
        let sd = read_bytes(zip).unwrap_or_else(|e| panic!("{e}"));
        let t = sd.get("w").expect("w");
        assert_eq!((t.dtype, t.shape.as_slice()), (DType::F16, &[2][..]));
        assert_eq!(t.data, storage[2..6]);
    }

    #[test]
    fn big_endian_archives_are_swapped() {
        let values = [1.5f32, -2.0, 3.25];
        let be: Vec<u8> = values.iter().flat_map(|x| x.to_be_bytes()).collect();
        let zip = one_tensor_archive(&spec("FloatStorage", 3, 0, &[3], &[1]), b"big", &be);
        let sd = read_bytes(zip).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f32s(sd.get("w").expect("w")), values);
        let zip = one_tensor_archive(&spec("FloatStorage", 3, 0, &[3], &[1]), b"middle", &be);
        assert!(matches!(
            read_bytes(zip),
            Err(TorchPickleError::Structure { .. })
        ));
    }

    #[test]
    fn views_outside_their_storage_are_rejected() {
        let storage = f32_bytes(&[0.0; 6]);
        for (offset, shape, stride) in [
            (0, &[7][..], &[1][..]),
            (5, &[2][..], &[1][..]),
            (0, &[2, 3][..], &[4, 1][..]),
            (0, &[2, 2][..], &[i32::MAX, 1][..]),
        ] {
            let zip = one_tensor_archive(
                &spec("FloatStorage", 6, offset, shape, stride),
                b"little",
                &storage,
            );
            let err = read_bytes(zip).expect_err("out of bounds");
            assert!(
                matches!(&err, TorchPickleError::BadTensor { tensor, .. } if tensor == "w"),
                "{err}"
            );
        }
        // Negative offsets and strides are malformed pickles.
        let zip = one_tensor_archive(
            &spec("FloatStorage", 6, 0, &[2], &[-1]),
            b"little",
            &storage,
        );
        assert!(matches!(
            read_bytes(zip),
            Err(TorchPickleError::Pickle { .. })
        ));
        // A zero-size view needs no data.
        let zip = one_tensor_archive(
            &spec("FloatStorage", 6, 100, &[0, 3], &[3, 1]),
            b"little",
            &storage,
        );
        assert_eq!(
            read_bytes(zip).expect("empty view").tensors[0].1.data,
            Vec::<u8>::new()
        );
    }

    #[test]
    fn storage_problems_name_the_tensor() {
        // Declared 6 floats, 5 present.
        let zip = one_tensor_archive(
            &spec("FloatStorage", 6, 0, &[2], &[1]),
            b"little",
            &f32_bytes(&[0.0; 5]),
        );
        let err = read_bytes(zip).expect_err("short");
        assert!(
            matches!(&err, TorchPickleError::TruncatedStorage { tensor, needed: 24, actual: 20, .. } if tensor == "w"),
            "{err}"
        );
        // A key that is not an entry name.
        let mut pk = Pk::new();
        pk.op(op::EMPTY_DICT).str("w").tensor(&Spec {
            key: "../0",
            ..spec("FloatStorage", 1, 0, &[1], &[1])
        });
        let pkl = pk.op(op::SETITEM).finish();
        let err =
            read_bytes(zip_bytes(&[("a/data.pkl", &pkl), ("a/data/0", &[0; 4])])).expect_err("key");
        assert!(
            matches!(&err, TorchPickleError::BadStorageKey { key, .. } if key == "../0"),
            "{err}"
        );
        // An unknown storage class.
        let zip = one_tensor_archive(
            &spec("ComplexFloatStorage", 1, 0, &[1], &[1]),
            b"little",
            &[0; 8],
        );
        let err = read_bytes(zip).expect_err("complex");
        assert!(
            matches!(&err, TorchPickleError::UnsupportedDtype { dtype, .. } if dtype == "torch.ComplexFloatStorage"),
            "{err}"
        );
    }

    #[test]
    fn unknown_opcode_is_named() {
        let mut pk = Pk::new();
        pk.op(op::EMPTY_DICT).str("epoch").op(b'I').0.extend(b"3\n");
        let pkl = pk.op(op::SETITEM).finish();
        let err = read_bytes(zip_bytes(&[("a/data.pkl", &pkl)])).expect_err("INT");
        assert!(
            matches!(
                &err,
                TorchPickleError::UnsupportedOpcode {
                    name: "INT",
                    opcode: b'I',
                    offset: 13,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("INT"), "{err}");
    }

    #[test]
    fn malformed_pickles_are_errors() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("no STOP", vec![op::PROTO, 2, op::EMPTY_DICT]),
            ("stack underflow", vec![op::PROTO, 2, op::STOP]),
            (
                "SETITEM on a list",
                vec![op::EMPTY_LIST, op::NONE, op::NONE, op::SETITEM, op::STOP],
            ),
            ("unset memo", vec![op::BINGET, 7, op::STOP]),
            (
                "string past the end",
                vec![op::BINUNICODE, 0xff, 0xff, 0xff, 0x7f, b'a'],
            ),
            (
                "bad UTF-8",
                vec![op::SHORT_BINUNICODE, 2, 0xc3, 0x28, op::STOP],
            ),
            (
                "pop below mark",
                vec![op::NONE, op::MARK, op::TUPLE1, op::STOP],
            ),
            (
                "odd SETITEMS",
                vec![op::EMPTY_DICT, op::MARK, op::NONE, op::SETITEMS, op::STOP],
            ),
            ("protocol 9", vec![op::PROTO, 9]),
            ("GLOBAL unterminated", b"ctorch\nFloat".to_vec()),
            (
                "REDUCE on None",
                vec![op::NONE, op::EMPTY_TUPLE, op::REDUCE, op::STOP],
            ),
            ("top is a list", vec![op::EMPTY_LIST, op::STOP]),
            ("bad persistent id", vec![op::NONE, op::BINPERSID, op::STOP]),
        ];
        for (what, pkl) in cases {
            let r = read_bytes(zip_bytes(&[("a/data.pkl", &pkl)]));
            assert!(
                matches!(
                    r,
                    Err(TorchPickleError::Pickle { .. } | TorchPickleError::Structure { .. })
                ),
                "{what}: {r:?}"
            );
        }
    }

    #[test]
    fn cycles_and_shared_containers_terminate() {
        // d = {}; d['self'] = d; d['list'] = [d, d]
        let mut pk = Pk::new();
        pk.op(op::EMPTY_DICT).op(op::BINPUT).op(0);
        pk.str("self").op(op::BINGET).op(0).op(op::SETITEM);
        pk.str("list")
            .op(op::EMPTY_LIST)
            .op(op::MARK)
            .op(op::BINGET)
            .op(0)
            .op(op::BINGET)
            .op(0)
            .op(op::APPENDS);
        let pkl = pk.op(op::SETITEM).finish();
        let sd = read_bytes(zip_bytes(&[("a/data.pkl", &pkl)])).unwrap_or_else(|e| panic!("{e}"));
        assert!(sd.tensors.is_empty());
        assert_eq!(sd.skipped, ["self", "list"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // {'k': {'k': ... 1000 deep}} holding a tensor at the bottom.
        let mut pk = Pk::new();
        for _ in 0..1000 {
            pk.op(op::EMPTY_DICT).str("k");
        }
        pk.tensor(&spec("FloatStorage", 1, 0, &[1], &[1]));
        for _ in 0..1000 {
            pk.op(op::SETITEM);
        }
        let pkl = pk.finish();
        let err = read_bytes(zip_bytes(&[("a/data.pkl", &pkl), ("a/data/0", &[0; 4])]))
            .expect_err("deep");
        assert!(matches!(err, TorchPickleError::Structure { .. }), "{err}");

        // A million nested 1-tuples in a dict: built, walked and dropped without recursion.
        let mut pk = Pk::new();
        pk.op(op::EMPTY_DICT).str("t").op(op::NONE);
        pk.0.extend(std::iter::repeat_n(op::TUPLE1, 1_000_000));
        let pkl = pk.op(op::SETITEM).finish();
        let sd = read_bytes(zip_bytes(&[("a/data.pkl", &pkl)])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sd.skipped, ["t"]);
    }

    #[test]
    fn protocol_4_opcodes_and_opaque_objects() {
        // {'a': argparse.Namespace(...) via STACK_GLOBAL/NEWOBJ/BUILD, 'n': 2**40, 'x': 0.5,
        //  'b': b'xy', 'w': tensor} in a FRAME, with MEMOIZE.
        let mut pk = Pk::new();
        pk.0[1] = 4;
        pk.op(op::FRAME).0.extend(0u64.to_le_bytes());
        pk.op(op::EMPTY_DICT).op(op::MEMOIZE).op(op::MARK);
        pk.op(op::SHORT_BINUNICODE).op(1).op(b'a');
        pk.str("argparse")
            .str("Namespace")
            .op(op::STACK_GLOBAL)
            .op(op::MEMOIZE);
        pk.op(op::EMPTY_TUPLE)
            .op(op::NEWOBJ)
            .op(op::EMPTY_DICT)
            .op(op::BUILD);
        pk.str("n").op(op::LONG1).op(6).0.extend([0, 0, 0, 0, 0, 1]);
        pk.str("x").op(op::BINFLOAT).0.extend(0.5f64.to_be_bytes());
        pk.str("b").op(op::SHORT_BINBYTES).op(2).0.extend(b"xy");
        pk.str("w").tensor(&spec("FloatStorage", 1, 0, &[], &[]));
        let pkl = pk.op(op::SETITEMS).finish();
        let sd = read_bytes(zip_bytes(&[
            ("a/data.pkl", &pkl),
            ("a/data/0", &f32_bytes(&[7.0])),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sd.skipped, ["a", "n", "x", "b"]);
        assert_eq!(f32s(sd.get("w").expect("w")), [7.0]);
    }

    #[test]
    fn non_contiguous_gather_matches_index_arithmetic() {
        // A [2, 3, 4] int32 view with strides [1, 2, 6] and offset 1 over 30 elements.
        let storage: Vec<u8> = (0..30i32).flat_map(|i| i.to_le_bytes()).collect();
        let zip = one_tensor_archive(
            &spec("IntStorage", 30, 1, &[2, 3, 4], &[1, 2, 6]),
            b"little",
            &storage,
        );
        let sd = read_bytes(zip).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<i32> = sd.tensors[0]
            .1
            .data
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut want = Vec::new();
        for a in 0..2 {
            for b in 0..3 {
                for c in 0..4 {
                    want.push(1 + a + 2 * b + 6 * c);
                }
            }
        }
        assert_eq!(got, want);
    }
}
