//! Reading a sidecar: open validates the header, the fingerprint and the
//! offsets table (so a truncated, foreign or stale file is a typed error);
//! a gene read is one positioned read of that gene's blob, and genes are
//! read in parallel.

use super::format::{corrupt, decode_gene, fnv1a, table_len, Header, Table, ValueKind, PREAMBLE};
use crate::error::{Error, ErrorKind, Result};
use rayon::prelude::*;
use std::fs::File;
use std::os::unix::fs::FileExt;

pub struct GeneIndex {
    pub path: String,
    pub header: Header,
    file: File,
    offsets: Vec<u64>,
    gene_crcs: Vec<u32>,
    totals_crc: u32,
}

impl GeneIndex {
    /// Open `path` and check that it indexes the source `fingerprint`.
    pub fn open(path: &str, fingerprint: &str) -> Result<GeneIndex> {
        let file = File::open(path).map_err(|e| {
            Error::new(
                ErrorKind::FileAccess,
                format!("cannot open the gene index: {e}"),
            )
            .in_file(path)
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut head = vec![0u8; (len.min(64 << 10)) as usize];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| corrupt(path, format!("cannot read the header: {e}")))?;
        let (header, json) = Header::decode(&head, path)?;
        if header.fingerprint != fingerprint {
            return Err(corrupt(
                path,
                "the gene index was built for another file or an older version of it",
            ));
        }
        if header.file_len != len {
            return Err(corrupt(
                path,
                format!(
                    "the gene index is {len} bytes, its header says {} (truncated?)",
                    header.file_len
                ),
            ));
        }
        let n = header.n_genes as usize;
        let table_bytes = table_len(n as u64);
        if header.table_offset + table_bytes + 8 != len
            || header.header_len < PREAMBLE as u64
            || header.header_len > header.totals_offset
            || header.totals_offset + header.n_rows * 8 != header.table_offset
        {
            return Err(corrupt(path, "the gene index layout is inconsistent"));
        }
        let mut table = vec![0u8; table_bytes as usize + 8];
        file.read_exact_at(&mut table, header.table_offset)
            .map_err(|e| corrupt(path, format!("cannot read the offsets: {e}")))?;
        let sum = u64::from_le_bytes(table[table_bytes as usize..].try_into().unwrap());
        let table = &table[..table_bytes as usize];
        if fnv1a(&[&json, table]) != sum {
            return Err(corrupt(path, "the gene index checksum does not match"));
        }
        let Table {
            offsets,
            gene_crcs,
            totals_crc,
        } = Table::decode(table, n);
        if offsets[0] != header.header_len
            || offsets[n] != header.totals_offset
            || offsets.windows(2).any(|w| w[1] < w[0])
        {
            return Err(corrupt(path, "the gene index offsets are inconsistent"));
        }
        Ok(GeneIndex {
            path: path.to_string(),
            header,
            file,
            offsets,
            gene_crcs,
            totals_crc,
        })
    }

    pub fn value_kind(&self) -> ValueKind {
        self.header.value_kind
    }

    /// Stored bytes of gene `g`.
    pub fn gene_bytes(&self, g: usize) -> u64 {
        self.offsets[g + 1] - self.offsets[g]
    }

    /// Each row's sum over all genes (at `rows`, or all rows).
    pub fn row_totals(&self, rows: Option<&[u32]>) -> Result<Vec<f64>> {
        let n = self.header.n_rows as usize;
        if let Some(&bad) = rows.and_then(|r| r.iter().find(|&&r| r as usize >= n)) {
            return Err(Error::invalid(format!(
                "row {bad} out of range for {n} rows"
            )));
        }
        let mut raw = vec![0u8; n * 8];
        self.file
            .read_exact_at(&mut raw, self.header.totals_offset)
            .map_err(|e| corrupt(&self.path, format!("cannot read the row totals: {e}")))?;
        if crc32fast::hash(&raw) != self.totals_crc {
            return Err(corrupt(
                &self.path,
                "the row totals are corrupt: their checksum does not match",
            ));
        }
        let all: Vec<f64> = raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Ok(match rows {
            None => all,
            Some(r) => r.iter().map(|&i| all[i as usize]).collect(),
        })
    }

    /// Each gene's values at `rows` (all rows when None), as float64.
    pub fn read_genes(&self, genes: &[usize], rows: Option<&[u32]>) -> Result<Vec<Vec<f64>>> {
        let n_rows = self.header.n_rows;
        if let Some(&bad) = genes.iter().find(|&&g| g as u64 >= self.header.n_genes) {
            return Err(Error::invalid(format!(
                "gene {bad} out of range for {} genes",
                self.header.n_genes
            )));
        }
        if let Some(&bad) = rows.and_then(|r| r.iter().find(|&&r| r as u64 >= n_rows)) {
            return Err(Error::invalid(format!(
                "row {bad} out of range for {n_rows} rows"
            )));
        }
        let cells = rows.map_or(n_rows, |r| r.len() as u64);
        crate::limits::check_work(
            &format!("the values of {} genes in {cells} cells", genes.len()),
            (genes.len() as u64).saturating_mul(cells),
            8,
        )?;
        genes
            .par_iter()
            .map(|&g| {
                let (lo, hi) = (self.offsets[g], self.offsets[g + 1]);
                let mut blob = vec![0u8; (hi - lo) as usize];
                self.file
                    .read_exact_at(&mut blob, lo)
                    .map_err(|e| corrupt(&self.path, format!("cannot read gene {g}: {e}")))?;
                if crc32fast::hash(&blob) != self.gene_crcs[g] {
                    return Err(corrupt(
                        &self.path,
                        format!("gene {g} is corrupt: its checksum does not match"),
                    ));
                }
                let mut full = vec![0f64; n_rows as usize];
                decode_gene(&blob, n_rows, |r, v| full[r] = v)
                    .map_err(|why| corrupt(&self.path, format!("gene {g} is corrupt: {why}")))?;
                Ok(match rows {
                    None => full,
                    Some(r) => r.iter().map(|&i| full[i as usize]).collect(),
                })
            })
            .collect()
    }
}
