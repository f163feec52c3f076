// The page's live camera: frames from getUserMedia as small JPEGs over the WebSocket /v1/live, the emotion of each
// moment drawn on the video, the class bars and a rolling chart of the last 30 s. See docs/live.md.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const COLOURS = {
    angry: "#d92d20", disgust: "#4e9a06", fearful: "#7a5af8", happy: "#f79009",
    sad: "#2e90fa", surprised: "#ee46bc", neutral: "#667085", calm: "#15b79e",
  };
  const SPARE = ["#0e9384", "#c11574", "#854a0e", "#444ce7"];
  const PAD = { left: 40, right: 12, top: 10, bottom: 30 }; // chart margins for the axis labels, CSS pixels
  const NO_FACE = "#e4e7ec"; // the chart's background where no face was in view
  const SPAN = 30; // seconds the chart shows
  const WIDTH = 640; // frames are sent at most this wide
  const QUALITY = 0.8; // JPEG quality: a 640x480 frame is 30-60 kB
  // Frames sent and not yet answered beyond which the page waits rather than sends: one scored, one waiting, and
  // one that may replace it (the server then reports a drop, and the page lowers its rate).
  const IN_FLIGHT = 3;
  const LATENCIES = 50; // recent answers the shown latency is the median of

  const colour = (name, i) => COLOURS[name] || SPARE[i % SPARE.length];
  const percent = (p) => `${(100 * p).toFixed(0)}%`;
  let live = null; // the session in progress: its socket, camera stream, rate, frames in flight
  let points = []; // per answer {t, probabilities, face}: the chart, kept after Stop
  let classes = [];

  function base64url(text) {
    const bytes = new TextEncoder().encode(text);
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function note(text) {
    $("live-status").textContent = text;
  }

  async function showButton() {
    const token = sessionStorage.getItem("emovid-token") || "";
    const response = await fetch("v1/models", { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    const info = response.ok ? await response.json() : {};
    // With a token still to give, show it anyway: the connection sends the token the page has by then.
    $("live-start-row").hidden = !(navigator.mediaDevices && (response.status === 401 || info.live));
  }

  async function start() {
    if (live) return;
    const fps = Math.min(15, Math.max(1, Number($("live-fps").value) || 5));
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: WIDTH } }, audio: false });
    } catch (error) {
      $("status").textContent = `No camera: ${error.message || error.name}`;
      return;
    }
    const url = new URL("v1/live", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const token = sessionStorage.getItem("emovid-token") || "";
    // A browser's WebSocket cannot send an Authorization header: the token goes as a subprotocol instead.
    const socket = new WebSocket(url, token ? ["emovid.live", `emovid.token.${base64url(token)}`] : ["emovid.live"]);
    socket.binaryType = "arraybuffer";
    live = { socket, stream, fps, rate: fps, sent: new Map(), count: 0, answers: 0, dropped: 0, calm: 0,
             latencies: [], ready: false, timer: null, started: performance.now(), canvas: document.createElement("canvas") };
    socket.onmessage = (event) => receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (!live || live.socket !== socket) return;
      stop(live.ready ? `The server ended the session: ${event.reason || `code ${event.code}`}.`
        : "The server refused the camera connection (is the API token right? is it busy?).");
    };
    points = [];
    const video = $("live-video");
    video.srcObject = stream;
    await video.play();
    $("live").hidden = false;
    $("live").dataset.answers = "0";
    $("live-start").disabled = true;
    $("live-emotion").textContent = "";
    $("live-probability").textContent = "";
    $("live-note").textContent = "";
    if (!live.ready) note("Connecting...");
  }

  function receive(message) {
    if (!live) return;
    if (message.type === "ready") {
      live.ready = true;
      classes = message.classes;
      live.window = message.window;
      live.fps = live.rate = Math.min(live.fps, message.max_fps);
      legend();
      send();
      return;
    }
    const sentAt = live.sent.get(message.frame);
    for (const number of live.sent.keys()) if (number <= message.frame) live.sent.delete(number);
    if (sentAt !== undefined) {
      live.latencies.push(performance.now() - sentAt);
      if (live.latencies.length > LATENCIES) live.latencies.shift();
    }
    live.answers += 1;
    live.dropped += message.dropped;
    // The server dropped frames: it scores fewer than we send. Send fewer; creep back up while it keeps pace.
    if (message.dropped > 0) {
      live.rate = Math.max(1, live.rate * 0.7);
      live.calm = 0;
    } else if (++live.calm >= 5 && live.rate < live.fps) {
      live.rate = Math.min(live.fps, live.rate + 0.5);
      live.calm = 0;
    }
    const t = (performance.now() - live.started) / 1000;
    points.push({ t, probabilities: message.probabilities, face: message.face_found !== false });
    while (points.length && points[0].t < t - SPAN) points.shift();
    show(message);
    const sorted = [...live.latencies].sort((a, b) => a - b);
    note(`${live.rate.toFixed(1)} frames/s sent, ${sorted.length ? sorted[sorted.length >> 1].toFixed(0) : "?"} ms ` +
         `from frame to answer, ${live.dropped} dropped by the server`);
    $("live").dataset.answers = String(live.answers);
    $("live").dataset.rate = live.rate.toFixed(2);
  }

  // Capture the newest camera frame as a JPEG and send it, then come back at the current rate.
  function send() {
    if (!live) return;
    const session = live;
    session.timer = setTimeout(send, 1000 / session.rate);
    const video = $("live-video");
    if (session.socket.readyState !== WebSocket.OPEN || !video.videoWidth || session.sent.size >= IN_FLIGHT) return;
    const scale = Math.min(1, WIDTH / video.videoWidth);
    session.canvas.width = Math.round(video.videoWidth * scale);
    session.canvas.height = Math.round(video.videoHeight * scale);
    session.canvas.getContext("2d").drawImage(video, 0, 0, session.canvas.width, session.canvas.height);
    session.canvas.toBlob(async (blob) => {
      if (!blob || live !== session || session.socket.readyState !== WebSocket.OPEN) return;
      const data = await blob.arrayBuffer();
      session.count += 1; // the server numbers frames as they arrive, from 1: the same count
      session.sent.set(session.count, performance.now());
      session.socket.send(data);
    }, "image/jpeg", QUALITY);
  }

  function stop(text) {
    if (!live) return;
    const session = live;
    live = null;
    clearTimeout(session.timer);
    if (session.socket.readyState <= WebSocket.OPEN) session.socket.close(1000, "stopped");
    for (const track of session.stream.getTracks()) track.stop();
    $("live-video").srcObject = null;
    $("live-start").disabled = false;
    clearOverlay();
    const seconds = ((performance.now() - session.started) / 1000).toFixed(0);
    note(text || `Stopped after ${seconds} s: ${session.answers} answers, ${session.dropped} frames dropped.`);
    $("live").dataset.stopped = "true";
    drawChart(); // kept, frozen at the last answer
  }

  function show(message) {
    const noFace = message.face_found === false;
    $("live").classList.toggle("no-face", noFace);
    $("live-emotion").textContent = noFace ? "No face in view" : message.emotion;
    $("live-probability").textContent = noFace ? "" : percent(message.probability);
    $("live-note").textContent = noFace ? `The model's guess without a face: ${message.emotion}` :
      `over the last ${live.window} s`;
    $("live-bars").replaceChildren(...classes
      .map((name, i) => [name, message.probabilities[name], colour(name, i)])
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
    drawOverlay(message);
    drawChart();
  }

  // Where the video's picture is inside its element (object-fit: contain letterboxes it).
  function picture(video) {
    const scale = Math.min(video.clientWidth / video.videoWidth, video.clientHeight / video.videoHeight);
    const width = video.videoWidth * scale;
    const height = video.videoHeight * scale;
    return { left: (video.clientWidth - width) / 2, top: (video.clientHeight - height) / 2, width, height };
  }

  function drawOverlay(message) {
    const video = $("live-video");
    const overlay = $("live-overlay");
    if (!video.videoWidth) return;
    const ratio = window.devicePixelRatio || 1;
    overlay.style.left = `${video.offsetLeft}px`;
    overlay.style.top = `${video.offsetTop}px`;
    overlay.style.width = `${video.clientWidth}px`;
    overlay.style.height = `${video.clientHeight}px`;
    overlay.width = Math.round(video.clientWidth * ratio);
    overlay.height = Math.round(video.clientHeight * ratio);
    const g = overlay.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    const p = picture(video);
    const noFace = message.face_found === false;
    const text = noFace ? "No face in view" : `${message.emotion} ${percent(message.probability)}`;
    let x = p.left + 8;
    let y = p.top + 8;
    if (message.face_box) {
      const [x0, y0, x1, y1] = message.face_box;
      g.strokeStyle = colour(message.emotion, classes.indexOf(message.emotion));
      g.lineWidth = 3;
      g.strokeRect(p.left + x0 * p.width, p.top + y0 * p.height, (x1 - x0) * p.width, (y1 - y0) * p.height);
      x = p.left + x0 * p.width;
      y = Math.max(p.top, p.top + y0 * p.height - 26);
    }
    g.font = "600 15px system-ui, sans-serif";
    g.textBaseline = "top";
    g.fillStyle = "rgba(0, 0, 0, 0.65)";
    g.fillRect(x, y, g.measureText(text).width + 12, 24);
    g.fillStyle = "#fff";
    g.fillText(text, x + 6, y + 4);
    overlay.dataset.label = text;
  }

  function clearOverlay() {
    const overlay = $("live-overlay");
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    overlay.dataset.label = "";
  }

  function legend() {
    const keys = [...classes.map((name, i) => [name, colour(name, i)]), ["no face in view", NO_FACE]];
    $("live-legend").replaceChildren(...keys.map(([name, c]) => {
      const key = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = c;
      key.append(swatch, name);
      return key;
    }));
  }

  // Each class's probability (y) over the last 30 s (x, seconds since the camera started), no-face moments shaded.
  function drawChart() {
    const canvas = $("live-chart");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const end = Math.max(SPAN, points.length ? points[points.length - 1].t : 0);
    const x = (t) => PAD.left + ((t - (end - SPAN)) / SPAN) * (width - PAD.left - PAD.right);
    const y = (p) => PAD.top + (1 - p) * (height - PAD.top - PAD.bottom);
    g.fillStyle = NO_FACE;
    points.forEach((point, j) => {
      if (point.face) return;
      const from = j === 0 ? point.t : (points[j - 1].t + point.t) / 2;
      const to = j === points.length - 1 ? point.t : (point.t + points[j + 1].t) / 2;
      g.fillRect(x(from), PAD.top, Math.max(2, x(to) - x(from)), height - PAD.top - PAD.bottom);
    });
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
    for (let t = Math.ceil((end - SPAN) / 5) * 5; t <= end + 1e-9; t += 5) {
      g.fillText(`${t} s`, x(t), height - PAD.bottom + 6);
    }
    classes.forEach((name, i) => {
      g.strokeStyle = colour(name, i);
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((point, j) => {
        if (j === 0) g.moveTo(x(point.t), y(point.probabilities[name]));
        else g.lineTo(x(point.t), y(point.probabilities[name]));
      });
      g.stroke();
    });
    canvas.dataset.points = String(points.length);
  }

  $("live-start").addEventListener("click", () => start().catch((error) => stop(`The camera failed: ${error.message}`)));
  $("live-stop").addEventListener("click", () => stop());
  $("token-form").addEventListener("submit", () => setTimeout(() => showButton().catch(() => {}), 0));
  window.addEventListener("resize", () => points.length && drawChart());
  showButton().catch(() => {});
})();
