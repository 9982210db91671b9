//! Standard output that survives a closed pipe: `faster inspect d | head` must end quietly,
//! not panic as `println!` does. Everything a command prints for its reader goes through
//! [`emit`]; an `EPIPE` becomes [`CliError::BrokenPipe`], which the binary turns into a
//! quiet exit.

use std::io::{ErrorKind, Write};

use crate::error::{CliError, Result};

/// Writes `text` to standard output and flushes it. A closed pipe is
/// [`CliError::BrokenPipe`]; another failure is [`CliError::Io`].
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => CliError::BrokenPipe,
            _ => CliError::io("write to", "standard output", e),
        })
}
