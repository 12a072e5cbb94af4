//! Expanding command-line paths into the image files to read.

use std::path::{Path, PathBuf};

/// File extensions treated as receipts when a folder is given.
const IMAGE_EXTENSIONS: [&str; 10] = ["jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "gif", "jfif", "pdf"];

/// Files as given, plus the images directly inside each folder given, sorted by name.
pub fn image_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| anyhow::anyhow!("failed to list {}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|file| file.is_file() && is_image_name(file))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| IMAGE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str()))
}
