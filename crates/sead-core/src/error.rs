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
