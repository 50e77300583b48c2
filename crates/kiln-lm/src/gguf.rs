//! GGUF, llama.cpp's model file format (versions 2 and 3): reader, dequantization and a
//! writer.
//!
//! Layout (little-endian): magic `GGUF`, version `u32`, tensor count `u64`, metadata count
//! `u64`; the metadata key/value pairs (key: `u64` length + UTF-8; value: `u32` type tag +
//! payload, arrays as element type + `u64` count + elements); one info record per tensor
//! (name, `u32` rank, `u64` dims with the fastest-varying first, `u32` ggml type, `u64`
//! offset into the data section); padding to `general.alignment` (default 32); the data.
//!
//! Block formats dequantized here (32 values per block, `d` and `m` are IEEE half floats):
//! `Q8_0` = `d, q[32]: i8` with `x = d q`; `Q4_0` = `d, qs[16]` with the low nibbles holding
//! elements 0..16 and the high nibbles 16..32, `x = d (q - 8)`; `Q4_1` = `d, m, qs[16]`
//! (same nibble order), `x = d q + m`. `F32`, `F16` and `BF16` are plain arrays.
//!
//! The writer quantizes as llama.cpp's reference quantizers do (`Q8_0`: `d = max|x| / 127`;
//! `Q4_0`: `d = x_max / -8` for the element of largest magnitude; `Q4_1`: `d = (max - min) /
//! 15`, `m = min`), so tests can write small files of every supported type.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use crate::error::{LmError, Result, io_err, tensor_err};

const MAGIC: u32 = 0x4655_4747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT: u64 = 32;

/// Elements per quantization block.
pub const QK: usize = 32;

/// The ggml tensor types this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// 4-bit, scale only (18 bytes per 32 values).
    Q4_0,
    /// 4-bit, scale and minimum (20 bytes per 32 values).
    Q4_1,
    /// 8-bit, scale only (34 bytes per 32 values).
    Q8_0,
}

impl GgmlType {
    /// The type for a ggml type id, if supported.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::Bf16,
            _ => return None,
        })
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q8_0 => 8,
            Self::Bf16 => 30,
        }
    }

    /// `(values per block, bytes per block)`.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::Q4_0 => (QK, 18),
            Self::Q4_1 => (QK, 20),
            Self::Q8_0 => (QK, 34),
        }
    }

    /// Bytes of `n` values (`n` a multiple of the block size).
    pub fn bytes(self, n: usize) -> usize {
        let (per, bytes) = self.block();
        n / per * bytes
    }
}

