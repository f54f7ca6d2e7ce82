//! The Media Manager calls this function makes, each a typed request and answer over the
//! one retry loop.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::WixClient;
use super::context::CallContext;
use super::error::{WixError, WixErrorKind};
use super::models::{FileDescriptor, FolderDescriptor, NextCursor, Page};
use crate::domain::link::Link;

/// Search Files' sort: oldest change first, so a file changed while the listing runs moves
/// behind the cursor (and is listed, perhaps twice) instead of ahead of it (and missed).
const SEARCH_SORT: Sort = Sort {
    field_name: "updatedDate",
    order: "ASC",
};

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct Sort {
    field_name: &'static str,
    order: &'static str,
}

#[derive(Serialize)]
struct Paging<'a> {
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
}

impl WixClient {
    /// Generate Files Download URL: one archive link for 1 to 1000 files.
    pub async fn generate_files_download_url<S: Serialize + Sync>(
        &self,
        ctx: &CallContext,
        file_ids: &[S],
    ) -> Result<Link, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a, S> {
            file_ids: &'a [S],
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            download_url: Option<String>,
        }
        let resp: Resp = self
            .call(
                ctx,
                Method::POST,
                "/site-media/v1/files/generate-download-url",
                Some(&Req { file_ids }),
            )
            .await?;
        self.checked_link(resp.download_url)
    }

    /// Generate File Download URL: a temporary link to one file (private files too), and
    /// when Wix was asked for it (the link's lifetime counts from then).
    pub async fn generate_file_download_url(
        &self,
        ctx: &CallContext,
        file_id: &str,
        download_file_name: Option<&str>,
        expiration_minutes: u32,
    ) -> Result<(Link, std::time::SystemTime), WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            file_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            download_file_name: Option<&'a str>,
            expiration_in_minutes: u32,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            #[serde(default)]
            download_urls: Vec<Url>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Url {
            url: Option<String>,
            asset_key: Option<String>,
        }
        let req = Req {
            file_id,
            download_file_name,
            expiration_in_minutes: expiration_minutes,
        };
        let (resp, asked_at): (Resp, _) = self
            .call_timed(
                ctx,
                Method::POST,
                "/site-media/v1/files/generate-file-download-url",
                Some(&req),
            )
            .await?;
        let url = resp
            .download_urls
            .into_iter()
            .find(|u| u.asset_key.as_deref().is_none_or(|k| k == "src"))
            .and_then(|u| u.url);
        Ok((self.checked_link(url)?, asked_at))
    }

    /// Get Files: descriptors of 1 to 100 files, in the order asked.
    pub async fn get_files(&self, ctx: &CallContext, file_ids: &[String]) -> Result<Vec<FileDescriptor>, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            file_ids: &'a [String],
        }
        #[derive(Deserialize)]
        struct Resp {
            files: Option<Vec<FileDescriptor>>,
        }
        let resp: Resp = self
            .call(
                ctx,
                Method::POST,
                "/site-media/v1/files/get-files",
                Some(&Req { file_ids }),
            )
            .await?;
        resp.files
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered get-files without `files`"))
    }

    /// Search Files: one page of the library under `root_folder`, `limit` ≤ 100, oldest
    /// change first. `media_types` empty: every type.
    pub async fn search_files(
        &self,
        ctx: &CallContext,
        root_folder: &str,
        media_types: &[String],
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<FileDescriptor>, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            root_folder: &'a str,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            media_types: &'a [String],
            sort: Sort,
            paging: Paging<'a>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            files: Option<Vec<FileDescriptor>>,
            next_cursor: Option<NextCursor>,
        }
        let req = Req {
            root_folder,
            media_types,
            sort: SEARCH_SORT,
            paging: Paging { limit, cursor },
        };
        let resp: Resp = self
            .call(ctx, Method::POST, "/site-media/v1/files/search", Some(&req))
            .await?;
        let items = resp
            .files
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered a search without `files`"))?;
        Ok(Page {
            items,
            next: resp.next_cursor.and_then(NextCursor::next),
        })
    }

    /// Search Folders: one page of every folder under `root_folder`, at any depth.
    pub async fn search_folders(
        &self,
        ctx: &CallContext,
        root_folder: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<FolderDescriptor>, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            root_folder: &'a str,
            paging: Paging<'a>,
        }
        let req = Req {
            root_folder,
            paging: Paging { limit, cursor },
        };
        let resp: FolderPage = self
            .call(ctx, Method::POST, "/site-media/v1/folders/search", Some(&req))
            .await?;
        resp.into_page()
    }

    /// List Folders: one page of the folders directly under `parent`.
    pub async fn list_folders(
        &self,
        ctx: &CallContext,
        parent: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<FolderDescriptor>, WixError> {
        let mut url = self.endpoint("/site-media/v1/folders");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("parentFolderId", parent);
            query.append_pair("paging.limit", &limit.to_string());
            if let Some(cursor) = cursor {
                query.append_pair("paging.cursor", cursor);
            }
        }
        let resp: FolderPage = self.call_url(ctx, Method::GET, url, None).await?;
        resp.into_page()
    }

    /// Get Folder: one folder by its ID.
    pub async fn get_folder(&self, ctx: &CallContext, folder_id: &str) -> Result<FolderDescriptor, WixError> {
        #[derive(Deserialize)]
        struct Resp {
            folder: Option<FolderDescriptor>,
        }
        let mut url = self.endpoint("/site-media/v1/folders");
        url.path_segments_mut()
            .map_err(|_| WixError::new(WixErrorKind::Rejected, "the Wix base URL cannot take a path"))?
            .push(folder_id);
        let resp: Resp = self.call_url(ctx, Method::GET, url, None).await?;
        resp.folder
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered a folder without `folder`"))
    }
}

