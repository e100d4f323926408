//! The sidecar's byte layout (see mod.rs): header, varints, per-gene
//! blobs. Decoding checks every bound, so a corrupt file is an error, not
//! a panic or a wild allocation.

use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 8] = b"AOOMGIX\0";
/// 2: per-gene and row-total CRCs in the table.
pub const FORMAT_VERSION: u32 = 2;
/// magic + version + JSON length.
pub const PREAMBLE: usize = 16;

/// How values are stored: the narrowest type that holds every value
/// exactly (counts are usually small integers: one byte per entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    U8,
    U16,
    F32,
    F64,
}

impl ValueKind {
    fn tag(self) -> u8 {
        match self {
            ValueKind::U8 => 0,
            ValueKind::U16 => 1,
            ValueKind::F32 => 2,
            ValueKind::F64 => 3,
        }
    }

    fn from_tag(t: u8) -> Option<ValueKind> {
        [
            ValueKind::U8,
            ValueKind::U16,
            ValueKind::F32,
            ValueKind::F64,
        ]
        .get(t as usize)
        .copied()
    }

    pub fn width(self) -> usize {
        match self {
            ValueKind::U8 => 1,
            ValueKind::U16 => 2,
            ValueKind::F32 => 4,
            ValueKind::F64 => 8,
        }
    }

    pub fn push(self, out: &mut Vec<u8>, v: f64) {
        match self {
            ValueKind::U8 => out.push(v as u8),
            ValueKind::U16 => out.extend_from_slice(&(v as u16).to_le_bytes()),
            ValueKind::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            ValueKind::F64 => out.extend_from_slice(&v.to_le_bytes()),
        }
    }

    #[inline]
    fn get(self, b: &[u8], i: usize) -> f64 {
        match self {
            ValueKind::U8 => b[i] as f64,
            ValueKind::U16 => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as f64,
            ValueKind::F32 => f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as f64,
            ValueKind::F64 => f64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()),
        }
    }
}

/// Tracks what every value seen so far allows, to pick the value kind.
#[derive(Debug, Clone, Copy)]
pub struct ValueRange {
    pub all_counts: bool,
    pub all_f32: bool,
    pub max: f64,
}

impl Default for ValueRange {
    fn default() -> Self {
        ValueRange {
            all_counts: true,
            all_f32: true,
            max: 0.0,
        }
    }
}

impl ValueRange {
    #[inline]
    pub fn see(&mut self, v: f64) {
        if self.all_counts && !(v >= 0.0 && v.fract() == 0.0) {
            self.all_counts = false;
        }
        if self.all_f32 && (v as f32) as f64 != v && !v.is_nan() {
            self.all_f32 = false;
        }
        if v > self.max {
            self.max = v;
        }
    }

    pub fn kind(&self) -> ValueKind {
        match (self.all_counts, self.max) {
            (true, m) if m <= u8::MAX as f64 => ValueKind::U8,
            (true, m) if m <= u16::MAX as f64 => ValueKind::U16,
            _ if self.all_f32 => ValueKind::F32,
            _ => ValueKind::F64,
        }
    }
}

/// The JSON header. `fingerprint` is opaque here: the caller builds it from
/// the source file's identity and checks it on open.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub fingerprint: String,
    pub n_rows: u64,
    pub n_genes: u64,
    pub nnz: u64,
    /// The widest value kind of any gene (each gene has its own).
    pub value_kind: ValueKind,
    pub header_len: u64,
    pub totals_offset: u64,
    pub table_offset: u64,
    pub file_len: u64,
}

impl Header {
    /// Bytes reserved for the header: its JSON with room for the numbers
    /// (filled in at the end of the build), rounded to 4 KiB.
    pub fn reserved_len(fingerprint: &str) -> u64 {
        let json_room = serde_json::to_string(fingerprint).map_or(0, |s| s.len()) + 512;
        (PREAMBLE + json_room).div_ceil(4096) as u64 * 4096
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| Error::internal(e.to_string()))?;
        let room = self.header_len as usize - PREAMBLE;
        if json.len() > room {
            return Err(Error::internal("gene index header does not fit its room"));
        }
        let mut out = Vec::with_capacity(self.header_len as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.resize(self.header_len as usize, b' ');
        Ok(out)
    }

    /// Parse the preamble and JSON from the first bytes of a file.
    pub fn decode(bytes: &[u8], path: &str) -> Result<(Header, Vec<u8>)> {
        if bytes.len() < PREAMBLE || &bytes[..8] != MAGIC {
            return Err(corrupt(path, "not a gene index (bad magic)"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if version != FORMAT_VERSION {
            return Err(corrupt(
                path,
                format!("gene index format version {version}, this build reads {FORMAT_VERSION}"),
            ));
        }
        let n = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let json = bytes
            .get(PREAMBLE..PREAMBLE + n)
            .ok_or_else(|| corrupt(path, "header is truncated"))?;
        let h: Header = serde_json::from_slice(json)
            .map_err(|e| corrupt(path, format!("header is unreadable: {e}")))?;
        Ok((h, json.to_vec()))
    }
}

pub fn corrupt(path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::GeneIndex, message).in_file(path)
}

/// FNV-1a, 64 bit: enough to catch a torn or overwritten table.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Bytes of the table for `n_genes`: offsets, gene CRCs, the totals' CRC
/// (the FNV checksum follows it).
pub fn table_len(n_genes: u64) -> u64 {
    (n_genes + 1) * 8 + n_genes * 4 + 4
}

/// The table's parts, as written by the build and checked on open.
pub struct Table {
    pub offsets: Vec<u64>,
    pub gene_crcs: Vec<u32>,
    pub totals_crc: u32,
}

impl Table {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * 12 + 4);
        self.offsets
            .iter()
            .for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
        self.gene_crcs
            .iter()
            .for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
        out.extend_from_slice(&self.totals_crc.to_le_bytes());
        out
    }

