//! The site's media while the emulator runs: changed by tests and imports, indexed for
//! lookups by id, and cheap enough to hold a million files (about 200 bytes each).

mod changes;
mod query;

use std::collections::HashMap;

use bytes::Bytes;
use hashbrown::HashTable;

pub(crate) use query::{FileFilter, Scope, Sort, SortField};

use crate::content::{seed_of, Content};
use crate::dates::{unix_now_ms, DATES_FROM};
use crate::library::{fnv64, FileRecord, Folder, Library, MEDIA_ROOT, TRASH_ROOT, VISITOR_UPLOADS};

/// One of the Media Manager's top-level trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Root {
    Media,
    Trash,
    Visitor,
}

impl Root {
    fn of_special(id: &str) -> Option<Root> {
        match id {
            MEDIA_ROOT => Some(Root::Media),
            TRASH_ROOT => Some(Root::Trash),
            VISITOR_UPLOADS => Some(Root::Visitor),
            _ => None,
        }
    }
}

/// Small strings many files share (folder ids, media types, states), kept once each.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
}

struct StoredFile {
    id: String,
    display_name: String,
    parent: u32,
    media_type: u32,
    status: u32,
    state: u32,
    private: bool,
    version: u32,
    size: u64,
    created_ms: u64,
    updated_ms: u64,
}

struct StoredFolder {
    id: String,
    display_name: String,
    parent: u32,
    /// This folder's own id among the parent names.
    name: u32,
    state: u32,
    created_ms: u64,
    updated_ms: u64,
}

/// What few files have: bytes of their own, or an import's origin.
#[derive(Default)]
struct Extra {
    bytes: Option<(Bytes, String)>,
    source_url: Option<String>,
    importing: bool,
}

/// A file as the handlers read it.
pub(crate) struct FileView<'a> {
    pub(crate) id: &'a str,
    pub(crate) display_name: &'a str,
    pub(crate) parent_folder_id: &'a str,
    pub(crate) media_type: &'a str,
    pub(crate) operation_status: &'a str,
    pub(crate) state: &'a str,
    pub(crate) private: bool,
    /// `None` while an import has not finished.
    pub(crate) size: Option<u64>,
    pub(crate) hash: String,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    pub(crate) source_url: Option<&'a str>,
}

/// A folder as the handlers read it.
pub(crate) struct FolderView<'a> {
    pub(crate) id: &'a str,
    pub(crate) display_name: &'a str,
    pub(crate) parent_folder_id: &'a str,
    pub(crate) state: &'a str,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
}

/// A file a test or an import adds.
#[derive(Clone, Debug)]
pub struct NewFile {
    /// Name shown in the Media Manager.
    pub display_name: String,
    /// A folder id, or `media-root` (the default), `trash-root`, `visitor-uploads`.
    pub parent_folder_id: String,
    /// `IMAGE` by default; decides the shape of the new id.
    pub media_type: String,
    /// Private files are only reachable through temporary links.
    pub private: bool,
    /// Generated content of this many bytes (2048 by default), unless `bytes` is given.
    pub size_in_bytes: u64,
    /// Exactly these bytes as the content.
    pub bytes: Option<Vec<u8>>,
}

impl Default for NewFile {
    fn default() -> Self {
        NewFile {
            display_name: "added.jpg".into(),
            parent_folder_id: MEDIA_ROOT.into(),
            media_type: "IMAGE".into(),
            private: false,
            size_in_bytes: 2048,
            bytes: None,
        }
    }
}

pub(crate) struct Store {
    files: Vec<Option<StoredFile>>,
    by_id: HashTable<u32>,
    folders: Vec<Option<StoredFolder>>,
    folder_by_id: HashMap<String, u32>,
    parents: Interner,
    labels: Interner,
    /// The root each parent name leads to, by its index; `None` for names that lead nowhere.
    roots: Vec<Option<Root>>,
    extras: HashMap<u32, Extra>,
    /// Bumped by every change, so cached query results know when they are stale.
    version: u64,
    cache: query::Cache,
    prefix: String,
    rng: fastrand::Rng,
}

fn id_hash(id: &str) -> u64 {
    fnv64(id.as_bytes())
}

/// Seeded dates: spread over three years from 2022 and stable per id.
fn seeded_dates(id: &str) -> (u64, u64) {
    let h = fnv64(id.as_bytes());
    let created = DATES_FROM + h % (3 * 365 * 86_400);
    let updated = created + (h >> 32) % (30 * 86_400);
    (created * 1000, updated * 1000)
}

