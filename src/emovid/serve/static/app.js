// The emovid page: upload a video to /v1/predict?timeline=1, then show the result, the timeline and the video.
// The headline is the clip's answer, the same as /v1/predict without timeline=1 (and `emovid predict`) gives.
// With a model that scores every face (/v1/models lists faces "all"), an "every person" box asks for faces=all:
// the headline and the chart are then the main person's, and below them each person gets a lane with their face
// and emotions over time.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = {
  angry: "#d92d20", disgust: "#4e9a06", fearful: "#7a5af8", happy: "#f79009",
  sad: "#2e90fa", surprised: "#ee46bc", neutral: "#667085", calm: "#15b79e",
};
const SPARE = ["#0e9384", "#c11574", "#854a0e", "#444ce7"];
const PAD = { left: 40, right: 12, top: 10, bottom: 30 }; // the chart's margins for its axis labels, in CSS pixels
const NO_FACE = "#e4e7ec"; // the chart's background where the nearest window found no face
const MISSING = "#fee4e2"; // ... after the end of a truncated file, up to the length its header declares
const TRUNCATION_SLACK = 0.5; // seconds, as the server's: less is a longer audio track, not a truncated file
const LANE_HEIGHT = 28; // a person's lane of top emotions, in CSS pixels
const state = {
  token: sessionStorage.getItem("emovid-token") || "", limits: null, record: null, url: null, everyFace: false,
  windows: [], // the chart's windows: the clip's, or the main person's
};

const colour = (name, i) => COLOURS[name] || SPARE[i % SPARE.length];
const percent = (p) => `${(100 * p).toFixed(0)}%`;

function headers() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function loadModel() {
  const response = await fetch("v1/models", { headers: headers() });
  if (response.status === 401) {
    $("token-form").hidden = false;
    say("This server needs its API token.", true);
    return;
  }
  const info = await response.json();
  $("token-form").hidden = true;
  state.limits = info.limits;
  state.classes = info.classes;
  state.everyFace = (info.faces || []).includes("all");
  everyPersonBox().hidden = !state.everyFace;
  $("model").textContent = `Model ${info.model}: ${info.classes.join(", ")}.`;
  $("limits").textContent = `up to ${(info.limits.max_bytes / 2 ** 20).toFixed(0)} MiB and ` +
    `${info.limits.max_seconds} s; any format the server can decode`;
}

// XMLHttpRequest rather than fetch: only it reports upload progress.
function upload(file) {
  if (state.limits && file.size > state.limits.max_bytes) {
    say(`${file.name} is larger than this server's limit.`, true);
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  const request = new XMLHttpRequest();
  const everyPerson = state.everyFace && $("every-face").checked;
  request.open("POST", everyPerson ? "v1/predict?timeline=1&faces=all" : "v1/predict?timeline=1");
  for (const [key, value] of Object.entries(headers())) request.setRequestHeader(key, value);
  request.responseType = "json";
  const bar = $("progress");
  bar.hidden = false;
  bar.value = 0;
  say(`Uploading ${file.name}...`);
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
  };
  request.upload.onload = () => {
    bar.removeAttribute("value"); // indeterminate while the server predicts
    say(`Finding the emotions in ${file.name}...`);
  };
  request.onerror = () => finish("The connection to the server failed.", true);
  request.onload = () => {
    const body = request.response || {};
    if (request.status === 200) {
      finish("");
      show(body, file);
    } else if (request.status === 401) {
      $("token-form").hidden = false;
      finish("This server needs its API token.", true);
    } else if (request.status === 503) {
      const wait = request.getResponseHeader("Retry-After") || "a few";
      finish(`The server is busy: try again in ${wait} s.`, true);
    } else {
      finish(`${body.file ? body.file + ": " : ""}${body.error || `error ${request.status}`}`, true);
    }
  };
  request.send(form);
}

// The "every person" check box, made here (after the drop zone) the first time it is needed.
function everyPersonBox() {
  let label = $("every-face-label");
  if (!label) {
    label = document.createElement("label");
    label.id = "every-face-label";
    label.className = "hint";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "every-face";
    label.append(box, " every person: each face tracked, with its own emotions over time");
    $("drop").after(label);
  }
  return label;
}

function finish(text, isError = false) {
  $("progress").hidden = true;
  say(text, isError);
}

