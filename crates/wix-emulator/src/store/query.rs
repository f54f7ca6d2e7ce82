//! Filtered, sorted indexes of files and folders, cached per query and library version, so
//! that after a query's first page each page costs only its own items.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use super::{Root, Store};

/// Distinct queries kept at once; more than that and the cache starts over.
const MAX_CACHED: usize = 64;

#[derive(Default)]
pub(super) struct Cache {
    version: u64,
    queries: HashMap<u64, Arc<Vec<u32>>>,
    groups: Option<(u64, Arc<Vec<Vec<u32>>>)>,
}

impl Cache {
    fn get(&mut self, version: u64, fingerprint: u64) -> Option<Arc<Vec<u32>>> {
        if self.version != version {
            self.queries.clear();
            self.version = version;
        }
        self.queries.get(&fingerprint).cloned()
    }

    fn put(&mut self, fingerprint: u64, index: Arc<Vec<u32>>) {
        if self.queries.len() >= MAX_CACHED {
            self.queries.clear();
        }
        self.queries.insert(fingerprint, index);
    }

    pub(super) fn groups(&mut self, version: u64, build: impl FnOnce() -> Vec<Vec<u32>>) -> Arc<Vec<Vec<u32>>> {
        match &self.groups {
            Some((v, groups)) if *v == version => groups.clone(),
            _ => {
                let groups = Arc::new(build());
                self.groups = Some((version, groups.clone()));
                groups
            }
        }
    }
}

/// Where a query looks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope<'a> {
    /// Every level under a root.
    Root(Root),
    /// Directly in one folder (or special root).
    Parent(&'a str),
}

/// Sort fields Wix documents for search and listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortField {
    DisplayName,
    UpdatedDate,
    SizeInBytes,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Sort {
    pub(crate) field: SortField,
    pub(crate) descending: bool,
}

/// What files a search or listing wants.
pub(crate) struct FileFilter<'a> {
    pub(crate) scope: Scope<'a>,
    pub(crate) media_types: &'a [String],
    pub(crate) private: Option<bool>,
    /// Lower-case text the display name must contain; "" for any.
    pub(crate) text: &'a str,
}

fn directed(order: Ordering, descending: bool) -> Ordering {
    if descending {
        order.reverse()
    } else {
        order
    }
}

impl Store {
    /// The folders at and below `folder` (slots) and the files in them.
    pub(crate) fn subtree(&mut self, folder: u32) -> (Vec<u32>, Vec<u32>) {
        let Some(top) = self.folders[folder as usize].as_ref().map(|f| f.name) else {
            return (Vec::new(), Vec::new());
        };
        let (folders, _) = self.folders_below(top);
        let files = self.files_below(top);
        (folders, files)
    }

    /// The files at every level under `id` (a folder or a special root), in the order they were added.
    pub(crate) fn files_under(&mut self, id: &str) -> Vec<u32> {
        match self.parents.get(id) {
            Some(top) => self.files_below(top),
            None => Vec::new(),
        }
    }

    fn files_below(&mut self, top: u32) -> Vec<u32> {
        let (_, names) = self.folders_below(top);
        let groups = self.groups();
        let mut files: Vec<u32> = names
            .iter()
            .flat_map(|&n| groups.get(n as usize).into_iter().flatten().copied())
            .collect();
        files.sort_unstable();
        files
    }

    /// Folder slots at and below the parent name `top` (itself included when it is a folder), and their names.
    fn folders_below(&self, top: u32) -> (Vec<u32>, Vec<u32>) {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (slot, f) in self.folders.iter().enumerate() {
            if let Some(f) = f {
                children.entry(f.parent).or_default().push(slot as u32);
            }
        }
        let mut names = vec![top];
        let mut slots: Vec<u32> = self.folder_slot(self.parents.name(top)).into_iter().collect();
        let mut i = 0;
        while i < names.len() {
            for &child in children.get(&names[i]).into_iter().flatten() {
                if let Some(f) = self.folders[child as usize].as_ref() {
                    if !names.contains(&f.name) {
                        names.push(f.name);
                        slots.push(child);
                    }
                }
            }
            i += 1;
        }
        (slots, names)
    }

    /// The files under every parent name, by the name's index; rebuilt once per change.
    fn groups(&mut self) -> Arc<Vec<Vec<u32>>> {
        self.cache.groups(self.version, || {
            let mut groups: Vec<Vec<u32>> = vec![Vec::new(); self.parents.names.len()];
            for (slot, f) in self.files.iter().enumerate() {
                if let Some(f) = f {
                    groups[f.parent as usize].push(slot as u32);
                }
            }
            groups
        })
    }

    fn ensure_roots(&mut self) {
        if let Some(last) = self.parents.names.len().checked_sub(1) {
            self.root_of_parent(last as u32);
        }
    }

