// The owner's console. Hand-written, no library and no build step: it signs each call of
// the function's API with the caller key (HMAC-SHA256 over "<t>.<body>", as every caller
// does), and puts what comes back on the page as text, never as markup.
"use strict";

(function () {
  const enc = new TextEncoder();
  // The API is where the page was served from, without "/console" (a stage prefix such as
  // /prod, or a local emulator's /lambda-url/<function>, is kept).
  const API = location.pathname.replace(/\/console\/?$/, "/");
  const POLL_MS = 1500;

  const state = {
    key: null, // a CryptoKey that cannot be exported: the pasted text is not kept
    backups: [],
    backupsCursor: null,
    backup: null, // the backup being browsed
    folder: "/",
    q: "",
    filesCursor: null,
    failuresCursor: null,
    selected: new Map(), // fileId → displayName
    jobs: new Map(), // jobs this tab started: jobId → {label, statusPath, kind}
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function say(text, bad) {
    const s = $("status");
    s.textContent = text;
    s.classList.toggle("bad", !!bad);
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function importKey(text) {
    return crypto.subtle.importKey("raw", enc.encode(text), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }

  /** The X-Archive-Signature of `body` (the empty string for a GET). */
  async function sign(key, body) {
    const t = Math.floor(Date.now() / 1000);
    const mac = await crypto.subtle.sign("HMAC", key, enc.encode(`${t}.${body}`));
    return `t=${t},v1=${hex(mac)}`;
  }

  class NotAuthorised extends Error {}

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || code || `HTTP ${status}`);
      this.status = status;
      this.code = code;
    }
  }

  /** One signed call; the parsed JSON answer. */
  async function api(method, path, body) {
    if (!state.key) throw new NotAuthorised();
    const text = body === undefined ? "" : JSON.stringify(body);
    const headers = { "X-Archive-Signature": await sign(state.key, text) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : text,
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch (_) {
      answer = null;
    }
    if (response.status === 401) throw new NotAuthorised();
    if (!response.ok) {
      const e = (answer && answer.error) || {};
      throw new ApiError(response.status, e.code, e.message);
    }
    return answer;
  }

  function query(params) {
    const parts = [];
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === "") continue;
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    }
    return parts.length ? `?${parts.join("&")}` : "";
  }

  // ---- formatting ----------------------------------------------------------------------

  function bytes(n) {
    if (n === undefined || n === null) return "";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let v = n;
    let i = 0;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i += 1;
    }
    return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
  }

  function count(n) {
    return n === undefined || n === null ? "" : Number(n).toLocaleString("en");
  }

  function when(iso) {
    return iso ? iso.replace("T", " ").replace("Z", "") : "";
  }

  // ---- the key ---------------------------------------------------------------------------

  function forget(message, bad) {
    state.key = null;
    state.backup = null;
    state.backups = [];
    state.jobs.clear();
    state.selected.clear();
    for (const id of ["backup-rows", "file-rows", "failure-rows", "folders", "crumbs", "job-list", "chart", "links", "verify-result"]) {
      clear($(id));
    }
    $("main").hidden = true;
    $("browse").hidden = true;
    $("forget").hidden = true;
    $("key").value = "";
    say(message || "", bad);
  }

  function notAuthorised() {
    forget("not authorised", true);
    $("key").focus();
  }

  /** Runs `work`; a refused signature ends the session, other errors are said. */
  async function guarded(work, what) {
    try {
      return await work();
    } catch (e) {
      if (e instanceof NotAuthorised) {
        notAuthorised();
      } else {
        say(`${what}: ${e.message}`, true);
      }
      return undefined;
    }
  }

  async function connect(event) {
    event.preventDefault();
    const text = $("key").value.trim();
    $("key").value = "";
    if (!text) return;
    say("Checking the key…");
    state.key = await importKey(text);
    const ok = await guarded(async () => {
      await loadBackups(true);
      return true;
    }, "The backups could not be read");
    if (!ok) return;
    $("main").hidden = false;
    $("forget").hidden = false;
    say("Signed in for this tab.");
    refreshJobs();
    $("main").focus();
  }

  // ---- backups -----------------------------------------------------------------------------

  async function loadBackups(fresh) {
    const page = await api("GET", `backups${query({ limit: 30, cursor: fresh ? null : state.backupsCursor })}`);
    state.backups = fresh ? page.backups : state.backups.concat(page.backups);
    state.backupsCursor = page.nextCursor;
    renderBackups();
  }

  function renderBackups() {
    const rows = $("backup-rows");
    clear(rows);
    for (const b of state.backups) {
      const label = `${when(b.startedAt)}${b.latest ? " (latest)" : ""}`;
      rows.append(
        el(
          "tr",
          { "data-backup": b.backupId },
          el("td", {}, label),
          el("td", { class: b.status }, b.status.toLowerCase() + (b.full ? ", full" : "")),
          el("td", { class: "num" }, count(b.listedFiles)),
          el("td", { class: "num" }, bytes(b.storedBytes)),
          el("td", { class: "num" }, count(b.newFiles)),
          el("td", { class: "num" }, count(b.changedFiles)),
          el("td", { class: "num" }, count(b.removedFiles)),
          el("td", { class: "num" + (b.failedFiles ? " FAILED" : "") }, count(b.failedFiles)),
          el(
            "td",
            {},
            b.status === "UNFINISHED"
              ? ""
              : el("button", { type: "button", class: "link", "aria-label": `Open the backup of ${label}`, onclick: () => openBackup(b) }, "Open")
          )
        )
      );
    }
    if (!state.backups.length) {
      rows.append(el("tr", {}, el("td", { colspan: 9 }, "No backup yet. Start one with “Back up now”.")));
    }
    $("more-backups").hidden = !state.backupsCursor;
    renderChart();
  }

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Bytes stored (bars) and files in the library (line) per backup, oldest first. */
  function renderChart() {
    const box = $("chart");
    clear(box);
    const points = state.backups.filter((b) => b.listedFiles !== undefined).slice().reverse();
    if (!points.length) {
      box.append(el("p", { class: "quiet" }, "Nothing to draw yet."));
      return;
    }
    const W = 640;
    const H = 220;
    const pad = { l: 56, r: 56, t: 12, b: 28 };
    const maxBytes = Math.max(1, ...points.map((p) => p.storedBytes || 0));
    const maxFiles = Math.max(1, ...points.map((p) => p.listedFiles || 0));
    const step = (W - pad.l - pad.r) / points.length;
    const y = (v, max) => H - pad.b - ((H - pad.t - pad.b) * v) / max;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Chart of ${points.length} backups: files from ${count(points[0].listedFiles)} to ${count(points[points.length - 1].listedFiles)}` });
    chart.append(svg("line", { class: "axis", x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }));
    chart.append(svg("text", { x: 4, y: pad.t + 10 }, bytes(maxBytes)));
    chart.append(svg("text", { x: W - pad.r + 4, y: pad.t + 10 }, `${count(maxFiles)} files`));
    let line = "";
    points.forEach((p, i) => {
      const x = pad.l + i * step;
      const top = y(p.storedBytes || 0, maxBytes);
      const bar = svg("rect", { class: "bar", x: x + step * 0.15, y: top, width: Math.max(1, step * 0.7), height: H - pad.b - top });
      bar.append(svg("title", {}, `${when(p.startedAt)}: ${bytes(p.storedBytes)} stored, ${count(p.listedFiles)} files`));
      chart.append(bar);
      const cx = x + step / 2;
      const cy = y(p.listedFiles || 0, maxFiles);
      line += `${i ? "L" : "M"}${cx.toFixed(1)},${cy.toFixed(1)}`;
      chart.append(svg("circle", { class: "dot", cx: cx.toFixed(1), cy: cy.toFixed(1), r: 3 }));
    });
    chart.append(svg("path", { class: "files", d: line }));
    chart.append(svg("text", { x: pad.l, y: H - 8 }, when(points[0].startedAt).slice(0, 10)));
    if (points.length > 1) {
      chart.append(svg("text", { x: W - pad.r - 64, y: H - 8 }, when(points[points.length - 1].startedAt).slice(0, 10)));
    }
    box.append(chart);
  }

  // ---- one backup: folders, search, files, failures -----------------------------------------

  async function openBackup(b) {
    state.backup = b;
    state.folder = "/";
    state.q = "";
    $("search").value = "";
    state.selected.clear();
    clear($("links"));
    $("browse").hidden = false;
    $("browse-title").textContent = `Backup of ${when(b.startedAt)} (${b.backupId})`;
    await guarded(() => Promise.all([loadFiles(true), loadFailures(true)]), "The backup could not be read");
    $("browse-title").setAttribute("tabindex", "-1");
    $("browse-title").focus();
  }

  async function openFolder(path) {
    state.folder = path;
    state.q = "";
    $("search").value = "";
    await guarded(() => loadFiles(true), "The folder could not be read");
  }

  async function loadFiles(fresh) {
    const id = state.backup.backupId;
    const page = await api(
      "GET",
      `backups/${encodeURIComponent(id)}/files${query({ folder: state.folder, q: state.q, limit: 100, cursor: fresh ? null : state.filesCursor })}`
    );
    state.filesCursor = page.nextCursor;
    if (fresh) {
      clear($("file-rows"));
      renderCrumbs();
      renderFolders(page.folders || []);
    }
    for (const f of page.files) $("file-rows").append(fileRow(f));
    const where = state.q ? `matching “${state.q}” in ${state.folder} and below` : `in ${state.folder}`;
    $("files-count").textContent = `${count(page.matched)} file${page.matched === 1 ? "" : "s"} ${where}`;
    $("more-files").hidden = !state.filesCursor;
  }

  function renderCrumbs() {
    const crumbs = $("crumbs");
    clear(crumbs);
    const parts = state.folder === "/" ? [] : state.folder.split("/").slice(1);
    const go = (path, label, current) =>
      el("li", {}, current ? el("span", { "aria-current": "location" }, label) : el("button", { type: "button", class: "link", onclick: () => openFolder(path) }, label));
    crumbs.append(go("/", "All files", parts.length === 0));
    parts.forEach((p, i) => {
      const path = "/" + parts.slice(0, i + 1).join("/");
      crumbs.append(go(path, p, i === parts.length - 1));
    });
  }

  function renderFolders(folders) {
    const list = $("folders");
    clear(list);
    for (const f of folders) {
      const name = f.path.split("/").pop();
      list.append(
        el("li", {}, el("button", { type: "button", "data-folder": f.path, onclick: () => openFolder(f.path) }, `📁 ${name} (${count(f.files)})`))
      );
    }
  }

  function fileRow(f) {
    const box = el("input", {
      type: "checkbox",
      "aria-label": `Select ${f.displayName}`,
      checked: state.selected.has(f.fileId),
      disabled: f.status !== "STORED",
    });
    const row = el(
      "tr",
      { "data-file": f.fileId },
      el("td", {}, box),
      el("td", {}, f.displayName || f.fileId),
      el("td", {}, f.folderPath),
      el("td", {}, (f.mediaType || "").toLowerCase() + (f.private ? ", private" : "")),
      el("td", { class: "num" }, bytes(f.sizeInBytes)),
      el("td", { class: f.status }, f.status === "FAILED" && f.error ? `failed: ${f.error.code}` : f.status.toLowerCase())
    );
    box.addEventListener("change", () => {
      if (box.checked) state.selected.set(f.fileId, f.displayName);
      else state.selected.delete(f.fileId);
      row.classList.toggle("selected", box.checked);
    });
    return row;
  }

  async function loadFailures(fresh) {
    const id = state.backup.backupId;
    const page = await api("GET", `backups/${encodeURIComponent(id)}/failures${query({ limit: 100, cursor: fresh ? null : state.failuresCursor })}`);
    state.failuresCursor = page.nextCursor;
    if (fresh) clear($("failure-rows"));
    for (const f of page.files) {
      $("failure-rows").append(
        el(
          "tr",
          {},
          el("td", {}, f.displayName || f.fileId),
          el("td", {}, f.folderPath),
          el("td", { class: "FAILED" }, f.error ? f.error.code : ""),
          el("td", {}, f.error ? f.error.message : "")
        )
      );
    }
    $("failures-empty").hidden = page.matched > 0;
    $("more-failures").hidden = !state.failuresCursor;
  }

  async function search(event) {
    event.preventDefault();
    if (!state.backup) return;
    state.q = $("search").value.trim();
    await guarded(() => loadFiles(true), "The search failed");
  }

  // ---- jobs ------------------------------------------------------------------------------------

  function track(jobId, label, statusPath, onDone) {
    state.jobs.set(jobId, { label, statusPath, onDone, status: "RUNNING", progress: { done: 0, total: 0 } });
    renderJobs();
    poll(jobId);
  }

  async function poll(jobId) {
    const job = state.jobs.get(jobId);
    if (!job || !state.key) return;
    let answer;
    try {
      answer = await api("GET", job.statusPath);
    } catch (e) {
      if (e instanceof NotAuthorised) return notAuthorised();
      job.error = e.message;
      renderJobs();
      setTimeout(() => poll(jobId), POLL_MS * 2);
      return;
    }
    job.status = answer.status;
    job.progress = answer.progress || job.progress;
    job.error = answer.error;
    if (answer.status === "RUNNING") {
      renderJobs();
      setTimeout(() => poll(jobId), POLL_MS);
      return;
    }
    job.result = answer.result;
    renderJobs();
    if (job.onDone) job.onDone(answer);
    guarded(() => loadBackups(true), "The backups could not be read");
  }

  async function refreshJobs() {
    const answer = await guarded(() => api("GET", "jobs"), "The jobs could not be read");
    if (!answer) return;
    for (const j of answer.jobs) {
      if (!state.jobs.has(j.jobId)) {
        state.jobs.set(j.jobId, { label: `${j.kind} job started ${when(j.startedAt)}`, statusPath: `jobs/${j.jobId}`, status: "RUNNING", progress: j.progress });
        poll(j.jobId);
      }
    }
    renderJobs();
  }

  function describeResult(job) {
    const r = job.result;
    if (job.status === "FAILED") return `failed: ${job.error || "see the function's log"}`;
    if (job.status !== "SUCCEEDED" || !r) return "";
    if (r.restoreId !== undefined || r.restoredFiles !== undefined) {
      return `${count(r.restoredFiles)} restored, ${count(r.skippedFiles)} already there, ${count(r.failedFiles)} failed`;
    }
    if (r.backupId !== undefined && r.storedFiles !== undefined) {
      return `${r.status.toLowerCase()}: ${count(r.listedFiles)} files, ${bytes(r.storedBytes)} stored, ${count(r.failedFiles)} failed`;
    }
    if (r.archives !== undefined) {
      return `${r.archives.length} archive link${r.archives.length === 1 ? "" : "s"}, ${(r.privateFiles || []).length} private link(s), ${(r.failed || []).length} failure(s)`;
    }
    return "done";
  }

  function renderJobs() {
    const list = $("job-list");
    clear(list);
    let running = 0;
    for (const [jobId, job] of state.jobs) {
      const { done, total } = job.progress || { done: 0, total: 0 };
      if (job.status === "RUNNING") running += 1;
      const bar =
        job.status === "RUNNING"
          ? el("progress", { max: Math.max(total, 1), value: total ? done : undefined, "aria-label": `Progress of ${job.label}` })
          : null;
      list.append(
        el(
          "li",
          { "data-job": jobId, "data-status": job.status },
          el("strong", {}, job.label),
          " — ",
          el("span", { class: job.status }, job.status.toLowerCase()),
          job.status === "RUNNING" ? ` ${done} of ${total} steps ` : " ",
          bar,
          job.status === "RUNNING" ? null : el("span", { class: "job-result" }, describeResult(job))
        )
      );
    }
    $("jobs-empty").hidden = running > 0 || state.jobs.size > 0;
  }

  async function startRestore(restore, label) {
    const answer = await guarded(() => api("POST", "restores", { restore: { backupId: state.backup.backupId, ...restore } }), "The restore could not be started");
    if (answer) {
      say(`Restore started (${label}).`);
      track(answer.jobId, `Restore of ${label}`, `restores/jobs/${answer.jobId}`);
    }
  }

  function restoreSelected() {
    const ids = Array.from(state.selected.keys());
    if (!ids.length) return say("Select the files to restore first.", true);
    const names = Array.from(state.selected.values());
    startRestore({ fileIds: ids }, names.length === 1 ? names[0] : `${names.length} files`);
  }

  function restoreFolder() {
    if (state.folder === "/") return startRestore({}, "every missing file");
    startRestore({ folderPath: state.folder }, `the folder ${state.folder}`);
  }

  function restoreMissing() {
    startRestore({}, "every missing file");
  }

  async function archiveSelected() {
    const ids = Array.from(state.selected.keys());
    if (!ids.length) return say("Select the files first.", true);
    const answer = await guarded(() => api("POST", "archives", { fileIds: ids, async: true, resolvePrivate: true }), "The links could not be asked for");
    if (!answer) return;
    say("Asked Wix for download links.");
    track(answer.jobId, `Download links for ${ids.length} file${ids.length === 1 ? "" : "s"}`, `archives/jobs/${answer.jobId}`, (done) => showLinks(done.result));
  }

  function showLinks(result) {
    const box = $("links");
    clear(box);
    if (!result) return;
    const list = el("ul", { class: "link-list" });
    (result.archives || []).forEach((a, i) => {
      list.append(el("li", {}, el("a", { href: a.downloadUrl, rel: "noreferrer noopener", target: "_blank" }, `Archive ${i + 1} (${a.fileCount} files)`)));
    });
    for (const p of result.privateFiles || []) {
      list.append(el("li", {}, el("a", { href: p.downloadUrl, rel: "noreferrer noopener", target: "_blank" }, `${p.fileId} (private, until ${when(p.expiresAt)})`)));
    }
    for (const f of result.failed || []) {
      list.append(el("li", { class: "FAILED" }, `${f.fileIds.length} file(s) failed: ${f.error.code}`));
    }
    box.append(el("h3", {}, "Download links"), list);
  }

  async function backupNow() {
    const answer = await guarded(() => api("POST", "backups", {}), "The backup could not be started");
    if (answer) {
      say(answer.alreadyStarted ? "That backup is running already." : "Backup started.");
      track(answer.jobId, `Backup ${answer.backupId}`, `jobs/${answer.jobId}`);
    }
  }

  async function verify() {
    const box = $("verify-result");
    clear(box);
    box.append(el("p", { class: "quiet" }, "Verifying…"));
    const answer = await guarded(() => api("POST", "verifies", { backupId: "latest" }), "The verification failed");
    clear(box);
    if (!answer) return;
    const text = answer.ok
      ? `Backup ${answer.backupId}: all ${count(answer.checkedFiles)} stored files are there and intact.`
      : `Backup ${answer.backupId}: ${count(answer.problemCount)} problem(s) among ${count(answer.checkedFiles)} files.`;
    const block = el("div", { class: answer.ok ? "result" : "result bad", id: "verify-answer" }, el("p", {}, text));
    if (!answer.ok) {
      const list = el("ul");
      for (const p of answer.problems) list.append(el("li", {}, `${p.problem}: ${p.object} (${p.fileIds.length} file(s))`));
      block.append(list);
    }
    box.append(block);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!window.crypto || !crypto.subtle) {
      say("This browser cannot sign requests here (WebCrypto needs HTTPS).", true);
      return;
    }
    $("key-form").addEventListener("submit", connect);
    $("forget").addEventListener("click", () => forget("The key is forgotten."));
    $("search-form").addEventListener("submit", search);
    $("clear-search").addEventListener("click", () => {
      $("search").value = "";
      state.q = "";
      guarded(() => loadFiles(true), "The folder could not be read");
    });
    $("more-backups").addEventListener("click", () => guarded(() => loadBackups(false), "The backups could not be read"));
    $("more-files").addEventListener("click", () => guarded(() => loadFiles(false), "The files could not be read"));
    $("more-failures").addEventListener("click", () => guarded(() => loadFailures(false), "The failures could not be read"));
    $("refresh").addEventListener("click", () => {
      guarded(() => loadBackups(true), "The backups could not be read");
      refreshJobs();
    });
    $("backup-now").addEventListener("click", backupNow);
    $("verify").addEventListener("click", verify);
    $("restore-selected").addEventListener("click", restoreSelected);
    $("restore-folder").addEventListener("click", restoreFolder);
    $("restore-missing").addEventListener("click", restoreMissing);
    $("archive-selected").addEventListener("click", archiveSelected);
    say("Paste a caller key to open the console.");
  });
})();
