//! Element dtypes as stored on disk, and typed value buffers that keep them.

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Float32,
    Float64,
    String,
}

impl DType {
    /// numpy's name for the dtype, used in reprs and tests.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::Uint8 => "uint8",
            DType::Uint16 => "uint16",
            DType::Uint32 => "uint32",
            DType::Uint64 => "uint64",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::String => "str",
        }
    }

    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "bool" => DType::Bool,
            "int8" => DType::Int8,
            "int16" => DType::Int16,
            "int32" => DType::Int32,
            "int64" => DType::Int64,
            "uint8" => DType::Uint8,
            "uint16" => DType::Uint16,
            "uint32" => DType::Uint32,
            "uint64" => DType::Uint64,
            "float32" => DType::Float32,
            "float64" => DType::Float64,
            "str" => DType::String,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::Int8 | DType::Uint8 => 1,
            DType::Int16 | DType::Uint16 => 2,
            DType::Int32 | DType::Uint32 | DType::Float32 => 4,
            DType::Int64 | DType::Uint64 | DType::Float64 => 8,
            DType::String => 16,
        }
    }

    pub fn is_numeric(self) -> bool {
        !matches!(self, DType::String)
    }

    /// Map an HDF5 type onto a dtype. Enums over integers with FALSE/TRUE
    /// members are h5py's bools.
    pub fn from_descriptor(td: &TypeDescriptor) -> Option<DType> {
        Some(match td {
            TypeDescriptor::Boolean => DType::Bool,
            TypeDescriptor::Enum(e)
                if e.members.len() <= 2
                    && e.members.iter().all(|m| {
                        m.name.eq_ignore_ascii_case("true") || m.name.eq_ignore_ascii_case("false")
                    }) =>
            {
                DType::Bool
            }
            TypeDescriptor::Integer(s) => match s {
                IntSize::U1 => DType::Int8,
                IntSize::U2 => DType::Int16,
                IntSize::U4 => DType::Int32,
                IntSize::U8 => DType::Int64,
            },
            TypeDescriptor::Unsigned(s) => match s {
                IntSize::U1 => DType::Uint8,
                IntSize::U2 => DType::Uint16,
                IntSize::U4 => DType::Uint32,
                IntSize::U8 => DType::Uint64,
            },
            TypeDescriptor::Float(s) => match s {
                FloatSize::U4 => DType::Float32,
                FloatSize::U8 => DType::Float64,
                #[allow(unreachable_patterns)]
                _ => return None,
            },
            TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_)
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::VarLenUnicode => DType::String,
            _ => return None,
        })
    }
}

/// A typed buffer that keeps the stored dtype. Bools are bytes (0/1).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Bool(Vec<u8>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Uint8(Vec<u8>),
    Uint16(Vec<u16>),
    Uint32(Vec<u32>),
    Uint64(Vec<u64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
}

/// Run `$body` with `$v` bound to the inner Vec of any numeric variant.
#[macro_export]
macro_rules! with_values {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            $crate::dtype::Values::Bool($v) => $body,
            $crate::dtype::Values::Int8($v) => $body,
            $crate::dtype::Values::Int16($v) => $body,
            $crate::dtype::Values::Int32($v) => $body,
            $crate::dtype::Values::Int64($v) => $body,
            $crate::dtype::Values::Uint8($v) => $body,
            $crate::dtype::Values::Uint16($v) => $body,
            $crate::dtype::Values::Uint32($v) => $body,
            $crate::dtype::Values::Uint64($v) => $body,
            $crate::dtype::Values::Float32($v) => $body,
            $crate::dtype::Values::Float64($v) => $body,
        }
    };
}

/// Rebuild a `Values` of the same variant as `$like` from an expression
/// producing a Vec of that element type.
#[macro_export]
macro_rules! map_values {
    ($values:expr, $v:ident => $body:expr) => {
        match $values {
            $crate::dtype::Values::Bool($v) => $crate::dtype::Values::Bool($body),
            $crate::dtype::Values::Int8($v) => $crate::dtype::Values::Int8($body),
            $crate::dtype::Values::Int16($v) => $crate::dtype::Values::Int16($body),
            $crate::dtype::Values::Int32($v) => $crate::dtype::Values::Int32($body),
            $crate::dtype::Values::Int64($v) => $crate::dtype::Values::Int64($body),
            $crate::dtype::Values::Uint8($v) => $crate::dtype::Values::Uint8($body),
            $crate::dtype::Values::Uint16($v) => $crate::dtype::Values::Uint16($body),
            $crate::dtype::Values::Uint32($v) => $crate::dtype::Values::Uint32($body),
            $crate::dtype::Values::Uint64($v) => $crate::dtype::Values::Uint64($body),
            $crate::dtype::Values::Float32($v) => $crate::dtype::Values::Float32($body),
            $crate::dtype::Values::Float64($v) => $crate::dtype::Values::Float64($body),
        }
    };
}