    /// Parse a table of `n_genes` (its length already checked).
    pub fn decode(bytes: &[u8], n_genes: usize) -> Table {
        let (offs, rest) = bytes.split_at((n_genes + 1) * 8);
        let (crcs, totals) = rest.split_at(n_genes * 4);
        Table {
            offsets: offs
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            gene_crcs: crcs
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            totals_crc: u32::from_le_bytes(totals[..4].try_into().unwrap()),
        }
    }
}

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Read a varint at `*at`; None when the bytes run out or it overflows.
#[inline]
pub fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        if shift > 63 {
            return None;
        }
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
        shift += 7;
    }
}

/// One gene's blob from its (row-sorted) entries. Each gene gets the
/// narrowest exact value kind of its own values (most genes of a count
/// matrix fit one byte even when a few highly expressed ones do not).
pub fn encode_gene(rows: &[u32], values: &[f64], out: &mut Vec<u8>) -> ValueKind {
    let mut range = ValueRange::default();
    values.iter().for_each(|&v| range.see(v));
    let kind = range.kind();
    put_varint(out, rows.len() as u64);
    out.push(kind.tag());
    let mut prev = 0u32;
    for (i, &r) in rows.iter().enumerate() {
        put_varint(out, if i == 0 { r } else { r - prev } as u64);
        prev = r;
    }
    for &v in values {
        kind.push(out, v);
    }
    kind
}

/// Decode a blob, calling `put(row, value)` per entry. Checks that rows stay
/// below `n_rows` and that the blob is consumed exactly.
pub fn decode_gene(
    blob: &[u8],
    n_rows: u64,
    mut put: impl FnMut(usize, f64),
) -> std::result::Result<(), &'static str> {
    let mut at = 0;
    let n = get_varint(blob, &mut at).ok_or("truncated entry count")? as usize;
    if n as u64 > n_rows || n > blob.len() {
        return Err("entry count larger than the blob");
    }
    let kind = blob
        .get(at)
        .and_then(|&t| ValueKind::from_tag(t))
        .ok_or("bad value kind")?;
    at += 1;
    let mut rows = Vec::with_capacity(n);
    let mut row = 0u64;
    for i in 0..n {
        let d = get_varint(blob, &mut at).ok_or("truncated row index")?;
        row = if i == 0 { d } else { row + d };
        if row >= n_rows {
            return Err("row index out of range");
        }
        rows.push(row as usize);
    }
    let vals = &blob[at..];
    if vals.len() != n * kind.width() {
        return Err("value bytes do not match the entry count");
    }
    for (i, &r) in rows.iter().enumerate() {
        put(r, kind.get(vals, i));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip_and_corruption() {
        let rows = [0u32, 3, 200, 70_000];
        let vals = [1.0, 2.0, 255.0, 7.0];
        let mut blob = Vec::new();
        assert_eq!(encode_gene(&rows, &vals, &mut blob), ValueKind::U8);
        let mut got = vec![];
        decode_gene(&blob, 100_000, |r, v| got.push((r, v))).unwrap();
        assert_eq!(got, vec![(0, 1.0), (3, 2.0), (200, 255.0), (70_000, 7.0)]);
        assert!(decode_gene(&blob[..blob.len() - 1], 100_000, |_, _| {}).is_err());
        assert!(decode_gene(&blob, 1000, |_, _| {}).is_err());
        assert!(decode_gene(&[0xff; 12], 1000, |_, _| {}).is_err());
        let mut wide = Vec::new();
        assert_eq!(encode_gene(&[5], &[0.1], &mut wide), ValueKind::F64);
        let mut got = vec![];
        decode_gene(&wide, 10, |r, v| got.push((r, v))).unwrap();
        assert_eq!(got, vec![(5, 0.1)]);
    }

    #[test]
    fn value_kind_is_the_narrowest_exact_one() {
        let kind = |xs: &[f64]| {
            let mut r = ValueRange::default();
            xs.iter().for_each(|&x| r.see(x));
            r.kind()
        };
        assert_eq!(kind(&[0.0, 3.0, 255.0]), ValueKind::U8);
        assert_eq!(kind(&[256.0]), ValueKind::U16);
        assert_eq!(kind(&[0.5, 70_000.0]), ValueKind::F32);
        assert_eq!(kind(&[-1.0]), ValueKind::F32);
        assert_eq!(kind(&[0.1]), ValueKind::F64);
    }
}