/// A changed item's new `updatedDate`: now, and always later than before.
fn bumped(updated_ms: u64) -> u64 {
    unix_now_ms().max(updated_ms + 1)
}

impl Store {
    pub(crate) fn new(library: Library, seed: u64) -> Store {
        let prefix = library
            .files
            .first()
            .and_then(|f| f.id.split_once('_'))
            .map(|(p, _)| p)
            .filter(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or("e1e1e1")
            .to_string();
        let mut store = Store {
            files: Vec::with_capacity(library.files.len()),
            by_id: HashTable::with_capacity(library.files.len()),
            folders: Vec::with_capacity(library.folders.len()),
            folder_by_id: HashMap::with_capacity(library.folders.len()),
            parents: Interner::default(),
            labels: Interner::default(),
            roots: Vec::new(),
            extras: HashMap::new(),
            version: 0,
            cache: query::Cache::default(),
            prefix,
            rng: fastrand::Rng::with_seed(seed),
        };
        for special in [MEDIA_ROOT, TRASH_ROOT, VISITOR_UPLOADS] {
            store.parents.intern(special);
        }
        for folder in library.folders {
            if store.folder_by_id.contains_key(&folder.id) {
                continue;
            }
            let (created_ms, updated_ms) = seeded_dates(&folder.id);
            store.insert_folder(
                StoredFolder {
                    name: 0,
                    parent: 0,
                    state: 0,
                    display_name: folder.display_name,
                    created_ms,
                    updated_ms,
                    id: folder.id,
                },
                &folder.parent_folder_id,
                &folder.state,
            );
        }
        for file in library.files {
            if store.lookup(&file.id).is_some() {
                continue;
            }
            let (created_ms, updated_ms) = seeded_dates(&file.id);
            let stored = StoredFile {
                parent: store.parents.intern(&file.parent_folder_id),
                media_type: store.labels.intern(&file.media_type),
                status: store.labels.intern(&file.operation_status),
                state: store.labels.intern(&file.state),
                private: file.private,
                version: 0,
                size: file.size_in_bytes,
                created_ms,
                updated_ms,
                display_name: file.display_name,
                id: file.id,
            };
            store.insert_file(stored);
        }
        store.recompute_roots();
        store
    }

    fn insert_folder(&mut self, mut folder: StoredFolder, parent: &str, state: &str) -> u32 {
        folder.parent = self.parents.intern(parent);
        folder.name = self.parents.intern(&folder.id);
        folder.state = self.labels.intern(state);
        let slot = self.folders.len() as u32;
        self.folder_by_id.insert(folder.id.clone(), slot);
        self.folders.push(Some(folder));
        slot
    }

    fn insert_file(&mut self, file: StoredFile) -> u32 {
        let slot = self.files.len() as u32;
        let hash = id_hash(&file.id);
        self.files.push(Some(file));
        let files = &self.files;
        self.by_id.insert_unique(hash, slot, |&s| {
            files[s as usize].as_ref().map_or(0, |f| id_hash(&f.id))
        });
        slot
    }

    /// Every parent name's root again, after folders moved or went.
    fn recompute_roots(&mut self) {
        let roots: Vec<Option<Root>> = (0..self.parents.names.len() as u32)
            .map(|i| self.root_of_name(self.parents.name(i)))
            .collect();
        self.roots = roots;
    }

    fn root_of_name(&self, name: &str) -> Option<Root> {
        let mut current = name;
        // A folder cycle in a hand-made library must not hang the emulator.
        for _ in 0..=self.folders.len() {
            if let Some(root) = Root::of_special(current) {
                return Some(root);
            }
            let folder = self
                .folder_slot(current)
                .and_then(|s| self.folders[s as usize].as_ref())?;
            current = self.parents.name(folder.parent);
        }
        None
    }

    fn root_of_parent(&mut self, parent: u32) -> Option<Root> {
        while self.roots.len() <= parent as usize {
            let i = self.roots.len() as u32;
            let root = self.root_of_name(self.parents.name(i));
            self.roots.push(root);
        }
        self.roots[parent as usize]
    }

    fn changed(&mut self) {
        self.version += 1;
    }

    pub(crate) fn lookup(&self, id: &str) -> Option<u32> {
        let files = &self.files;
        self.by_id
            .find(id_hash(id), |&s| files[s as usize].as_ref().is_some_and(|f| f.id == id))
            .copied()
    }

    fn folder_slot(&self, id: &str) -> Option<u32> {
        self.folder_by_id.get(id).copied()
    }

    fn file_at(&self, slot: u32) -> &StoredFile {
        self.files[slot as usize].as_ref().expect("slots handed out are live")
    }

    fn file_mut(&mut self, id: &str) -> Option<(u32, &mut StoredFile)> {
        let slot = self.lookup(id)?;
        self.files[slot as usize].as_mut().map(|f| (slot, f))
    }

    pub(crate) fn file_count(&self) -> usize {
        self.by_id.len()
    }

    /// The content a file serves now.
    pub(crate) fn content(&self, slot: u32) -> Content {
        if let Some((bytes, _)) = self.extras.get(&slot).and_then(|e| e.bytes.as_ref()) {
            return Content::Stored(bytes.clone());
        }
        let f = self.file_at(slot);
        Content::Generated {
            seed: seed_of(&f.id, f.version),
            len: f.size,
        }
    }

    pub(crate) fn view(&self, slot: u32) -> FileView<'_> {
        let f = self.file_at(slot);
        let extra = self.extras.get(&slot);
        let importing = extra.is_some_and(|e| e.importing);
        let hash = match extra.and_then(|e| e.bytes.as_ref()) {
            _ if importing => String::new(),
            Some((_, hash)) => hash.clone(),
            None => self.content(slot).hash(),
        };
        FileView {
            id: &f.id,
            display_name: &f.display_name,
            parent_folder_id: self.parents.name(f.parent),
            media_type: self.labels.name(f.media_type),
            operation_status: self.labels.name(f.status),
            state: self.labels.name(f.state),
            private: f.private,
            size: (!importing).then_some(f.size),
            hash,
            created_ms: f.created_ms,
            updated_ms: f.updated_ms,
            source_url: extra.and_then(|e| e.source_url.as_deref()),
        }
    }