/// Name of a ggml type id for error messages (including the ones not supported here).
fn type_name(id: u32) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        30 => "BF16",
        _ => "unknown",
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Any unsigned integer type.
    U64(u64),
    /// Any signed integer type.
    I64(i64),
    /// `f32` or `f64`.
    F64(f64),
    /// Boolean.
    Bool(bool),
    /// UTF-8 string.
    Str(String),
    /// Array of values.
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U64(v) => Some(v),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F64(v) => Some(v),
            Self::U64(v) => Some(v as f64),
            Self::I64(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One tensor record of a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// Tensor name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, fastest-varying first (ggml's `ne`): a row-major `[rows, cols]` matrix
    /// has `dims = [cols, rows]`.
    pub dims: Vec<u64>,
    /// The raw ggml type id.
    pub type_id: u32,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product::<u64>() as usize
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dimensions in row-major order (slowest first), as burn and NumPy write them.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file with its bytes in memory.
#[derive(Debug, Clone)]
pub struct GgufFile {
    path: PathBuf,
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in key order.
    pub metadata: BTreeMap<String, GgufValue>,
    /// Tensor records in file order.
    pub tensors: Vec<GgufTensorInfo>,
    data: Vec<u8>,
    data_start: usize,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(LmError::Format {
                path: self.path.to_path_buf(),
                what: format!(
                    "truncated: {what} needs {n} bytes at offset {}, file has {}",
                    self.pos,
                    self.bytes.len()
                ),
            }),
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn len(&mut self, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        // Every element takes at least one byte: a larger count is a corrupt file.
        if n > (self.bytes.len() - self.pos) as u64 {
            return Err(self.bad(format!(
                "{what}: count {n} at offset {} exceeds the file size {}",
                self.pos - 8,
                self.bytes.len()
            )));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.len(what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.bad(format!("{what} is not UTF-8")))
    }

    fn bad(&self, what: String) -> LmError {
        LmError::Format {
            path: self.path.to_path_buf(),
            what,
        }
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<GgufValue> {
        let what = format!("metadata `{key}`");
        Ok(match ty {
            0 => GgufValue::U64(u64::from(self.take(1, &what)?[0])),
            1 => GgufValue::I64(i64::from(self.take(1, &what)?[0] as i8)),
            2 => {
                let b = self.take(2, &what)?;
                GgufValue::U64(u64::from(u16::from_le_bytes([b[0], b[1]])))
            }
            3 => {
                let b = self.take(2, &what)?;
                GgufValue::I64(i64::from(i16::from_le_bytes([b[0], b[1]])))
            }
            4 => GgufValue::U64(u64::from(self.u32(&what)?)),
            5 => GgufValue::I64(i64::from(self.u32(&what)? as i32)),
            6 => GgufValue::F64(f64::from(f32::from_bits(self.u32(&what)?))),
            7 => GgufValue::Bool(self.take(1, &what)?[0] != 0),
            8 => GgufValue::Str(self.string(&what)?),
            9 => {
                if depth > 4 {
                    return Err(self.bad(format!("{what}: arrays nested too deeply")));
                }
                let inner = self.u32(&what)?;
                let n = self.len(&what)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(inner, key, depth + 1)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::U64(self.u64(&what)?),
            11 => GgufValue::I64(self.u64(&what)? as i64),
            12 => GgufValue::F64(f64::from_bits(self.u64(&what)?)),
            other => {
                return Err(self.bad(format!(
                    "{what}: unknown value type {other} at offset {}",
                    self.pos - 4
                )));
            }
        })
    }
}

impl GgufFile {
    /// Reads and parses `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        Self::parse(path, bytes)
    }

    /// Parses the bytes of a GGUF file (`path` is used in error messages only).
    pub fn parse(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Self> {
        let path = path.as_ref();
        let mut r = Reader {
            bytes: &bytes,
            pos: 0,
            path,
        };
        let magic = r.u32("magic")?;
        if magic != MAGIC {
            return Err(r.bad(format!(
                "not a GGUF file (magic {:?}, expected \"GGUF\")",
                String::from_utf8_lossy(&magic.to_le_bytes())
            )));
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(r.bad(format!(
                "unsupported GGUF version {version} (versions 2 and 3 are read)"
            )));
        }
        let n_tensors = r.len("tensor count")?;
        let n_kv = r.len("metadata count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string("metadata key")?;
            let ty = r.u32(&format!("type of metadata `{key}`"))?;
            let v = r.value(ty, &key, 0)?;
            metadata.insert(key, v);
        }
        let mut tensors = Vec::with_capacity(n_tensors);
        for i in 0..n_tensors {
            let name = r.string(&format!("name of tensor {i}"))?;
            let rank = r.u32(&format!("rank of tensor `{name}`"))?;
            if rank == 0 || rank > 4 {
                return Err(tensor_err(
                    path,
                    &name,
                    format!("rank {rank} (expected 1 to 4)"),
                ));
            }
            let mut dims = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                dims.push(r.u64(&format!("dims of tensor `{name}`"))?);
            }
            let type_id = r.u32(&format!("type of tensor `{name}`"))?;
            let offset = r.u64(&format!("offset of tensor `{name}`"))?;
            tensors.push(GgufTensorInfo {
                name,
                dims,
                type_id,
                offset,
            });
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(r.bad(format!("general.alignment = {v:?} is not a power of two")));
                }
            },
        };
        let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
        let file = Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            data_start: data_start as usize,
            data: Vec::new(),
        };
        // Every tensor's bytes must lie inside the file.
        for t in &file.tensors {
            let end = file.byte_range(t)?.1;
            if end > bytes.len() {
                return Err(tensor_err(
                    path,
                    &t.name,
                    format!(
                        "data ends at byte {end} but the file has {} bytes (truncated file?)",
                        bytes.len()
                    ),
                ));
            }
        }
        Ok(Self {
            data: bytes,
            ..file
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn byte_range(&self, t: &GgufTensorInfo) -> Result<(usize, usize)> {
        let Some(ty) = GgmlType::from_id(t.type_id) else {
            return Err(tensor_err(
                &self.path,
                &t.name,
                format!(
                    "ggml type {} ({}) is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)",
                    t.type_id,
                    type_name(t.type_id)
                ),
            ));
        };
        let (per, _) = ty.block();
        let n = t.len();
        if !(t.dims[0] as usize).is_multiple_of(per) {
            return Err(tensor_err(
                &self.path,
                &t.name,
                format!(
                    "first dimension {} is not a multiple of the {:?} block size {per}",
                    t.dims[0], ty
                ),
            ));
        }
        let start = self.data_start + t.offset as usize;
        Ok((start, start + ty.bytes(n)))
    }

    /// The record of tensor `name`.
    pub fn info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Tensor `name` dequantized to `f32`, in row-major order; errors name the tensor and
    /// the file.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self
            .info(name)
            .ok_or_else(|| tensor_err(&self.path, name, "not found in the file"))?;
        let (start, end) = self.byte_range(t)?;
        let ty = GgmlType::from_id(t.type_id).expect("checked by byte_range");
        let bytes = self
            .data
            .get(start..end)
            .ok_or_else(|| tensor_err(&self.path, name, "data lies beyond the end of the file"))?;
        Ok((t.shape(), dequantize(ty, bytes, t.len())))
    }

    /// Metadata value `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }
}

/// Dequantizes `n` values of type `ty` from `bytes` (which must hold exactly `ty.bytes(n)`).
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    match ty {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::Bf16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(34)) {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                for (x, &q) in o.iter_mut().zip(&b[2..34]) {
                    *x = f32::from(q as i8) * d;
                }
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(18)) {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                for (j, &q) in b[2..18].iter().enumerate() {
                    o[j] = (f32::from(q & 0x0f) - 8.0) * d;
                    o[j + 16] = (f32::from(q >> 4) - 8.0) * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(20)) {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                let m = f16::from_le_bytes([b[2], b[3]]).to_f32();
                for (j, &q) in b[4..20].iter().enumerate() {
                    o[j] = f32::from(q & 0x0f) * d + m;
                    o[j + 16] = f32::from(q >> 4) * d + m;
                }
            }
        }
    }
    out
}