function show(record, file) {
  state.record = record;
  const people = Array.isArray(record.faces);
  state.windows = people ? record.windows.filter((w) => w.track === record.main_track) : record.windows;
  $("result").hidden = false;
  const noFace = record.face_found === false;
  $("result").classList.toggle("no-face", noFace);
  $("top-emotion").textContent = noFace ? "No face found" : record.emotion;
  $("top-probability").textContent = noFace ? "" : percent(record.probability);
  $("guess").hidden = !noFace || record.emotion == null;
  $("guess").textContent = `The model's guess from the centre of the frame: ${record.emotion} ${percent(record.probability)}`;
  $("warnings").replaceChildren(...(record.warnings || []).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  const names = Object.keys(record.probabilities || {});
  $("bars").replaceChildren(...names
    .map((name, i) => [name, record.probabilities[name], colour(name, i)])
    .sort((a, b) => b[1] - a[1])
    .map(([name, p, c]) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      const bar = document.createElement("span");
      const fill = document.createElement("span");
      const value = document.createElement("span");
      label.textContent = name;
      bar.className = "bar";
      fill.style.width = `${100 * p}%`;
      fill.style.background = c;
      bar.append(fill);
      value.className = "value";
      value.textContent = percent(p);
      item.append(label, bar, value);
      return item;
    }));
  const keys = names.map((name, i) => [name, colour(name, i)]);
  if (state.windows.some((w) => w.face_found === false)) keys.push(["no face", NO_FACE]);
  if (missingFrom(record) !== null) keys.push(["not in the file", MISSING]);
  $("legend").replaceChildren(...keys.map(([name, c]) => {
    const key = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = c; // set through the DOM: the page's CSP refuses inline style attributes
    key.append(swatch, name);
    return key;
  }));
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(file);
  $("video").src = state.url;
  showPeople(people ? record.faces : null);
  onTime();
}

// One lane per person: the face's thumbnail, its emotion over the whole video, and a band of its windows' top
// emotions along the video's time (empty where the person is not in the frame). Built here, after the chart.
function showPeople(faces) {
  let box = $("people");
  if (!box) {
    box = document.createElement("section");
    box.id = "people";
    box.setAttribute("aria-label", "every person in the video");
    $("chart").closest("figure").after(box);
  }
  box.hidden = !faces;
  if (!faces) return;
  box.replaceChildren(...faces.map((face) => {
    const lane = document.createElement("div");
    lane.className = "person";
    lane.style.display = "grid";
    lane.style.gridTemplateColumns = "4rem 12rem 1fr";
    lane.style.alignItems = "center";
    lane.style.gap = "0.6rem";
    lane.style.margin = "0.4rem 0";
    const image = document.createElement("img");
    image.alt = `person ${face.track}`;
    if (face.thumbnail) image.src = face.thumbnail;
    image.style.height = "3rem";
    image.style.borderRadius = "6px";
    const label = document.createElement("span");
    const main = face.track === state.record.main_track ? " (main)" : "";
    label.textContent = `Person ${face.track}${main}: ${face.emotion} ${percent(face.probability)}, ` +
      `${face.first_seen.toFixed(1)}-${face.last_seen.toFixed(1)} s`;
    const canvas = document.createElement("canvas");
    canvas.className = "lane";
    canvas.dataset.track = String(face.track);
    canvas.style.width = "100%";
    canvas.style.height = `${LANE_HEIGHT}px`;
    canvas.style.cursor = "crosshair";
    canvas.addEventListener("click", (event) => {
      const rect = event.target.getBoundingClientRect();
      $("video").currentTime = ((event.clientX - rect.left) / rect.width) * Number(event.target.dataset.seconds);
    });
    lane.append(image, label, canvas);
    return lane;
  }));
}

// Each person's lane: their windows' top emotions (nearest-centre segments, as the chart), a cursor at time t.
function drawLanes(t) {
  const box = $("people");
  if (!box || box.hidden) return;
  const names = state.classes || [];
  const end = Math.max(...state.record.windows.map((w) => w.end), state.record.decoded_seconds || 0, 1e-3);
  for (const canvas of box.querySelectorAll("canvas.lane")) {
    const windows = state.record.windows.filter((w) => w.track === Number(canvas.dataset.track));
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(LANE_HEIGHT * ratio);
    canvas.dataset.seconds = end.toFixed(2);
    canvas.dataset.windows = String(windows.length);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.fillStyle = NO_FACE;
    g.fillRect(0, 0, width, LANE_HEIGHT);
    const x = (s) => (s / end) * width;
    const centres = windows.map((w) => (w.start + w.end) / 2);
    windows.forEach((w, j) => {
      const from = Math.max(w.start, j === 0 ? w.start : (centres[j - 1] + centres[j]) / 2);
      const to = Math.min(w.end, j === windows.length - 1 ? w.end : (centres[j] + centres[j + 1]) / 2);
      g.fillStyle = colour(w.emotion, Math.max(0, names.indexOf(w.emotion)));
      g.globalAlpha = 0.35 + 0.65 * w.probability;
      g.fillRect(x(from), 0, x(to) - x(from), LANE_HEIGHT);
    });
    g.globalAlpha = 1;
    g.fillStyle = "#1d2330";
    g.fillRect(x(Math.min(t, end)) - 0.5, 0, 1, LANE_HEIGHT);
  }
}