    pub(crate) fn record(&self, slot: u32) -> FileRecord {
        let v = self.view(slot);
        FileRecord {
            id: v.id.to_string(),
            display_name: v.display_name.to_string(),
            parent_folder_id: v.parent_folder_id.to_string(),
            media_type: v.media_type.to_string(),
            private: v.private,
            operation_status: v.operation_status.to_string(),
            state: v.state.to_string(),
            size_in_bytes: v.size.unwrap_or(0),
        }
    }

    pub(crate) fn folder_lookup(&self, id: &str) -> Option<u32> {
        self.folder_slot(id).filter(|&s| self.folders[s as usize].is_some())
    }

    pub(crate) fn folder_view(&self, slot: u32) -> FolderView<'_> {
        let f = self.folders[slot as usize].as_ref().expect("slots handed out are live");
        FolderView {
            id: &f.id,
            display_name: &f.display_name,
            parent_folder_id: self.parents.name(f.parent),
            state: self.labels.name(f.state),
            created_ms: f.created_ms,
            updated_ms: f.updated_ms,
        }
    }

    /// The id of the folder called `name` directly in `parent`, if there is one.
    pub(crate) fn child_folder_named(&self, parent: &str, name: &str) -> Option<String> {
        let parent = self.parents.get(parent)?;
        self.folders
            .iter()
            .flatten()
            .find(|f| f.parent == parent && f.display_name == name)
            .map(|f| f.id.clone())
    }

    /// Whether files may live under `id`: a special root or a known folder.
    pub(crate) fn is_container(&self, id: &str) -> bool {
        Root::of_special(id).is_some() || self.folder_lookup(id).is_some()
    }

    #[cfg(test)]
    pub(crate) fn root_of_file(&mut self, slot: u32) -> Option<Root> {
        let parent = self.file_at(slot).parent;
        self.root_of_parent(parent)
    }

    /// The display names of the folders above a file, outermost first, joined by `/`;
    /// the walk stops below `stop_at` (a folder archive's own folder) or at a special root.
    pub(crate) fn folder_path(&self, slot: u32, stop_at: Option<&str>) -> String {
        let mut names = Vec::new();
        let mut current = self.parents.name(self.file_at(slot).parent);
        for _ in 0..=self.folders.len() {
            if Some(current) == stop_at || Root::of_special(current).is_some() {
                break;
            }
            let Some(folder) = self
                .folder_slot(current)
                .and_then(|s| self.folders[s as usize].as_ref())
            else {
                break;
            };
            names.push(folder.display_name.as_str());
            current = self.parents.name(folder.parent);
        }
        names.reverse();
        names.join("/")
    }

    /// Everything as a [`Library`] value, files and folders in the order they were added.
    pub(crate) fn snapshot(&self) -> Library {
        let folders = self
            .folders
            .iter()
            .flatten()
            .map(|f| Folder {
                id: f.id.clone(),
                display_name: f.display_name.clone(),
                parent_folder_id: self.parents.name(f.parent).to_string(),
                state: self.labels.name(f.state).to_string(),
            })
            .collect();
        let files = (0..self.files.len() as u32)
            .filter(|&s| self.files[s as usize].is_some())
            .map(|s| self.record(s))
            .collect();
        Library { folders, files }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_show_in_lookups_views_and_snapshots() {
        let mut store = Store::new(Library::seeded(200, 3), 1);
        assert_eq!(store.file_count(), 200);
        let lib = store.snapshot();
        let first = lib.files[0].clone();
        let slot = store.lookup(&first.id).unwrap();
        let before = (
            store.view(slot).hash,
            store.view(slot).updated_ms,
            store.content(slot).to_vec(),
        );
        assert_eq!(before.2, lib.content(&first.id).unwrap());
        assert!(store.change_content(&first.id));
        let v = store.view(slot);
        assert_ne!(v.hash, before.0);
        assert!(v.updated_ms > before.1);
        assert_ne!(store.content(slot).to_vec(), before.2);
        assert_eq!(store.content(slot).len(), first.size_in_bytes);

        assert!(store.set_bytes(&first.id, Bytes::from_static(b"hello")));
        assert_eq!(store.content(slot).to_vec(), b"hello");
        assert_eq!(store.view(slot).size, Some(5));

        let folder = lib.folders[0].id.clone();
        let added = store
            .add_file(
                NewFile {
                    parent_folder_id: folder.clone(),
                    media_type: "VIDEO".into(),
                    ..NewFile::default()
                },
                None,
            )
            .unwrap();
        let id = store.view(added).id.to_string();
        assert!(id.starts_with(&lib.files[0].id[..7]) && !id.contains('.'));
        assert_eq!(store.file_count(), 201);
        assert!(store
            .add_file(
                NewFile {
                    parent_folder_id: "fnope".into(),
                    ..NewFile::default()
                },
                None
            )
            .is_err());

        assert!(store.delete_file(&id, true));
        assert_eq!(store.view(added).parent_folder_id, TRASH_ROOT);
        assert_eq!(store.root_of_file(added), Some(Root::Trash));
        assert!(store.delete_file(&id, false));
        assert!(store.lookup(&id).is_none());
        assert_eq!(store.file_count(), 200);

        // Trashing a folder takes its files to the trash root; deleting it removes them.
        let (_, inside) = store.subtree(store.folder_lookup(&folder).unwrap());
        assert!(!inside.is_empty());
        assert!(store.delete_folder(&folder, true));
        assert!(inside.iter().all(|&s| store.root_of_file(s) == Some(Root::Trash)));
        assert!(store.delete_folder(&folder, false));
        assert!(store.folder_lookup(&folder).is_none());
        assert!(inside.iter().all(|&s| store.files[s as usize].is_none()));
        assert_eq!(store.snapshot().files.len(), store.file_count());
    }

    #[test]
    fn folder_paths() {
        let lib = Library::seeded(600, 2);
        let mut store = Store::new(lib.clone(), 1);
        let nested = lib
            .files
            .iter()
            .find(|f| {
                lib.folder(&f.parent_folder_id)
                    .is_some_and(|p| p.parent_folder_id != MEDIA_ROOT)
            })
            .unwrap();
        let parent = lib.folder(&nested.parent_folder_id).unwrap();
        let grand = lib.folder(&parent.parent_folder_id).unwrap();
        let slot = store.lookup(&nested.id).unwrap();
        let path = store.folder_path(slot, None);
        assert!(
            path.ends_with(&format!("{}/{}", grand.display_name, parent.display_name)),
            "{path}"
        );
        assert_eq!(store.folder_path(slot, Some(&grand.id)), parent.display_name);
        assert_eq!(store.root_of_file(slot), Some(Root::Media));
    }
}
