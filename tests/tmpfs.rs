//! A tmpfs mounted for a test or a benchmark (root), unmounted when dropped, whatever
//! happened in between: a disk that fills up on purpose, or one in memory that stands for
//! another machine's.

use std::path::{Path, PathBuf};

pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `options` (e.g. `size=24m`, `size=8g,mode=0700`) at `at`.
    pub fn mount(at: &Path, options: &str) -> anyhow::Result<Self> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()?;
        anyhow::ensure!(
            mounted.success(),
            "cannot mount a tmpfs at {}",
            at.display()
        );
        Ok(Self(at.to_path_buf()))
    }

    /// Grows or shrinks it to `size`.
    pub fn resize(&self, size: &str) -> anyhow::Result<()> {
        let resized = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()?;
        anyhow::ensure!(
            resized.success(),
            "cannot resize the tmpfs at {}",
            self.0.display()
        );
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
