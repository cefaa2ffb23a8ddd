// vidsonar web page: search, watch the moment, read the summary, add footage. No build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { space: null, hasDecoder: false, options: [], lastLang: null, current: null, polling: null,
                shots: new Map() };  // video id -> its shots (GET /api/videos/{id}), fetched once

function apiKey() { return localStorage.getItem("vidsonar_key") || ""; }

function timecode(seconds) {
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
  const s = (seconds % 60).toFixed(1).padStart(4, "0");
  const mm = String(m).padStart(2, "0");
  return h ? `${h}:${mm}:${s}` : `${mm}:${s}`;
}

// The API answers errors as {detail: "message"} (project errors) or {detail: [{msg, loc}]}
// (validation): show either as one line.
async function errorText(resp) {
  try {
    const body = await resp.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => `${d.loc.slice(-1)[0]}: ${d.msg}`).join("; ");
  } catch (_) { /* not JSON */ }
  return `${resp.status} ${resp.statusText}`;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.json();
}

function languageName(code) {
  try {
    const names = new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
    const name = names.of(code.split("_")[0]);
    return name && name !== code.split("_")[0] ? `${name} (${code})` : code;
  } catch (_) { return code; }
}

async function loadLanguages() {
  const data = await api("/api/space");
  state.space = data.space;
  state.hasDecoder = data.has_decoder;
  state.options = data.search_options;
  const select = $("#lang");
  const options = data.languages
    .map((code) => ({ code, label: languageName(code) }))
    .sort((a, b) => a.label.localeCompare(b.label));
  for (const { code, label } of options) select.add(new Option(label, code));
  if (!data.auto_language) {  // the query must name its language: preselect the browser's
    const base = (navigator.language || "en").slice(0, 2);
    const guess = options.find((o) => o.code.startsWith(base)) || options.find((o) => o.code === "eng_Latn");
    select.querySelector('option[value=""]').disabled = true;
    if (guess) select.value = guess.code;
  }
}

async function loadInfo() {
  try {
    const h = await api("/api/health");
    $("#archive-info").textContent = `${h.videos} videos · ${h.snippets} snippets · ${h.space} space`;
  } catch (e) { $("#archive-info").textContent = e.message; }
}

async function search(event) {
  event.preventDefault();
  const params = new URLSearchParams({ q: $("#q").value.trim(), k: $("#k").value });
  if ($("#lang").value) params.set("lang", $("#lang").value);
  if (state.hasDecoder && state.options.includes("summaries")) {  // summaries come with the hits
    params.set("summaries", "true");
    if ($("#lang").value) params.set("summary_lang", $("#lang").value);
  }
  const status = $("#status");
  status.classList.remove("error");
  status.textContent = "Searching…";
  history.replaceState(null, "", `?${params}`);
  try {
    const result = await api(`/api/search?${params}`);
    const detected = result.detected_language;
    state.lastLang = result.lang || (detected && detected.code) || null;
    const how = { given: "", default: "default: " }[result.lang_source] ?? "detected: ";
    const shown = result.lang || (detected && detected.code);
    status.textContent = `${result.hits.length} hits in ${Math.round(result.took_ms)} ms` +
      (shown ? ` · ${how}${languageName(shown)}` : "");
    showHits(result.hits);
    $("#results").dataset.for = result.query;  // which search the grid shows (for tests, too)
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("error");
    $("#results").replaceChildren();
  }
}

function showHits(hits) {
  const cards = hits.map((hit) => {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "hit";
    card.dataset.snippet = hit.snippet_id;
    const img = document.createElement("img");
    img.src = hit.thumbnail_url;
    img.alt = `${hit.video_path} at ${timecode(hit.start)}`;
    img.loading = "lazy";
    const meta = document.createElement("div");
    meta.className = "meta";
    const tc = document.createElement("span");
    tc.className = "timecode";
    tc.textContent = `${timecode(hit.start)}–${timecode(hit.end)}`;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(3);
    meta.append(tc, score);
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = hit.video_path.split(/[\\/]/).pop();
    name.title = hit.video_path;
    card.append(img, meta, name);
    card.addEventListener("click", () => play(hit));
    return card;
  });
  $("#results").replaceChildren(...cards);
}

