//! The modes where Wix's behaviour is unconfirmed: unknown, private and left-out files in
//! archives, entry names, sorting, media-type filters and paging shapes.

mod common;

use common::{app_code, central_names, violations, zip_entries, Site};
use serde_json::{json, Value};
use wix_emulator::{
    EmulatorConfig, EntryNames, Library, NewFile, PagingStyle, PrivateInArchive, UnknownIds, MEDIA_ROOT,
};

const UNKNOWN: &str = "abcdef_00000000000000000000000000000000~mv2.jpg";

fn ready_public(lib: &Library, media_type: &str) -> String {
    lib.files
        .iter()
        .find(|f| f.media_type == media_type && !f.private && f.state == "OK" && f.operation_status == "READY")
        .map(|f| f.id.clone())
        .unwrap_or_else(|| panic!("a ready public {media_type}"))
}

#[tokio::test]
async fn unnamed_validation_error_says_not_which_ids() {
    let site = Site::start(EmulatorConfig {
        unknown_ids: UnknownIds::ValidationUnnamed,
        ..EmulatorConfig::default()
    })
    .await;
    let known = ready_public(&site.emu.library(), "IMAGE");
    let (status, body) = site.archive(&[known, UNKNOWN.into()]).await;
    assert_eq!(status, 400);
    let v = violations(&body);
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0]["field"].as_str(), v[0]["ruleName"].as_str()),
        (Some("fileIds"), Some("RESOURCE_NOT_FOUND"))
    );
    assert!(!body.to_string().contains(UNKNOWN));
}

#[tokio::test]
async fn named_validation_error_has_one_violation_per_unknown_id() {
    let site = Site::start(EmulatorConfig::default()).await;
    let known = ready_public(&site.emu.library(), "IMAGE");
    let other = "abcdef_11111111111111111111111111111111.pdf";
    // A repeat of an unknown id (as a media URL) is reported once, at its first index.
    let sent = vec![
        UNKNOWN.to_string(),
        known,
        format!("wix:image://v1/{UNKNOWN}/x.jpg"),
        other.to_string(),
    ];
    let (status, body) = site.archive(&sent).await;
    assert_eq!(status, 400);
    let fields: Vec<(&str, Value)> = violations(&body)
        .iter()
        .map(|v| (v["field"].as_str().unwrap(), v["data"]["fileIds"].clone()))
        .collect();
    assert_eq!(
        fields,
        [("fileIds[0]", json!([UNKNOWN])), ("fileIds[3]", json!([other]))]
    );
    assert_eq!(violations(&body)[0]["violatedRule"], "OTHER");
    assert!(body["message"].as_str().unwrap().starts_with("INVALID_ARGUMENT"));
}

#[tokio::test]
async fn nothing_to_download_from_the_call_or_from_the_link() {
    let site = Site::start(EmulatorConfig {
        unknown_ids: UnknownIds::NothingToDownload,
        ..EmulatorConfig::default()
    })
    .await;
    let known = ready_public(&site.emu.library(), "IMAGE");
    let (status, body) = site.archive(&[UNKNOWN.into()]).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Nothing to download");
    assert_eq!(app_code(&body), "NOTHING_TO_DOWNLOAD");
    // With something left, the unknown id is simply not there.
    let url = site.archive_url(&[UNKNOWN.into(), known.clone()]).await;
    assert_eq!(site.emu.archive_file_ids(&url), Some(vec![known.clone()]));
    let names: Vec<String> = zip_entries(&site.download(&url).await)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, [known.as_str()]);

    site.emu.set_unknown_ids(UnknownIds::NothingToDownloadOnLink);
    let url = site.archive_url(&[UNKNOWN.into()]).await;
    let resp = site.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Nothing to download");
    let url = site.archive_url(&[known.clone(), UNKNOWN.into()]).await;
    assert_eq!(zip_entries(&site.download(&url).await).len(), 1);
}

