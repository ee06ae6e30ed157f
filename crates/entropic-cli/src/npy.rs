//! `.npy` arrays for large inputs (NumPy, PyTorch and JAX users hand over
//! arrays without JSON): float64, float32 and integer dtypes, C order,
//! at most 2 dimensions.

use std::io;
use std::path::Path;

use crate::oracle::Array;

/// Largest element count accepted from a header (2^28 elements, 2 GiB of
/// f64): a hostile header cannot make the oracle allocate without bound.
pub const MAX_ELEMENTS: u64 = 1 << 28;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Checks the header-length field against the file size before npyz reads
/// it: a hostile length (up to 4 GiB in format 2/3) must not become an
/// allocation (found by `cargo fuzz`, target `npy_parse`).
fn check_header_length(bytes: &[u8]) -> io::Result<()> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(invalid("not an .npy file (magic string missing)"));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(invalid(format!("unsupported .npy format version {v}"))),
    };
    if start.saturating_add(len) > bytes.len() {
        return Err(invalid(format!(
            "truncated: the header claims {len} bytes, the file has {}",
            bytes.len()
        )));
    }
    Ok(())
}

/// Reads an `.npy` file into `f64` (exact for every accepted dtype).
///
/// # Errors
/// Unreadable or truncated files, unsupported dtypes (`<f8`, `<f4`, `<i8`,
/// `<i4` and their big-endian forms are accepted), Fortran order, more than
/// two dimensions, too many elements.
pub fn read(path: &Path) -> io::Result<Array> {
    let bytes = std::fs::read(path)?;
    parse(&bytes)
}

/// Parses `.npy` bytes.
///
/// # Errors
/// As [`read`].
pub fn parse(bytes: &[u8]) -> io::Result<Array> {
    check_header_length(bytes)?;
    let npy = npyz::NpyFile::new(bytes)?;
    let shape: Vec<u64> = npy.shape().to_vec();
    if shape.len() > 2 {
        return Err(invalid(format!("expected 1 or 2 dimensions, found shape {shape:?}")));
    }
    if npy.order() != npyz::Order::C && shape.len() == 2 && shape[0] > 1 && shape[1] > 1 {
        return Err(invalid(
            "Fortran-ordered arrays are not supported (use np.ascontiguousarray)",
        ));
    }
    let count = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| invalid("shape overflows"))?;
    if count > MAX_ELEMENTS {
        return Err(invalid(format!("{count} elements exceed the limit of {MAX_ELEMENTS}")));
    }
    let descr = npy.dtype().descr();
    let width = npy.dtype().num_bytes().unwrap_or(0) as u64;
    if (bytes.len() as u64) < count.saturating_mul(width) {
        return Err(invalid(format!(
            "truncated: {count} elements of {width} bytes do not fit in {} bytes",
            bytes.len()
        )));
    }
    let data: Vec<f64> = match descr.trim_matches(['\'', '"']).trim_start_matches(['<', '>', '|', '=']) {
        "f8" => npy.into_vec::<f64>()?,
        "f4" => npy.into_vec::<f32>()?.into_iter().map(f64::from).collect(),
        "i8" => npy.into_vec::<i64>()?.into_iter().map(|v| v as f64).collect(),
        "i4" => npy.into_vec::<i32>()?.into_iter().map(f64::from).collect(),
        other => {
            return Err(invalid(format!(
                "unsupported dtype '{other}' (use float64, float32, int64 or int32)"
            )));
        }
    };
    if data.len() as u64 != count {
        return Err(invalid(format!("expected {count} elements, read {}", data.len())));
    }
    Ok(Array {
        data,
        shape: shape.iter().map(|&d| d as usize).collect(),
    })
}