function play(hit) {
  state.current = hit;
  const video = $("#video");
  $("#player").hidden = false;
  $("#player-title").textContent = hit.video_path.split(/[\\/]/).pop();
  $("#player-time").textContent = `${timecode(hit.start)}–${timecode(hit.end)} · score ${hit.score.toFixed(3)}`;
  video.src = `${hit.video_url}#t=${hit.start}`;
  video.addEventListener("loadedmetadata", () => {
    video.currentTime = hit.start;
    video.play().catch(() => { /* autoplay may be refused; the controls are there */ });
  }, { once: true });
  $("#player").scrollIntoView({ behavior: "smooth", block: "start" });
  showTimeline(hit);
  showSummary(hit);
}

// The selected video's moments for the query (hit.video_moments), on a bar of its length,
// over the video's cuts (its shots' starts, when ingested with shots); click a moment, or
// Prev / Next, to jump between them.
function showTimeline(hit) {
  const moments = (hit.video_moments || []).slice().sort((a, b) => a.start - b.start);
  const box = $("#timeline-box");
  box.hidden = moments.length === 0;
  if (!moments.length) return;
  state.moments = moments;
  state.momentIndex = Math.max(0, moments.findIndex((m) => m.snippet_id === hit.snippet_id));
  const video = $("#video");
  const draw = () => {
    const length = Math.max(video.duration || 0, ...moments.map((m) => m.end));
    const bar = $("#timeline");
    const marks = moments.map((m, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "moment" + (i === state.momentIndex ? " current" : "");
      b.style.left = `${(100 * m.start) / length}%`;
      b.style.width = `${(100 * (m.end - m.start)) / length}%`;
      b.title = `${timecode(m.start)}–${timecode(m.end)} · score ${m.score.toFixed(3)}` +
        (m.snapped ? " · snapped to the shot" : "");
      b.setAttribute("aria-label", b.title);
      b.addEventListener("click", () => jumpTo(i));
      return b;
    });
    const cuts = (state.shots.get(hit.video_id) || []).filter((s) => s.start > 0).map((s) => {
      const c = document.createElement("div");
      c.className = "cut";
      c.dataset.at = s.start;
      c.style.left = `${(100 * s.start) / length}%`;
      c.title = `cut at ${timecode(s.start)}`;
      return c;
    });
    const head = document.createElement("div");
    head.className = "playhead";
    bar.replaceChildren(...cuts, ...marks, head);  // cuts first: drawn under the moments
    bar.dataset.cuts = state.shots.has(hit.video_id) ? cuts.length : "";
    $("#moment-pos").textContent = `moment ${state.momentIndex + 1} of ${moments.length}`;
    state.timelineLength = length;
  };
  draw();
  video.addEventListener("loadedmetadata", draw, { once: true });
  state.drawTimeline = draw;
  if (!state.shots.has(hit.video_id)) {
    api(`/api/videos/${hit.video_id}`).then((v) => {
      state.shots.set(hit.video_id, v.shots || []);
      if (state.current === hit) draw();
    }).catch(() => { /* no cut marks: the moments still show */ });
  }
}

function jumpTo(i) {
  if (!state.moments || !state.moments.length) return;
  state.momentIndex = (i + state.moments.length) % state.moments.length;
  const m = state.moments[state.momentIndex];
  const video = $("#video");
  video.currentTime = m.start;
  $("#player-time").textContent = `${timecode(m.start)}–${timecode(m.end)} · score ${m.score.toFixed(3)}`;
  state.drawTimeline();
}

function movePlayhead() {
  const head = document.querySelector("#timeline .playhead");
  if (head && state.timelineLength) head.style.left = `${(100 * $("#video").currentTime) / state.timelineLength}%`;
}

async function showSummary(hit) {
  const lang = $("#lang").value || state.lastLang || "eng_Latn";
  const box = $("#summary");
  $("#summary-lang").textContent = `(${languageName(lang)})`;
  box.classList.add("muted");
  box.classList.remove("error");
  if (hit.summary) { showSummaryText(hit.summary); return; }
  box.textContent = "Loading…";
  try {
    const data = await api(`/api/snippets/${hit.snippet_id}/summary?lang=${encodeURIComponent(lang)}`);
    if (state.current !== hit) return;
    showSummaryText(data);
  } catch (e) {
    if (state.current === hit) box.textContent = e.message;  // e.g. a space without a decoder
  }
}

// A summary is {text, kind, lang}: kind "labels" means the space has no text decoder and
// the API answered with the nearest concept labels (in English) instead of generated text.
function showSummaryText(summary) {
  const box = $("#summary");
  box.textContent = typeof summary === "string" ? summary : summary.text;
  box.classList.remove("muted");
  if (summary.kind === "labels") {
    $("#summary-lang").textContent = "(nearest concepts, English: this space has no text decoder)";
  }
}