/// Quantizes `values` (length a multiple of the block size for block types) as `ty`.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ty.bytes(values.len()));
    match ty {
        GgmlType::F32 => values.iter().for_each(|v| out.extend(v.to_le_bytes())),
        GgmlType::F16 => values
            .iter()
            .for_each(|&v| out.extend(f16::from_f32(v).to_le_bytes())),
        GgmlType::Bf16 => values
            .iter()
            .for_each(|&v| out.extend(bf16::from_f32(v).to_le_bytes())),
        GgmlType::Q8_0 => {
            for blk in values.chunks_exact(QK) {
                let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(blk.iter().map(|&v| (v * id).round() as i8 as u8));
            }
        }
        GgmlType::Q4_0 => {
            for blk in values.chunks_exact(QK) {
                let max = blk
                    .iter()
                    .copied()
                    .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
                out.extend((0..16).map(|j| q(blk[j]) | (q(blk[j + 16]) << 4)));
            }
        }
        GgmlType::Q4_1 => {
            for blk in values.chunks_exact(QK) {
                let min = blk.iter().copied().fold(f32::INFINITY, f32::min);
                let max = blk.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(f16::from_f32(min).to_le_bytes());
                let q = |v: f32| (((v - min) * id + 0.5) as i32).clamp(0, 15) as u8;
                out.extend((0..16).map(|j| q(blk[j]) | (q(blk[j + 16]) << 4)));
            }
        }
    }
    out
}