#[tokio::test]
async fn private_files_left_out_and_media_types_omitted() {
    let site = Site::start(EmulatorConfig {
        private_in_archive: PrivateInArchive::Omit,
        omit_media_types: vec!["MODEL3D".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let lib = site.emu.library();
    let image = ready_public(&lib, "IMAGE");
    let model = ready_public(&lib, "MODEL3D");
    assert!(model.ends_with(".glb"));
    let private = lib.files.iter().find(|f| f.private).unwrap().id.clone();
    let url = site.archive_url(&[private.clone(), model.clone(), image.clone()]).await;
    assert_eq!(site.emu.archive_file_ids(&url), Some(vec![image.clone()]));
    let names: Vec<String> = zip_entries(&site.download(&url).await)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, [image.as_str()]);

    // Without the modes, both are in.
    site.emu.set_private_in_archive(PrivateInArchive::Include);
    site.emu.set_omit_media_types(&[]);
    let url = site.archive_url(&[private.clone(), model.clone(), image.clone()]).await;
    assert_eq!(zip_entries(&site.download(&url).await).len(), 3);
    // Nothing left after omission, in the Nothing-to-download mode, is refused.
    site.emu.set_omit_media_types(&["MODEL3D"]);
    site.emu.set_unknown_ids(UnknownIds::NothingToDownload);
    let (status, body) = site.archive(&[model]).await;
    assert_eq!((status.as_u16(), app_code(&body)), (400, "NOTHING_TO_DOWNLOAD"));
}

#[tokio::test]
async fn entries_named_by_display_name_keep_repeats() {
    let site = Site::start(EmulatorConfig {
        entry_names: EntryNames::DisplayName,
        ..EmulatorConfig::default()
    })
    .await;
    let twin = |size| NewFile {
        display_name: "same.jpg".into(),
        size_in_bytes: size,
        ..NewFile::default()
    };
    let added = site.emu.add_files(vec![twin(100), twin(200)]).unwrap();
    let ids: Vec<String> = added.iter().map(|f| f.id.clone()).collect();
    assert_ne!(ids[0], ids[1]);
    let bytes = site.download(&site.archive_url(&ids).await).await;
    assert_eq!(central_names(&bytes), ["same.jpg", "same.jpg"]);
}

#[tokio::test]
async fn entries_named_by_folder_path() {
    let site = Site::start(EmulatorConfig {
        entry_names: EntryNames::FolderPath,
        library: Library::flat(2),
        ..EmulatorConfig::default()
    })
    .await;
    let top = site.emu.add_folder("Top", MEDIA_ROOT).unwrap();
    let inner = site.emu.add_folder("Inner", &top.id).unwrap();
    let in_inner = site
        .emu
        .add_file(NewFile {
            display_name: "deep.pdf".into(),
            parent_folder_id: inner.id.clone(),
            media_type: "DOCUMENT".into(),
            ..NewFile::default()
        })
        .unwrap();
    let in_top = site
        .emu
        .add_file(NewFile {
            display_name: "shallow.jpg".into(),
            parent_folder_id: top.id.clone(),
            ..NewFile::default()
        })
        .unwrap();
    let at_root = Library::file_id(0);
    let ids = vec![in_inner.id.clone(), in_top.id.clone(), at_root];
    let names: Vec<String> = zip_entries(&site.download(&site.archive_url(&ids).await).await)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["Top/Inner/deep.pdf", "Top/shallow.jpg", "image-0.jpg"]);

    // A folder archive keeps the sub-folders below it, not its own name.
    let (status, body) = site
        .post(
            &format!("/site-media/v1/folders/{}/generate-download-url", top.id),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = zip_entries(&site.download(body["downloadUrl"].as_str().unwrap()).await)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    assert_eq!(names, ["Inner/deep.pdf", "shallow.jpg"]);
}

#[tokio::test]
async fn sorting_and_media_type_filters() {
    let site = Site::start(EmulatorConfig::default()).await;
    let lib = site.emu.library();
    let by = |field: &str, order: &str| json!({ "sort": { "fieldName": field, "order": order } });

    let files = site.search_all(by("sizeInBytes", "DESC")).await;
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| f["sizeInBytes"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
    let files = site.search_all(json!({ "sort": { "fieldName": "displayName" } })).await;
    let names: Vec<&str> = files.iter().map(|f| f["displayName"].as_str().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "ASC when only a field is given");
    let files = site.search_all(by("updatedDate", "ASC")).await;
    let dates: Vec<&str> = files.iter().map(|f| f["updatedDate"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]));

    let (status, body) = site.post("/site-media/v1/files/search", by("createdDate", "ASC")).await;
    assert_eq!(status, 400);
    let v = &violations(&body)[0];
    assert_eq!(v["ruleName"], "UNSUPPORTED_SORT_VALUE");
    assert_eq!(
        v["data"]["allowedValues"],
        json!(["displayName", "updatedDate", "sizeInBytes"])
    );
    assert_eq!(v["data"]["requestValue"], "createdDate");
    let (status, _) = site.get("/site-media/v1/files?sort.fieldName=hash").await;
    assert_eq!(status, 400);
    let (status, body) = site
        .post("/site-media/v1/folders/search", by("sizeInBytes", "ASC"))
        .await;
    assert_eq!(
        (status.as_u16(), violations(&body)[0]["ruleName"].as_str()),
        (400, Some("UNSUPPORTED_SORT_VALUE"))
    );

    // OTHER cannot be filtered on, by default; a mode accepts it.
    let other = json!({ "mediaTypes": ["IMAGE", "OTHER"] });
    let (status, body) = site.post("/site-media/v1/files/search", other.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(violations(&body)[0]["ruleName"], "UNSUPPORTED_MEDIA_TYPE");
    let (status, _) = site.get("/site-media/v1/files?mediaTypes=OTHER").await;
    assert_eq!(status, 400);
    site.emu.set_refuse_other_media_type(false);
    let found = site.search_all(json!({ "mediaTypes": ["OTHER"] })).await;
    let expected = lib.files.iter().filter(|f| f.media_type == "OTHER").count();
    assert!(expected > 0);
    assert_eq!(found.len(), expected);
    let models = site.search_all(json!({ "mediaTypes": ["MODEL3D"] })).await;
    assert!(!models.is_empty() && models.iter().all(|f| f["mediaType"] == "MODEL3D"));
}

#[tokio::test]
async fn cursors_only_paging() {
    let site = Site::start(EmulatorConfig {
        paging: PagingStyle::CursorsOnly,
        ..EmulatorConfig::default()
    })
    .await;
    let (_, first) = site
        .post("/site-media/v1/files/search", json!({ "paging": { "limit": 100 } }))
        .await;
    assert!(first["nextCursor"].get("hasNext").is_none() && first["nextCursor"].get("total").is_none());
    assert!(!first["nextCursor"]["cursors"]["next"].as_str().unwrap().is_empty());
    assert_eq!(site.search_all(json!({})).await.len(), 250);
    let (_, trash) = site
        .post("/site-media/v1/files/search", json!({ "rootFolder": "TRASH_ROOT" }))
        .await;
    assert_eq!(trash["nextCursor"], json!({ "cursors": { "next": "" } }));
}