/// What Import File needs to know of a file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequest<'a> {
    /// Where Wix fetches the bytes (a presigned URL).
    pub url: &'a str,
    pub display_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<&'a str>,
    pub parent_folder_id: &'a str,
    pub private: bool,
}

impl WixClient {
    /// Import File: Wix fetches `url` into a new file, `PENDING` until it is `READY`.
    pub async fn import_file(&self, ctx: &CallContext, req: &ImportRequest<'_>) -> Result<FileDescriptor, WixError> {
        #[derive(Deserialize)]
        struct Resp {
            file: Option<FileDescriptor>,
        }
        let resp: Resp = self
            .call(ctx, Method::POST, "/site-media/v1/files/import", Some(req))
            .await?;
        resp.file
            .ok_or_else(|| WixError::new(WixErrorKind::InvalidResponse, "Wix answered an import without `file`"))
    }

    /// Create Folder: a folder named `display_name` under `parent`.
    pub async fn create_folder(
        &self,
        ctx: &CallContext,
        display_name: &str,
        parent: &str,
    ) -> Result<FolderDescriptor, WixError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Req<'a> {
            display_name: &'a str,
            parent_folder_id: &'a str,
        }
        #[derive(Deserialize)]
        struct Resp {
            folder: Option<FolderDescriptor>,
        }
        let resp: Resp = self
            .call(
                ctx,
                Method::POST,
                "/site-media/v1/folders",
                Some(&Req {
                    display_name,
                    parent_folder_id: parent,
                }),
            )
            .await?;
        resp.folder.ok_or_else(|| {
            WixError::new(
                WixErrorKind::InvalidResponse,
                "Wix answered a new folder without `folder`",
            )
        })
    }

    /// List Files: one page of the files directly in `parent`.
    pub async fn list_files(
        &self,
        ctx: &CallContext,
        parent: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<FileDescriptor>, WixError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            files: Option<Vec<FileDescriptor>>,
            next_cursor: Option<NextCursor>,
        }
        let mut url = self.endpoint("/site-media/v1/files");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("parentFolderId", parent);
            query.append_pair("paging.limit", &limit.to_string());
            if let Some(cursor) = cursor {
                query.append_pair("paging.cursor", cursor);
            }
        }
        let resp: Resp = self.call_url(ctx, Method::GET, url, None).await?;
        let items = resp.files.ok_or_else(|| {
            WixError::new(
                WixErrorKind::InvalidResponse,
                "Wix answered a file list without `files`",
            )
        })?;
        Ok(Page {
            items,
            next: resp.next_cursor.and_then(NextCursor::next),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FolderPage {
    folders: Option<Vec<FolderDescriptor>>,
    next_cursor: Option<NextCursor>,
}

impl FolderPage {
    fn into_page(self) -> Result<Page<FolderDescriptor>, WixError> {
        let items = self.folders.ok_or_else(|| {
            WixError::new(
                WixErrorKind::InvalidResponse,
                "Wix answered a folder list without `folders`",
            )
        })?;
        Ok(Page {
            items,
            next: self.next_cursor.and_then(NextCursor::next),
        })
    }
}
