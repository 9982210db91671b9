//! [`Workspace`]: the directory a command creates its stores in, removed at the end unless
//! kept.

use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};

/// A directory for a command's stores: a fresh temporary directory, or subdirectories of a
/// directory the user named.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    /// Subdirectories created in a user-named root (removed, the root kept).
    created: Vec<PathBuf>,
    /// The temporary root, if the user named none.
    temp: Option<tempfile::TempDir>,
    keep: bool,
}

impl Workspace {
    /// A workspace in `dir` (created if missing), or in a new temporary directory named
    /// `<prefix>…`; `keep` leaves everything in place at the end.
    pub fn new(dir: Option<&Path>, prefix: &str, keep: bool) -> Result<Self> {
        let (root, temp) = match dir {
            Some(d) => {
                if d.exists() && !d.is_dir() {
                    return Err(CliError::Usage(format!("{}: not a directory", d.display())));
                }
                std::fs::create_dir_all(d).map_err(|e| CliError::io("create", d, e))?;
                (d.to_path_buf(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix(prefix)
                    .tempdir()
                    .map_err(|e| CliError::io("create a directory in", std::env::temp_dir(), e))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(Workspace {
            root,
            created: Vec::new(),
            temp,
            keep,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the workspace stays in place at the end.
    pub fn kept(&self) -> bool {
        self.keep
    }

    /// Keeps everything in place at the end after all (to look at a failure).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Claims subdirectory `name` for a store: it must not exist yet (the store creates it).
    pub fn subdir(&mut self, name: &str) -> Result<PathBuf> {
        let path = self.root.join(name);
        if path.exists() {
            return Err(CliError::AlreadyExists(path));
        }
        self.created.push(path.clone());
        Ok(path)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if self.keep {
            if let Some(t) = self.temp.take() {
                let _ = t.keep();
            }
            return;
        }
        for dir in &self.created {
            let _ = std::fs::remove_dir_all(dir);
        }
        // A temporary root is removed by its own drop.
    }
}
