//! What the emulator's newer test files share: a started emulator and a client that speaks to it.

#![allow(dead_code)]

use std::io::{Cursor, Read};

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use wix_emulator::{Emulator, EmulatorConfig};

pub const KEY: &str = "emulator-api-key";
pub const SITE: &str = "emulator-site-id";

/// An emulator and a client for it.
pub struct Site {
    pub emu: Emulator,
    pub client: Client,
}

impl Site {
    pub async fn start(config: EmulatorConfig) -> Site {
        let emu = Emulator::start(config).await.expect("emulator starts");
        Site {
            emu,
            client: Client::new(),
        }
    }

    pub fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header("Authorization", KEY).header("wix-site-id", SITE)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .authed(self.client.post(format!("{}{path}", self.emu.base_url())))
            .json(&body)
            .send()
            .await
            .expect("request succeeds");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        let resp = self
            .authed(self.client.get(format!("{}{path_and_query}", self.emu.base_url())))
            .send()
            .await
            .expect("request succeeds");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Generate Files Download URL for `ids`.
    pub async fn archive(&self, ids: &[String]) -> (StatusCode, Value) {
        self.post("/site-media/v1/files/generate-download-url", json!({ "fileIds": ids }))
            .await
    }

    /// An archive link for `ids`, which must be accepted.
    pub async fn archive_url(&self, ids: &[String]) -> String {
        let (status, body) = self.archive(ids).await;
        assert_eq!(status, 200, "{body}");
        body["downloadUrl"].as_str().unwrap().to_string()
    }

    /// The bytes a link serves, which must answer 200.
    pub async fn download(&self, url: &str) -> Vec<u8> {
        let resp = self.client.get(url).send().await.expect("download starts");
        assert_eq!(resp.status(), 200);
        resp.bytes().await.expect("whole body").to_vec()
    }

    /// A per-file link for `id`.
    pub async fn file_link(&self, id: &str) -> String {
        let (status, body) = self
            .post(
                "/site-media/v1/files/generate-file-download-url",
                json!({ "fileId": id }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["downloadUrls"][0]["url"].as_str().unwrap().to_string()
    }

    /// Every page of a search (`body` without paging), as (id, descriptor) in order.
    pub async fn search_all(&self, body: Value) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut b = body.clone();
            b["paging"] = json!({ "limit": 100, "cursor": cursor });
            let (status, page) = self.post("/site-media/v1/files/search", b).await;
            assert_eq!(status, 200, "{page}");
            out.extend(page["files"].as_array().unwrap().iter().cloned());
            match page["nextCursor"]["cursors"]["next"].as_str() {
                Some(next) if !next.is_empty() => cursor = next.to_string(),
                _ => return out,
            }
        }
    }
}

/// (name, content) of every entry, read with the zip crate (CRCs checked).
pub fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a real zip");
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("entry with a matching CRC");
            (entry.name().to_string(), content)
        })
        .collect()
}

/// The names in a zip's central directory, repeats included (the zip crate shows one per name).
pub fn central_names(bytes: &[u8]) -> Vec<String> {
    let end = bytes.len() - 22;
    assert_eq!(&bytes[end..end + 4], b"PK\x05\x06", "plain end record expected");
    let count = u16::from_le_bytes([bytes[end + 10], bytes[end + 11]]) as usize;
    let mut at = u32::from_le_bytes(bytes[end + 16..end + 20].try_into().unwrap()) as usize;
    let mut names = Vec::new();
    for _ in 0..count {
        assert_eq!(&bytes[at..at + 4], b"PK\x01\x02");
        let u16_at = |o: usize| u16::from_le_bytes([bytes[at + o], bytes[at + o + 1]]) as usize;
        let (name_len, extra_len, comment_len) = (u16_at(28), u16_at(30), u16_at(32));
        names.push(String::from_utf8(bytes[at + 46..at + 46 + name_len].to_vec()).unwrap());
        at += 46 + name_len + extra_len + comment_len;
    }
    names
}

pub fn app_code(body: &Value) -> &str {
    body["details"]["applicationError"]["code"].as_str().unwrap_or("")
}

pub fn violations(body: &Value) -> &Vec<Value> {
    body["details"]["validationError"]["fieldViolations"]
        .as_array()
        .expect("a validation error")
}
