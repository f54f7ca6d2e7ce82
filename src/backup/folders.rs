//! Folder paths for the folders that hold backed-up files. Search Folders lists every
//! folder of the root in pages of 100 (a call per hundred folders, not one per folder);
//! where Wix refuses it, each needed folder and its ancestors are read one by one, after
//! the archive calls and only while the deadline allows. A folder whose name could not be
//! read shows as its ID.

use std::collections::HashMap;

use rustc_hash::FxHashSet;

use crate::wix::{CallContext, FolderDescriptor, WixClient, WixError, WixErrorKind};

/// Folders asked for per page.
const PAGE_SIZE: u32 = 100;
/// A folder listing longer than this is treated as a Wix fault.
const MAX_PAGES: usize = 100_000;

/// Each known folder's name and parent.
#[derive(Debug, Default, Clone)]
pub struct FolderTree {
    folders: HashMap<String, (String, String)>,
}

/// Why some folder names are missing.
#[derive(Debug)]
pub enum FolderGap {
    /// Wix does not offer Search Folders here; read the folders one by one instead.
    SearchRefused,
    /// A call failed; the names read so far are kept.
    Failed(WixError),
}

impl FolderTree {
    /// Every folder under `root` (`MEDIA_ROOT`, …), from Search Folders.
    pub async fn search(client: &WixClient, ctx: &CallContext, root: &str) -> (FolderTree, Option<FolderGap>) {
        let mut tree = FolderTree::default();
        let mut cursor: Option<String> = None;
        let mut cursors: FxHashSet<String> = FxHashSet::default();
        for page_no in 0..MAX_PAGES {
            let page = match client.search_folders(ctx, root, PAGE_SIZE, cursor.as_deref()).await {
                Ok(page) => page,
                Err(e) if page_no == 0 && is_unsupported(&e) => return (tree, Some(FolderGap::SearchRefused)),
                Err(e) => return (tree, Some(FolderGap::Failed(e))),
            };
            for folder in page.items {
                tree.insert(folder);
            }
            match page.next {
                Some(next) if cursors.insert(next.clone()) => cursor = Some(next),
                _ => break,
            }
        }
        (tree, None)
    }

    /// Reads `wanted` folders and their ancestors one by one (Get Folder), skipping those
    /// already known; stops at the first failure (a deadline, an outage).
    pub async fn fill(
        &mut self,
        client: &WixClient,
        ctx: &CallContext,
        wanted: &[&str],
        roots: &[&str],
    ) -> Option<WixError> {
        let mut queue: Vec<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
        let mut tried: FxHashSet<String> = FxHashSet::default();
        while let Some(id) = queue.pop() {
            if roots.contains(&id.as_str()) || self.folders.contains_key(&id) || !tried.insert(id.clone()) {
                continue;
            }
            match client.get_folder(ctx, &id).await {
                Ok(folder) => {
                    if let Some(parent) = folder.parent_folder_id.clone() {
                        queue.push(parent);
                    }
                    self.insert(folder);
                }
                Err(e) if e.is_unknown_file() => {}
                Err(e) => return Some(e),
            }
        }
        None
    }

    fn insert(&mut self, folder: FolderDescriptor) {
        let name = folder
            .display_name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| folder.id.clone())
            .replace('/', "∕");
        let parent = folder.parent_folder_id.unwrap_or_default();
        self.folders.insert(folder.id, (name, parent));
    }

    /// Every known folder's ID by its path.
    pub fn ids_by_path(&self, roots: &[&str]) -> HashMap<String, String> {
        self.folders
            .keys()
            .map(|id| (self.path(id, roots), id.clone()))
            .collect()
    }

    /// `/Shop/Summer` for a folder, `/` for a root; a folder (or ancestor) whose name is not
    /// known shows its ID in its place.
    pub fn path(&self, id: &str, roots: &[&str]) -> String {
        let mut segments: Vec<&str> = Vec::new();
        let mut current = id;
        // A cycle in Wix's answers must not hang the backup.
        for _ in 0..=self.folders.len() {
            if roots.contains(&current) || current.is_empty() {
                break;
            }
            match self.folders.get(current) {
                Some((name, parent)) => {
                    segments.push(name);
                    current = parent;
                }
                None => {
                    segments.push(current);
                    break;
                }
            }
        }
        segments.reverse();
        format!("/{}", segments.join("/"))
    }
}

/// Wix has no Search Folders at this address (or refuses its body): use Get Folder instead.
fn is_unsupported(e: &WixError) -> bool {
    (e.kind == WixErrorKind::Rejected && matches!(e.status, Some(400 | 404 | 405))) || e.status == Some(501)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str, name: &str, parent: &str) -> FolderDescriptor {
        FolderDescriptor {
            id: id.into(),
            display_name: Some(name.into()),
            parent_folder_id: Some(parent.into()),
        }
    }

    #[test]
    fn paths_from_names_with_gaps_and_cycles() {
        let mut tree = FolderTree::default();
        tree.insert(folder("a", "Shop", "media-root"));
        tree.insert(folder("b", "Summer/Sale", "a"));
        tree.insert(folder("c", "Lost", "zz"));
        tree.insert(folder("x", "X", "y"));
        tree.insert(folder("y", "Y", "x"));
        let roots = ["media-root"];
        assert_eq!(tree.path("media-root", &roots), "/");
        assert_eq!(tree.path("a", &roots), "/Shop");
        assert_eq!(tree.path("b", &roots), "/Shop/Summer∕Sale");
        assert_eq!(tree.path("c", &roots), "/zz/Lost");
        assert_eq!(tree.path("unknown", &roots), "/unknown");
        assert!(tree.path("x", &roots).len() < 100);
    }
}
