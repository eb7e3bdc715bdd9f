//! Test-only scratch directories: `strait-<tag>-<pid>-<n>` in the temporary directory, fresh
//! for each [`TestDir::new`] and removed with their contents when the guard drops (also when
//! the test panics), so test runs leave nothing there.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory of one test, removed on drop; derefs to its path.
pub struct TestDir(PathBuf);

impl TestDir {
    /// Creates a fresh, empty directory named after `tag`, this process and a counter.
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("strait-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        TestDir(dir)
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