/// Values convertible to f64 for statistics.
pub trait AsF64: Copy + Send + Sync {
    fn as_f64(self) -> f64;
}
macro_rules! impl_as_f64 {
    ($($t:ty),*) => { $(impl AsF64 for $t { #[inline] fn as_f64(self) -> f64 { self as f64 } })* };
}
impl_as_f64!(i8, i16, i32, i64, u8, u16, u32, u64, f32);

impl AsF64 for f64 {
    #[inline]
    fn as_f64(self) -> f64 {
        self
    }
}

impl Values {
    pub fn dtype(&self) -> DType {
        match self {
            Values::Bool(_) => DType::Bool,
            Values::Int8(_) => DType::Int8,
            Values::Int16(_) => DType::Int16,
            Values::Int32(_) => DType::Int32,
            Values::Int64(_) => DType::Int64,
            Values::Uint8(_) => DType::Uint8,
            Values::Uint16(_) => DType::Uint16,
            Values::Uint32(_) => DType::Uint32,
            Values::Uint64(_) => DType::Uint64,
            Values::Float32(_) => DType::Float32,
            Values::Float64(_) => DType::Float64,
        }
    }

    pub fn len(&self) -> usize {
        with_values!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn empty(dtype: DType) -> Values {
        match dtype {
            DType::Bool => Values::Bool(vec![]),
            DType::Int8 => Values::Int8(vec![]),
            DType::Int16 => Values::Int16(vec![]),
            DType::Int32 => Values::Int32(vec![]),
            DType::Int64 => Values::Int64(vec![]),
            DType::Uint8 => Values::Uint8(vec![]),
            DType::Uint16 => Values::Uint16(vec![]),
            DType::Uint32 => Values::Uint32(vec![]),
            DType::Uint64 => Values::Uint64(vec![]),
            DType::Float32 => Values::Float32(vec![]),
            DType::Float64 | DType::String => Values::Float64(vec![]),
        }
    }

    /// Gather `idx` (positions into self) into a new buffer of the same dtype.
    pub fn take(&self, idx: &[usize]) -> Values {
        map_values!(self, v => idx.iter().map(|&i| v[i]).collect())
    }

    /// Append a range of another buffer of the same dtype.
    pub fn extend_from(&mut self, other: &Values, range: std::ops::Range<usize>) {
        match (self, other) {
            (Values::Bool(a), Values::Bool(b)) => a.extend_from_slice(&b[range]),
            (Values::Int8(a), Values::Int8(b)) => a.extend_from_slice(&b[range]),
            (Values::Int16(a), Values::Int16(b)) => a.extend_from_slice(&b[range]),
            (Values::Int32(a), Values::Int32(b)) => a.extend_from_slice(&b[range]),
            (Values::Int64(a), Values::Int64(b)) => a.extend_from_slice(&b[range]),
            (Values::Uint8(a), Values::Uint8(b)) => a.extend_from_slice(&b[range]),
            (Values::Uint16(a), Values::Uint16(b)) => a.extend_from_slice(&b[range]),
            (Values::Uint32(a), Values::Uint32(b)) => a.extend_from_slice(&b[range]),
            (Values::Uint64(a), Values::Uint64(b)) => a.extend_from_slice(&b[range]),
            (Values::Float32(a), Values::Float32(b)) => a.extend_from_slice(&b[range]),
            (Values::Float64(a), Values::Float64(b)) => a.extend_from_slice(&b[range]),
            _ => unreachable!("extend_from with mismatched dtypes"),
        }
    }

    /// Value at `i` as f64 (bools as 0/1).
    // The macro also expands for f64, where the cast is a no-op.
    #[allow(clippy::unnecessary_cast)]
    #[inline]
    pub fn get_f64(&self, i: usize) -> f64 {
        with_values!(self, v => v[i] as f64)
    }

    /// Each value as pandas shows it once an index is made strings
    /// (`str(x)`): integers exactly (not through f64, which merged names
    /// above 2^53), floats as Python's repr ("2.0", "1e-07", "1e+21"),
    /// booleans as "True" / "False".
    pub fn labels(&self) -> Vec<String> {
        match self {
            Values::Bool(v) => v
                .iter()
                .map(|&b| if b != 0 { "True" } else { "False" }.to_string())
                .collect(),
            Values::Float32(v) => v.iter().map(|&x| python_repr(x as f64)).collect(),
            Values::Float64(v) => v.iter().map(|&x| python_repr(x)).collect(),
            _ => with_values!(self, v => v.iter().map(|x| x.to_string()).collect()),
        }
    }

    #[allow(clippy::unnecessary_cast)]
    pub fn to_f64(&self) -> Vec<f64> {
        with_values!(self, v => v.iter().map(|&x| x as f64).collect())
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed
/// notation for decimal exponents in [-4, 16), else scientific with a sign
/// and at least two exponent digits; "nan", "inf", "-inf".
pub fn python_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e-7", "2e0".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod repr_tests {
    use super::python_repr;

    #[test]
    fn floats_print_as_python_repr() {
        for (x, want) in [
            (2.0, "2.0"),
            (0.5, "0.5"),
            (-0.0, "-0.0"),
            (1e21, "1e+21"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1.5e-300, "1.5e-300"),
            (123.456, "123.456"),
            (-2.5e20, "-2.5e+20"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(python_repr(x), want, "{x}");
        }
    }
}
