// A careful hand-written client, as a site developer would write one to turn a long list
// of Wix media IDs into archive links with Wix's REST API directly: the IDs de-duplicated
// and cut into batches of 1000, four calls at once (p-limit), and every 429, 5xx or broken
// connection retried with exponential backoff and full jitter, honouring Retry-After.
//
//   node careful.mjs <wix base URL> <request body JSON file>
//   env: WIX_API_KEY, WIX_SITE_ID
//
// Prints one JSON line: {"files", "archives", "failed", "calls", "retries", "rateLimited"}.
import { readFile } from "node:fs/promises";
import pLimit from "p-limit";

const CONCURRENCY = 4;
const MAX_RETRIES = 10;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;

const [base, bodyFile] = process.argv.slice(2);
if (!base || !bodyFile) {
  console.error("usage: node careful.mjs <wix base URL> <request body JSON file>");
  process.exit(2);
}
const headers = {
  Authorization: process.env.WIX_API_KEY,
  "wix-site-id": process.env.WIX_SITE_ID,
  "Content-Type": "application/json",
};

const { fileIds } = JSON.parse(await readFile(bodyFile, "utf8"));
// Wix media URLs to bare IDs, as Wix's SDK does it; duplicates removed, first one kept.
const bare = (s) => {
  let id = s.trim().split("#")[0].split("?")[0].replace(/^wix:/, "");
  id = id.replace(/^[a-z]+:\/\/v1\//, "").replace(/^ugd\//, "");
  return id.split("/")[0];
};
const ids = [...new Set(fileIds.map(bare))];
const batches = [];
for (let i = 0; i < ids.length; i += 1000) batches.push(ids.slice(i, i + 1000));

const stats = { calls: 0, retries: 0, rateLimited: 0 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const backoff = (attempt) => Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);

async function archive(batch) {
  for (let attempt = 0; ; attempt++) {
    let wait;
    try {
      stats.calls++;
      const res = await fetch(`${base}/site-media/v1/files/generate-download-url`, {
        method: "POST",
        headers,
        body: JSON.stringify({ fileIds: batch }),
      });
      if (res.ok) {
        const { downloadUrl } = await res.json();
        if (!downloadUrl) throw new Error("no downloadUrl");
        return downloadUrl;
      }
      await res.arrayBuffer();
      if (res.status !== 429 && res.status < 500) throw new Error(`Wix answered ${res.status}`);
      if (res.status === 429) stats.rateLimited++;
      const retryAfter = Number(res.headers.get("retry-after"));
      wait = retryAfter > 0 ? retryAfter * 1000 : backoff(attempt);
    } catch (e) {
      if (e.message?.startsWith("Wix answered") || e.message === "no downloadUrl") throw e;
      wait = backoff(attempt);
    }
    if (attempt >= MAX_RETRIES) throw new Error("out of retries");
    stats.retries++;
    await sleep(wait);
  }
}

const limit = pLimit(CONCURRENCY);
const results = await Promise.allSettled(batches.map((batch) => limit(() => archive(batch))));
const archived = results.filter((r) => r.status === "fulfilled").length;
const failedFiles = results.reduce((n, r, i) => n + (r.status === "rejected" ? batches[i].length : 0), 0);
console.log(
  JSON.stringify({
    files: ids.length,
    archives: archived,
    failed: failedFiles,
    calls: stats.calls,
    retries: stats.retries,
    rateLimited: stats.rateLimited,
  }),
);