    /// File slots matching `filter` in `sort` order; `fingerprint` must differ between different queries.
    pub(crate) fn files_matching(&mut self, fingerprint: u64, filter: &FileFilter, sort: Sort) -> Arc<Vec<u32>> {
        if let Some(hit) = self.cache.get(self.version, fingerprint) {
            return hit;
        }
        self.ensure_roots();
        let candidates: Vec<u32> = match filter.scope {
            Scope::Root(root) => (0..self.files.len() as u32)
                .filter(|&s| {
                    self.files[s as usize]
                        .as_ref()
                        .is_some_and(|f| self.roots[f.parent as usize] == Some(root))
                })
                .collect(),
            Scope::Parent(parent) => match self.parents.get(parent) {
                Some(p) => self.groups().get(p as usize).cloned().unwrap_or_default(),
                None => Vec::new(),
            },
        };
        let wanted: Vec<u32> = filter.media_types.iter().filter_map(|m| self.labels.get(m)).collect();
        let mut matches: Vec<u32> = candidates
            .into_iter()
            .filter(|&s| {
                let f = self.file_at(s);
                (filter.media_types.is_empty() || wanted.contains(&f.media_type))
                    && filter.private.is_none_or(|p| p == f.private)
                    && (filter.text.is_empty() || f.display_name.to_lowercase().contains(filter.text))
            })
            .collect();
        let files = &self.files;
        let file = |s: &u32| files[*s as usize].as_ref().expect("live");
        matches.sort_unstable_by(|a, b| {
            let (fa, fb) = (file(a), file(b));
            let order = match sort.field {
                SortField::DisplayName => fa.display_name.cmp(&fb.display_name),
                SortField::UpdatedDate => fa.updated_ms.cmp(&fb.updated_ms),
                SortField::SizeInBytes => fa.size.cmp(&fb.size),
            };
            directed(order, sort.descending).then(a.cmp(b))
        });
        let index = Arc::new(matches);
        self.cache.put(fingerprint, index.clone());
        index
    }

    /// Folder slots in `scope` whose name contains `text` (lower case), in `sort` order.
    pub(crate) fn folders_matching(&mut self, fingerprint: u64, scope: Scope, text: &str, sort: Sort) -> Arc<Vec<u32>> {
        if let Some(hit) = self.cache.get(self.version, fingerprint) {
            return hit;
        }
        self.ensure_roots();
        let parent = match scope {
            Scope::Parent(p) => Some(self.parents.get(p)),
            Scope::Root(_) => None,
        };
        let mut matches: Vec<u32> = self
            .folders
            .iter()
            .enumerate()
            .filter_map(|(slot, f)| {
                let f = f.as_ref()?;
                let in_scope = match (scope, parent) {
                    (Scope::Root(root), _) => self.roots[f.parent as usize] == Some(root),
                    (_, Some(p)) => p == Some(f.parent),
                    _ => false,
                };
                (in_scope && (text.is_empty() || f.display_name.to_lowercase().contains(text))).then_some(slot as u32)
            })
            .collect();
        let folders = &self.folders;
        let folder = |s: &u32| folders[*s as usize].as_ref().expect("live");
        matches.sort_unstable_by(|a, b| {
            let (fa, fb) = (folder(a), folder(b));
            let order = match sort.field {
                SortField::DisplayName => fa.display_name.cmp(&fb.display_name),
                SortField::UpdatedDate | SortField::SizeInBytes => fa.updated_ms.cmp(&fb.updated_ms),
            };
            directed(order, sort.descending).then(a.cmp(b))
        });
        let index = Arc::new(matches);
        self.cache.put(fingerprint, index.clone());
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Library;

    const NEWEST_FIRST: Sort = Sort {
        field: SortField::UpdatedDate,
        descending: true,
    };

    #[test]
    fn sorted_filtered_and_cached_until_a_change() {
        let mut store = Store::new(Library::seeded(300, 4), 1);
        let all = FileFilter {
            scope: Scope::Root(Root::Media),
            media_types: &[],
            private: None,
            text: "",
        };
        let index = store.files_matching(1, &all, NEWEST_FIRST);
        assert_eq!(index.len(), 300);
        let dates: Vec<u64> = index.iter().map(|&s| store.view(s).updated_ms).collect();
        assert!(dates.windows(2).all(|w| w[0] >= w[1]));
        assert!(Arc::ptr_eq(&index, &store.files_matching(1, &all, NEWEST_FIRST)));

        let oldest = store.view(*index.last().unwrap()).id.to_string();
        store.change_content(&oldest);
        let again = store.files_matching(1, &all, NEWEST_FIRST);
        assert!(!Arc::ptr_eq(&index, &again));
        assert_eq!(store.view(again[0]).id, oldest);

        let videos = FileFilter {
            media_types: &["VIDEO".to_string()],
            private: Some(false),
            ..all
        };
        let by_size = Sort {
            field: SortField::SizeInBytes,
            descending: false,
        };
        let index = store.files_matching(2, &videos, by_size);
        assert!(!index.is_empty());
        let sizes: Vec<u64> = index.iter().map(|&s| store.view(s).size.unwrap()).collect();
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]));
        assert!(index
            .iter()
            .all(|&s| store.view(s).media_type == "VIDEO" && !store.view(s).private));
        let none = FileFilter {
            media_types: &["NOPE".to_string()],
            ..all
        };
        assert!(store.files_matching(3, &none, by_size).is_empty());
    }
}