// Where a truncated file's video ends, when its header declares more; else null.
function missingFrom(record) {
  const decoded = record.decoded_seconds;
  const declared = record.declared_seconds;
  return decoded != null && declared != null && declared - decoded > TRUNCATION_SLACK ? decoded : null;
}

// The chart's window whose centre is nearest to time t (windows overlap by half); null when there is none.
function windowAt(t) {
  let best = null;
  for (const w of state.windows) {
    if (!best || Math.abs((w.start + w.end) / 2 - t) < Math.abs((best.start + best.end) / 2 - t)) best = w;
  }
  return best;
}

function niceStep(span) {
  const raw = span / 8;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

// Probability (y, 0 to 1) of every class at each window's centre, against seconds (x); a cursor at the video's time.
function drawChart() {
  const windows = state.windows;
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const missing = missingFrom(state.record);
  const end = Math.max(...windows.map((w) => w.end), missing === null ? 0 : state.record.declared_seconds, 1e-3);
  const x = (t) => PAD.left + (t / end) * (width - PAD.left - PAD.right);
  const y = (p) => PAD.top + (1 - p) * (height - PAD.top - PAD.bottom);
  const centres = windows.map((w) => (w.start + w.end) / 2);
  // Shade the stretches whose nearest window found no face (as the badge on the video goes), and what is missing.
  g.fillStyle = NO_FACE;
  windows.forEach((w, j) => {
    if (w.face_found !== false) return;
    const from = j === 0 ? 0 : (centres[j - 1] + centres[j]) / 2;
    const to = j === windows.length - 1 ? w.end : (centres[j] + centres[j + 1]) / 2;
    g.fillRect(x(from), PAD.top, x(to) - x(from), height - PAD.top - PAD.bottom);
  });
  if (missing !== null) {
    g.fillStyle = MISSING;
    g.fillRect(x(missing), PAD.top, x(end) - x(missing), height - PAD.top - PAD.bottom);
  }
  g.font = "12px system-ui, sans-serif";
  g.fillStyle = "#667085";
  g.strokeStyle = "#eaecf0";
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    g.beginPath();
    g.moveTo(PAD.left, y(p));
    g.lineTo(width - PAD.right, y(p));
    g.stroke();
    g.fillText(p.toFixed(2), PAD.left - 6, y(p));
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  const step = niceStep(end);
  for (let t = 0; t <= end + 1e-9; t += step) {
    g.fillText(`${+t.toFixed(2)} s`, x(t), height - PAD.bottom + 6);
  }
  // No windows: no face at all in an every-person record (its probabilities are null), nothing to draw.
  Object.keys(windows.length ? state.record.probabilities : {}).forEach((name, i) => {
    g.strokeStyle = colour(name, i);
    g.fillStyle = colour(name, i);
    g.lineWidth = 2;
    g.beginPath();
    if (windows.length === 1) { // no line between centres to draw: one across the window, and a dot at its centre
      const py = y(windows[0].probabilities[name]);
      g.moveTo(x(windows[0].start), py);
      g.lineTo(x(windows[0].end), py);
      g.fillRect(x(centres[0]) - 4, py - 4, 8, 8);
    } else {
      windows.forEach((w, j) => {
        if (j === 0) g.moveTo(x(centres[j]), y(w.probabilities[name]));
        else g.lineTo(x(centres[j]), y(w.probabilities[name]));
      });
    }
    g.stroke();
  });
  const t = $("video").currentTime;
  g.strokeStyle = "#1d2330";
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(x(Math.min(t, end)), PAD.top);
  g.lineTo(x(Math.min(t, end)), height - PAD.bottom);
  g.stroke();
  canvas.dataset.windows = String(windows.length);
  canvas.dataset.noFace = String(windows.filter((w) => w.face_found === false).length);
  canvas.dataset.seconds = end.toFixed(2);
}

function onTime() {
  if (!state.record) return;
  const w = windowAt($("video").currentTime);
  $("now").textContent = w ? `${w.face_found === false ? "no face: " : ""}${w.emotion} ${percent(w.probability)}` : "";
  drawChart();
  drawLanes($("video").currentTime);
}

function setUp() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) upload(event.target.files[0]);
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
  $("video").addEventListener("timeupdate", onTime);
  $("video").addEventListener("seeked", onTime);
  $("chart").addEventListener("click", (event) => {
    if (!state.record) return;
    const box = event.target.getBoundingClientRect();
    const end = Number(event.target.dataset.seconds);
    const fraction = (event.clientX - box.left - PAD.left) / (box.width - PAD.left - PAD.right);
    $("video").currentTime = Math.max(0, Math.min(1, fraction)) * end;
  });
  window.addEventListener("resize", () => state.record && onTime());
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("emovid-token", state.token);
    say("");
    loadModel();
  });
  loadModel().catch(() => say("The server does not answer.", true));
}

setUp();