/// Builds a GGUF (version 3) file: metadata and tensors, written atomically.
#[derive(Debug, Default, Clone)]
pub struct GgufWriter {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<(String, Vec<usize>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (integers are written as `u32`/`i32` when they fit, as
    /// llama.cpp's converter does, floats as `f32`).
    pub fn meta(&mut self, key: &str, value: GgufValue) -> &mut Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Adds a tensor of row-major `shape` stored as `ty`.
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        ty: GgmlType,
        values: &[f32],
    ) -> &mut Self {
        self.tensors
            .push((name.to_string(), shape.to_vec(), ty, quantize(ty, values)));
        self
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        }
        fn tag(v: &GgufValue) -> u32 {
            match v {
                GgufValue::U64(x) if u32::try_from(*x).is_ok() => 4,
                GgufValue::U64(_) => 10,
                GgufValue::I64(x) if i32::try_from(*x).is_ok() => 5,
                GgufValue::I64(_) => 11,
                GgufValue::F64(_) => 6,
                GgufValue::Bool(_) => 7,
                GgufValue::Str(_) => 8,
                GgufValue::Array(_) => 9,
            }
        }
        fn payload(out: &mut Vec<u8>, v: &GgufValue, t: u32) {
            match (v, t) {
                (GgufValue::U64(x), 4) => out.extend((*x as u32).to_le_bytes()),
                (GgufValue::U64(x), _) => out.extend(x.to_le_bytes()),
                (GgufValue::I64(x), 5) => out.extend((*x as i32).to_le_bytes()),
                (GgufValue::I64(x), _) => out.extend(x.to_le_bytes()),
                (GgufValue::F64(x), _) => out.extend((*x as f32).to_le_bytes()),
                (GgufValue::Bool(b), _) => out.push(u8::from(*b)),
                (GgufValue::Str(s), _) => string(out, s),
                (GgufValue::Array(items), _) => {
                    // One element type per array: the widest tag among the items.
                    let inner = items.iter().map(tag).max().unwrap_or(4);
                    out.extend(inner.to_le_bytes());
                    out.extend((items.len() as u64).to_le_bytes());
                    for it in items {
                        payload(out, it, inner);
                    }
                }
            }
        }
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            string(&mut out, k);
            let t = tag(v);
            out.extend(t.to_le_bytes());
            payload(&mut out, v, t);
        }
        let align = DEFAULT_ALIGNMENT as usize;
        let mut offset = 0usize;
        for (name, shape, ty, data) in &self.tensors {
            string(&mut out, name);
            out.extend((shape.len() as u32).to_le_bytes());
            for &d in shape.iter().rev() {
                out.extend((d as u64).to_le_bytes());
            }
            out.extend(ty.id().to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset = (offset + data.len()).div_ceil(align) * align;
        }
        out.resize(out.len().div_ceil(align) * align, 0);
        for (_, _, _, data) in &self.tensors {
            out.extend(data);
            out.resize(out.len().div_ceil(align) * align, 0);
        }
        out
    }

