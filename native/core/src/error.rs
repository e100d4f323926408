//! One error type for the whole core. `kind` maps one-to-one onto the TS
//! error classes (see src/engine/errors.ts); `path` and `element` tell the
//! user which file and which HDF5 object were involved.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file cannot be opened: missing, unreadable, locked.
    FileAccess,
    /// The file is readable HDF5 but violates the h5ad format.
    Format,
    /// A valid but unsupported element encoding (e.g. awkward-array).
    UnsupportedEncoding,
    /// A bad argument from the caller (index out of range, bad mode...).
    InvalidArgument,
    /// Use of a closed handle.
    Closed,
    /// A pass stopped by its cancellation flag.
    Cancelled,
    /// A gene-index sidecar that is truncated, corrupt, foreign or stale.
    GeneIndex,
    /// Anything else (I/O while writing, internal invariants).
    Internal,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::FileAccess => "FileAccess",
            ErrorKind::Format => "H5adFormat",
            ErrorKind::UnsupportedEncoding => "UnsupportedEncoding",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::Closed => "Closed",
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::GeneIndex => "GeneIndex",
            ErrorKind::Internal => "Internal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub path: Option<String>,
    pub element: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            path: None,
            element: None,
        }
    }
    pub fn format(element: &str, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Format, message).at(element)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }
    pub fn cancelled() -> Self {
        Error::new(ErrorKind::Cancelled, "the pass was cancelled")
    }
    /// Attach the element path unless one is already set (innermost wins;
    /// an empty placeholder does not count).
    pub fn at(mut self, element: &str) -> Self {
        if self.element.as_deref().is_none_or(str::is_empty) {
            self.element = Some(element.to_string());
        }
        self
    }
    pub fn in_file(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_string());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(e) = &self.element {
            write!(f, " (element {e})")?;
        }
        if let Some(p) = &self.path {
            write!(f, " in {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<hdf5::Error> for Error {
    fn from(e: hdf5::Error) -> Self {
        let text = e.to_string();
        // A filter that is neither built in nor a plugin: HDF5 only says it
        // could not search its (build-time) plugin directory.
        if text.contains("lib/plugin") || text.contains("required filter") {
            return Error::new(
                ErrorKind::UnsupportedEncoding,
                "the data use an HDF5 compression filter this build does not have \
                 (built in: gzip, lzf, blosc with lz4 / zstd / zlib; no plugins are loaded)",
            );
        }
        Error::new(ErrorKind::Format, format!("HDF5: {text}"))
    }
}

/// Attach an element path to any HDF5 result.
pub trait Context<T> {
    fn at(self, element: &str) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn at(self, element: &str) -> Result<T> {
        self.map_err(|e| e.into().at(element))
    }
}