async function moreLikeThis() {
  if (!state.current) return;
  const form = new FormData();
  form.set("snippet_id", state.current.snippet_id);
  form.set("k", $("#k").value);
  try {
    const result = await api("/api/search/example", { method: "POST", body: form });
    $("#status").textContent = `${result.hits.length} snippets like ${timecode(state.current.start)} of ` +
      `${state.current.video_path.split(/[\\/]/).pop()}`;
    showHits(result.hits);
  } catch (e) { $("#status").textContent = e.message; }
}

function upload(event) {
  event.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) return;
  const bar = $("#upload-progress"), status = $("#upload-status");
  const xhr = new XMLHttpRequest();  // fetch() cannot report upload progress
  xhr.open("PUT", `/api/uploads/${encodeURIComponent(file.name)}`);
  xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
  if (apiKey()) xhr.setRequestHeader("X-API-Key", apiKey());
  bar.hidden = false;
  bar.value = 0;
  status.classList.remove("error");
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* keep empty */ }
    if (xhr.status === 202) {
      status.textContent = `uploaded; ingest job ${body.id} queued`;
      pollJobs();
    } else {
      status.textContent = typeof body.detail === "string" ? body.detail : `${xhr.status} ${xhr.statusText}`;
      status.classList.add("error");
    }
  };
  xhr.onerror = () => { status.textContent = "upload failed (network)"; status.classList.add("error"); };
  status.textContent = `uploading ${file.name}…`;
  xhr.send(file);
}

async function ingestPaths(event) {
  event.preventDefault();
  const status = $("#paths-status");
  status.classList.remove("error");
  const paths = $("#paths").value.split(/\n|,(?=\s*\/)/).map((p) => p.trim()).filter(Boolean);
  try {
    const job = await api("/api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ paths }),
    });
    status.textContent = `ingest job ${job.id} queued`;
    pollJobs();
  } catch (e) { status.textContent = e.message; status.classList.add("error"); }
}

function jobItem(job) {
  const li = document.createElement("li");
  const bar = document.createElement("progress");
  bar.max = Math.max(job.total, 1);
  bar.value = job.status === "done" ? bar.max : job.done;
  const what = job.paths.map((p) => p.split(/[\\/]/).pop()).join(", ");
  const text = document.createElement("span");
  text.textContent = ` job ${job.id} (${job.kind}) · ${job.status} · ${job.done}/${job.total} files · ` +
    `${job.ingested} ingested, ${job.skipped} skipped, ${job.failed} failed · ${what}`;
  li.append(bar, text);
  for (const err of job.errors.concat(job.error ? [{ error: job.error }] : [])) {
    const p = document.createElement("div");
    p.className = "error";
    p.textContent = err.error;
    li.append(p);
  }
  return li;
}

async function pollJobs() {
  clearTimeout(state.polling);
  try {
    const jobs = await api("/api/jobs?limit=10");
    $("#jobs").replaceChildren(...jobs.map(jobItem));
    if (jobs.some((j) => j.status === "queued" || j.status === "running")) {
      state.polling = setTimeout(pollJobs, 1000);
    } else { loadInfo(); }
  } catch (_) { /* reads may need a key; the search box shows why */ }
}

function saveKey() {
  const key = $("#api-key").value.trim();
  localStorage.setItem("vidsonar_key", key);
  // the cookie lets <img> and <video> read when the server wants a key for reads too
  document.cookie = `vidsonar_key=${encodeURIComponent(key)}; path=/; SameSite=Strict`;
  $("#key-box").open = false;
  loadInfo();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#api-key").value = apiKey();
  $("#search-form").addEventListener("submit", search);
  $("#upload-form").addEventListener("submit", upload);
  $("#paths-form").addEventListener("submit", ingestPaths);
  $("#save-key").addEventListener("click", saveKey);
  $("#close-player").addEventListener("click", () => { $("#video").pause(); $("#player").hidden = true; });
  $("#more-like").addEventListener("click", moreLikeThis);
  $("#prev-moment").addEventListener("click", () => jumpTo(state.momentIndex - 1));
  $("#next-moment").addEventListener("click", () => jumpTo(state.momentIndex + 1));
  $("#video").addEventListener("timeupdate", movePlayhead);
  loadInfo();
  pollJobs();
  try { await loadLanguages(); } catch (e) { $("#status").textContent = e.message; }
  const q = new URLSearchParams(location.search);
  if (q.get("q")) {
    $("#q").value = q.get("q");
    if (q.get("lang")) $("#lang").value = q.get("lang");
    $("#search-form").requestSubmit();
  }
});