    /// Writes the file atomically (temporary file + rename).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp-write");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_blocks() {
        // Q8_0: d = 0.5, q = -3..29.
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend((0..32).map(|i| (i as i8 - 3) as u8));
        let x = dequantize(GgmlType::Q8_0, &b, 32);
        assert_eq!(x[0], -1.5);
        assert_eq!(x[31], 14.0);
        // Q4_0: d = 2, byte j = (j % 16) | (15 - j % 16) << 4.
        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let x = dequantize(GgmlType::Q4_0, &b, 32);
        assert_eq!(x[0], -16.0); // (0 - 8) * 2
        assert_eq!(x[15], 14.0); // (15 - 8) * 2
        assert_eq!(x[16], 14.0); // high nibble of byte 0 = 15
        assert_eq!(x[31], -16.0);
        // Q4_1: d = 0.25, m = -1: x = q / 4 - 1.
        let mut b = f16::from_f32(0.25).to_le_bytes().to_vec();
        b.extend(f16::from_f32(-1.0).to_le_bytes());
        b.extend((0..16u8).map(|j| j | (j << 4)));
        let x = dequantize(GgmlType::Q4_1, &b, 32);
        assert_eq!(x[0], -1.0);
        assert_eq!(x[5], 0.25);
        assert_eq!(x[21], 0.25);
        assert_eq!(x[31], 2.75);
    }

    proptest! {
        #[test]
        fn quantization_error_is_within_half_a_step(v in proptest::collection::vec(-4.0f32..4.0, 64)) {
            for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::F16, GgmlType::Bf16] {
                let back = dequantize(ty, &quantize(ty, &v), v.len());
                for (blk, bb) in v.chunks(32).zip(back.chunks(32)) {
                    let amax = blk.iter().fold(0f32, |a, x| a.max(x.abs()));
                    let (lo, hi) = blk.iter().fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                    let step = match ty {
                        GgmlType::Q8_0 => amax / 127.0,
                        // The code range is -8..=7 steps: the extreme opposite in sign to
                        // the largest-magnitude element is clipped by up to one step.
                        GgmlType::Q4_0 => 2.0 * amax / 8.0,
                        GgmlType::Q4_1 => (hi - lo) / 15.0,
                        GgmlType::F16 => amax / 1024.0,
                        _ => amax / 128.0,
                    };
                    for (a, b) in blk.iter().zip(bb) {
                        // Half a step, plus the half-float rounding of the scale and minimum.
                        prop_assert!((a - b).abs() <= 0.5 * step * 1.01 + amax * 2e-3 + 1e-6, "{ty:?}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn round_trip_and_errors() {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", GgufValue::Str("llama".into()))
            .meta(
                "x.list",
                GgufValue::Array(vec![GgufValue::U64(1), GgufValue::U64(7)]),
            )
            .meta("x.f", GgufValue::F64(0.5));
        let v: Vec<f32> = (0..64).map(|i| i as f32 / 8.0 - 4.0).collect();
        w.tensor("a", &[2, 32], GgmlType::F32, &v)
            .tensor("b", &[64], GgmlType::Q8_0, &v);
        let bytes = w.to_bytes();
        let f = GgufFile::parse("mem.gguf", bytes.clone()).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(
            f.get("general.architecture").unwrap().as_str(),
            Some("llama")
        );
        assert_eq!(f.get("x.f").unwrap().as_f64(), Some(0.5));
        let (shape, a) = f.tensor_f32("a").unwrap();
        assert_eq!(shape, vec![2, 32]);
        assert_eq!(a, v);
        let msg = f.tensor_f32("zzz").unwrap_err().to_string();
        assert!(msg.contains("zzz") && msg.contains("mem.gguf"), "{msg}");
        // Truncated data: the error names the tensor and the file.
        let msg = GgufFile::parse("cut.gguf", bytes[..bytes.len() - 40].to_vec())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`b`") && msg.contains("cut.gguf") && msg.contains("truncated"),
            "{msg}"
        );
        // Truncated header.
        let msg = GgufFile::parse("h.gguf", bytes[..30].to_vec())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("truncated"), "{msg}");
        // Bad magic.
        let msg = GgufFile::parse("m.gguf", b"GGML0000000000000000000000".to_vec())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not a GGUF file"), "{msg}");
    }

    #[test]
    fn unknown_tensor_type_is_named() {
        let mut bytes = GgufWriter::new()
            .tensor("w.q6k", &[32], GgmlType::F32, &[0.0; 32])
            .to_bytes();
        // Patch the type id (right after name, rank and one dim) to Q6_K = 14.
        let at = 24 + 8 + "w.q6k".len() + 4 + 8;
        bytes[at..at + 4].copy_from_slice(&14u32.to_le_bytes());
        let msg = GgufFile::parse("t.gguf", bytes).unwrap_err().to_string();
        assert!(
            msg.contains("w.q6k") && msg.contains("Q6_K") && msg.contains("t.gguf"),
            "{msg}"
        );
    }
}
