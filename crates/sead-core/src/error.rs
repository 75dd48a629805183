//! Errors the core returns. Each carries a sentence that names the argument and the problem.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// An argument has the wrong size, shape or value.
    Invalid(String),
    /// The request would need more memory than allowed.
    TooLarge(String),
    /// The caller cancelled the work.
    Cancelled,
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

/// A byte count for messages: "512 bytes", "1.50 MiB", "456.35 GiB".
pub fn format_bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024.0 {
        return format!("{n} bytes");
    }
    let mut v = n / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(m) | Error::TooLarge(m) => f.write_str(m),
            Error::Cancelled => f.write_str("the operation was cancelled"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::format_bytes;

    #[test]
    fn byte_counts_read_in_the_nearest_unit() {
        assert_eq!(format_bytes(512.0), "512 bytes");
        assert_eq!(format_bytes(1536.0), "1.50 KiB");
        assert_eq!(format_bytes((64u64 << 20) as f64), "64.00 MiB");
        assert_eq!(format_bytes((16u64 << 30) as f64), "16.00 GiB");
        assert_eq!(format_bytes(3.0 * (1u64 << 50) as f64), "3072.00 TiB");
    }
}
