//! File-system steps that never follow a symbolic link, for the directories and files a
//! store keeps inside its own directory: a link planted there must not lead a write (or a
//! read taken for the store's own data) outside it.
//!
//! Each function returns an [`io::Error`]; a symbolic link where a file or directory was
//! expected is reported as `ELOOP` (what `open(2)` with `O_NOFOLLOW` says), which
//! [`is_symlink_error`] recognises, so that callers can turn it into their own typed error
//! naming the path.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Whether `e` says that a path was a symbolic link (`ELOOP`).
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

fn symlink_error() -> io::Error {
    io::Error::from_raw_os_error(libc::ELOOP)
}

/// Adds `O_NOFOLLOW` (and `O_CLOEXEC`) to `options`: opening a symbolic link fails with
/// `ELOOP` instead of opening its target.
pub fn nofollow(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
}

/// Checks that `path` is a directory and not a symbolic link (`ELOOP` if it is one,
/// `NotADirectory` if it is something else, `NotFound` if it is missing).
pub fn check_dir(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(symlink_error());
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    Ok(())
}

/// Makes sure `path` is a directory that is not a symbolic link, creating it (one level:
/// its parent must exist) if it is missing.
pub fn ensure_dir(path: &Path) -> io::Result<()> {
    match check_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(path) {
            // Created meanwhile by someone else: check what it is.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_dir(path),
            r => r,
        },
        r => r,
    }
}

/// [`ensure_dir`] for every directory from `root` (exclusive: the store's own directory,
/// which the user chose and may reach through a link) down to `path` (inclusive), which must
/// lie below `root`.
pub fn ensure_dirs_below(root: &Path, path: &Path) -> io::Result<()> {
    let rel = path.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not inside {}", path.display(), root.display()),
        )
    })?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        ensure_dir(&at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_refused_and_directories_created() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path();
        ensure_dirs_below(root, &root.join("a/b/c")).unwrap();
        assert!(root.join("a/b/c").is_dir());
        std::os::unix::fs::symlink(outside.path(), root.join("a/link")).unwrap();
        let e = ensure_dirs_below(root, &root.join("a/link/x")).unwrap_err();
        assert!(is_symlink_error(&e), "{e}");
        assert!(!outside.path().join("x").exists());
        std::fs::write(root.join("a/file"), b"").unwrap();
        let e = ensure_dir(&root.join("a/file")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
        std::fs::write(outside.path().join("target"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("target"), root.join("f")).unwrap();
        let e = nofollow(OpenOptions::new().read(true))
            .open(root.join("f"))
            .unwrap_err();
        assert!(is_symlink_error(&e), "{e}");
        assert!(ensure_dirs_below(root, outside.path()).is_err());
    }
}
