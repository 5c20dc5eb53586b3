// DeepSampler's page: separate an uploaded file (a queued job, progress by server-sent
// events, stems played in sync with Web Audio) or the microphone live over a websocket.
// Plain JavaScript, no build step. Every error is one line in #error.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], maxUploadMb: 0, file: null, player: null, live: null };
window.deepsampler = state; // for the browser tests and the curious

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function api(url, options) {
  const res = await fetch(url, options);
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = { error: `${res.status} ${res.statusText}` };
  }
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

function fmtTime(s) {
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  select.appendChild(o);
}

// ---- tabs ------------------------------------------------------------------------------
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
    for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== tab.dataset.tab;
  });
}

// ---- models ----------------------------------------------------------------------------
async function loadModels() {
  const body = await api("/api/models");
  state.models = body.models;
  state.maxUploadMb = body.max_upload_mb;
  for (const m of body.models) option($("model"), m.name, m.name);
  const live = body.models.filter((m) => m.causal);
  for (const m of live) option($("live-model"), m.name, `${m.name} (${m.latency_ms} ms)`);
  $("enhance-label").hidden = !body.enhance;
  $("live-tab").hidden = !body.live || live.length === 0;
  const preferred = body.models.find((m) => m.name === "music4-rt");
  if (preferred) $("model").value = preferred.name;
  showModel();
  showLiveStems();
  $("start").disabled = !state.file;
}

const model = (name) => state.models.find((m) => m.name === name);

function showModel() {
  const m = model($("model").value);
  const detects = m && m.detects ? ` | ${m.detects} events detected too` : "";
  $("model-info").textContent = m ? m.description + detects : "";
}

function showLiveStems() {
  const m = model($("live-model").value);
  $("live-stem").replaceChildren();
  if (m) for (const s of m.sources) option($("live-stem"), s, s);
}

$("model").addEventListener("change", showModel);
$("live-model").addEventListener("change", showLiveStems);

// ---- upload ----------------------------------------------------------------------------
function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("drop-text").textContent = `${file.name} (${(file.size / 1e6).toFixed(1)} MB)`;
  $("start").disabled = false;
}

$("file").addEventListener("change", () => chooseFile($("file").files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  chooseFile(e.dataTransfer.files[0]);
});

$("upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("");
  const file = state.file;
  if (!file) return;
  if (file.size > state.maxUploadMb * 1e6) {
    showError(`${file.name}: larger than this server's upload limit (${state.maxUploadMb} MB)`);
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", $("model").value);
  form.append("enhance", $("enhance").checked ? "true" : "false");
  $("start").disabled = true;
  stopPlayer();
  $("results").hidden = true;
  $("job").hidden = false;
  $("progress").value = 0;
  $("job-status").textContent = "uploading…";
  try {
    const job = await api("/api/jobs", { method: "POST", body: form });
    watchJob(job.id);
  } catch (err) {
    $("job").hidden = true;
    $("start").disabled = false;
    showError(err.message);
  }
});

// ---- a job's progress ------------------------------------------------------------------
function showJob(view) {
  $("progress").value = view.progress;
  if (view.status === "queued") {
    $("job-status").textContent = `queued: number ${view.position} in the queue`;
  } else if (view.status === "running") {
    $("job-status").textContent = `separating with ${view.model}: ${Math.round(100 * view.progress)} %`;
  } else if (view.status === "done") {
    $("job-status").textContent = `done: ${view.name}, ${view.seconds.toFixed(1)} s with ${view.model}`;
  }
}

function finished(view) {
  $("start").disabled = false;
  if (view.status === "done") {
    loadResults(view).catch((err) => showError(err.message));
  } else {
    $("job").hidden = true;
    showError(view.error || `the job was ${view.status}`);
  }
}

function watchJob(id) {
  const events = new EventSource(`/api/jobs/${id}/events`);
  events.onmessage = (e) => {
    const view = JSON.parse(e.data);
    showJob(view);
    if (view.status !== "queued" && view.status !== "running") {
      events.close();
      finished(view);
    }
  };
  events.onerror = () => {
    // the stream broke (e.g. the server restarted): ask once a second instead
    events.close();
    const poll = async () => {
      try {
        const view = await api(`/api/jobs/${id}`);
        showJob(view);
        if (view.status === "queued" || view.status === "running") setTimeout(poll, 1000);
        else finished(view);
      } catch (err) {
        showError(err.message);
        $("start").disabled = false;
      }
    };
    setTimeout(poll, 1000);
  };
}

// ---- results: stems in sync with Web Audio ---------------------------------------------
async function loadResults(view) {
  const ctx = new AudioContext({ sampleRate: view.sample_rate });
  const stems = await Promise.all(
    view.stems.map(async (s) => {
      const res = await fetch(s.url);
      if (!res.ok) throw new Error(`stem ${s.name}: ${res.status} ${res.statusText}`);
      const buffer = await ctx.decodeAudioData(await res.arrayBuffer());
      const gain = ctx.createGain();
      gain.connect(ctx.destination);
      return { name: s.name, url: s.url, buffer, gain, level: 1, applied: 1, mute: false, solo: false };
    }),
  );
  const duration = Math.max(...stems.map((s) => s.buffer.duration));
  state.player = { ctx, stems, duration, sources: [], playing: false, offset: 0, startedAt: 0 };
  $("zip").href = view.zip;
  $("stems").replaceChildren(...stems.map(stemRow));
  $("results").hidden = false;
  $("play").textContent = "Play";
  for (const s of stems) drawStem(s);
  showEvents(view.events, duration);
  tick();
}

// ---- detected events (a job of the siren detector's separator) --------------------------
function eventText(e) {
  return `${e.label} ${e.onset.toFixed(1)}-${e.offset.toFixed(1)} s (${e.confidence.toFixed(2)})`;
}

function showEvents(events, duration) {
  // one line listing them, and a band per event over every stem's waveform and spectrogram
  const list = events || [];
  $("events").hidden = !events;
  $("events").textContent = events ? (list.length ? list.map(eventText).join(", ") : "no events detected") : "";
  for (const s of state.player.stems) {
    const bands = list.map((e) => {
      const band = document.createElement("div");
      band.className = "event";
      band.style.left = `${(100 * Math.min(e.onset, duration)) / duration}%`;
      band.style.width = `${(100 * Math.max(0, Math.min(e.offset, duration) - e.onset)) / duration}%`;
      band.title = eventText(e);
      band.textContent = e.confidence.toFixed(2);
      return band;
    });
    s.row.querySelector(".view").prepend(...bands);
  }
}

function stemRow(stem) {
  const row = document.createElement("div");
  row.className = "stem";
  row.innerHTML = `
    <div class="stem-head">
      <strong></strong>
      <button type="button" class="solo">Solo</button>
      <button type="button" class="mute">Mute</button>
      <label>Gain <input type="range" min="0" max="2" step="0.01" value="1"></label>
      <a class="button download" download>Download</a>
    </div>
    <div class="view"><canvas class="wave" width="1000" height="48"></canvas>
      <canvas class="spec" width="1000" height="64"></canvas><div class="playhead"></div></div>`;
  row.dataset.stem = stem.name;
  row.querySelector("strong").textContent = stem.name;
  const a = row.querySelector("a.download");
  a.href = stem.url;
  a.setAttribute("download", `${stem.name}.wav`);
  const solo = row.querySelector(".solo");
  const mute = row.querySelector(".mute");
  solo.addEventListener("click", () => {
    stem.solo = !stem.solo;
    solo.classList.toggle("on", stem.solo);
    applyGains();
  });
  mute.addEventListener("click", () => {
    stem.mute = !stem.mute;
    mute.classList.toggle("on", stem.mute);
    applyGains();
  });
  row.querySelector("input[type=range]").addEventListener("input", (e) => {
    stem.level = Number(e.target.value);
    applyGains();
  });
  const viewEl = row.querySelector(".view");
  viewEl.addEventListener("click", (e) => {
    const box = viewEl.getBoundingClientRect();
    seek(((e.clientX - box.left) / box.width) * state.player.duration);
  });
  stem.row = row;
  return row;
}

function applyGains() {
  const p = state.player;
  const anySolo = p.stems.some((s) => s.solo);
  for (const s of p.stems) {
    s.applied = s.mute || (anySolo && !s.solo) ? 0 : s.level;
    s.gain.gain.setTargetAtTime(s.applied, p.ctx.currentTime, 0.01);
  }
}

function position() {
  const p = state.player;
  if (!p) return 0;
  if (!p.playing) return p.offset;
  return Math.min(Math.max(p.ctx.currentTime - p.startedAt, 0), p.duration);
}

async function play() {
  const p = state.player;
  await p.ctx.resume();
  if (p.offset >= p.duration) p.offset = 0;
  const at = p.ctx.currentTime + 0.05; // every stem starts on the same sample
  p.sources = p.stems.map((s) => {
    const src = p.ctx.createBufferSource();
    src.buffer = s.buffer;
    src.connect(s.gain);
    src.start(at, p.offset);
    return src;
  });
  p.startedAt = at - p.offset;
  p.playing = true;
  $("play").textContent = "Pause";
  tick();
}

function pause() {
  const p = state.player;
  p.offset = position();
  for (const src of p.sources) src.stop();
  p.sources = [];
  p.playing = false;
  $("play").textContent = "Play";
  // show the held position now: the last frame drawn while playing lags it, and a frame
  // already requested would otherwise change the display after the pause
  tick();
}

function stopPlayer() {
  const p = state.player;
  if (!p) return;
  if (p.playing) pause();
  p.ctx.close();
  state.player = null;
}

function seek(t) {
  const p = state.player;
  const was = p.playing;
  if (was) pause();
  p.offset = Math.min(Math.max(t, 0), p.duration);
  if (was) play();
  else tick();
}

$("play").addEventListener("click", () => {
  if (!state.player) return;
  if (state.player.playing) pause();
  else play().catch((err) => showError(err.message));
});

function tick() {
  const p = state.player;
  if (!p) return;
  const t = position();
  if (p.playing && t >= p.duration) {
    pause();
    p.offset = p.duration;
  }
  $("position").textContent = `${fmtTime(t)} / ${fmtTime(p.duration)}`;
  $("position").dataset.time = t.toFixed(3);
  const pct = `${(100 * t) / p.duration}%`;
  for (const s of p.stems) s.row.querySelector(".playhead").style.left = pct;
  if (p.playing) requestAnimationFrame(tick);
}

// ---- drawing: waveform and spectrogram --------------------------------------------------
function monoOf(buffer) {
  const n = buffer.length;
  const out = new Float32Array(n);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const ch = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) out[i] += ch[i] / buffer.numberOfChannels;
  }
  return out;
}

function drawStem(stem) {
  const x = monoOf(stem.buffer);
  drawWave(stem.row.querySelector("canvas.wave"), x);
  drawSpectrogram(stem.row.querySelector("canvas.spec"), x, stem.buffer.sampleRate);
}

function drawWave(canvas, x) {
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  g.clearRect(0, 0, width, height);
  g.fillStyle = "#4fa3ff";
  const per = x.length / width;
  for (let px = 0; px < width; px++) {
    let lo = 0;
    let hi = 0;
    const end = Math.min(x.length, Math.floor((px + 1) * per));
    for (let i = Math.floor(px * per); i < end; i++) {
      if (x[i] < lo) lo = x[i];
      if (x[i] > hi) hi = x[i];
    }
    const top = ((1 - Math.min(hi, 1)) * height) / 2;
    const bottom = ((1 - Math.max(lo, -1)) * height) / 2;
    g.fillRect(px, top, 1, Math.max(1, bottom - top));
  }
}

function fft(re, im) {
  // in-place radix-2 FFT of length 2^k
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k);
        const wi = Math.sin(ang * k);
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b] * wr - im[b] * wi;
        const ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
}

const COLORS = [[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]];

function color(v) {
  const t = Math.min(Math.max(v, 0), 1) * (COLORS.length - 1);
  const i = Math.min(Math.floor(t), COLORS.length - 2);
  const f = t - i;
  return COLORS[i].map((c, k) => Math.round(c + f * (COLORS[i + 1][k] - c)));
}

function drawSpectrogram(canvas, x, sampleRate) {
  // columns of 1024-point spectra; rows on a log-frequency axis from 40 Hz to Nyquist; 80 dB
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  const N = 1024;
  const img = g.createImageData(width, height);
  const win = Float32Array.from({ length: N }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N));
  const lo = Math.log(40);
  const hi = Math.log(sampleRate / 2);
  const rowBin = Array.from({ length: height }, (_, r) => {
    const f = Math.exp(hi - ((hi - lo) * r) / (height - 1));
    return Math.min(N / 2 - 1, Math.round((f / sampleRate) * N));
  });
  const re = new Float32Array(N);
  const im = new Float32Array(N);
  for (let col = 0; col < width; col++) {
    const start = Math.floor((col / width) * Math.max(0, x.length - N));
    for (let i = 0; i < N; i++) {
      re[i] = (x[start + i] || 0) * win[i];
      im[i] = 0;
    }
    fft(re, im);
    for (let r = 0; r < height; r++) {
      const k = rowBin[r];
      const db = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-12);
      const [cr, cg, cb] = color((db + 40) / 80); // -40 .. +40 dB of a full-scale sine's bin
      const p = 4 * (r * width + col);
      img.data[p] = cr;
      img.data[p + 1] = cg;
      img.data[p + 2] = cb;
      img.data[p + 3] = 255;
    }
  }
  g.putImageData(img, 0, 0);
}

// ---- live ------------------------------------------------------------------------------
const BLOCK = 1024; // samples per websocket message (23 ms at 44.1 kHz)

function setLive(id, text) {
  $(id).textContent = text;
}

async function startLive() {
  showError("");
  const m = model($("live-model").value);
  const stem = $("live-stem").value;
  if (!m) return;
  $("live-start").disabled = true;
  const live = { sent: [], rtt: [], received: 0, sumsq: 0, underruns: 0, missed: 0, ready: false };
  state.live = live;
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
    live.ctx = new AudioContext({ sampleRate: m.sample_rate, latencyHint: "interactive" });
    await live.ctx.audioWorklet.addModule("/static/worklet.js");
    const source = live.ctx.createMediaStreamSource(live.stream);
    live.node = new AudioWorkletNode(live.ctx, "deepsampler-live", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { block: BLOCK, prebuffer: 2 * BLOCK },
    });
    source.connect(live.node);
    live.node.connect(live.ctx.destination);
  } catch (err) {
    stopLive();
    showError(`microphone: ${err.message}`);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/live`);
  ws.binaryType = "arraybuffer";
  live.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ model: m.name, stem, sample_rate: live.ctx.sampleRate }));
  ws.onmessage = (e) => {
    if (typeof e.data === "string") {
      const msg = JSON.parse(e.data);
      if (msg.type === "ready") {
        live.ready = true;
        setLive("live-latency", `${msg.latency_ms.toFixed(1)} ms (${m.name}, ${stem})`);
        $("live-stop").disabled = false;
      } else if (msg.type === "stats") {
        live.missed = msg.missed;
        live.rtf = msg.rtf;
      } else if (msg.type === "error") {
        showError(msg.error);
        stopLive();
      }
      return;
    }
    const out = new Float32Array(e.data);
    const sent = live.sent.shift();
    if (sent !== undefined) live.rtt.push(performance.now() - sent);
    if (live.rtt.length > 50) live.rtt.shift();
    live.received += out.length;
    for (let i = 0; i < out.length; i++) live.sumsq += out[i] * out[i];
    live.node.port.postMessage(out, [out.buffer]);
    showLiveStats(live);
  };
  ws.onclose = () => {
    if (state.live === live) stopLive();
  };
  live.node.port.onmessage = (e) => {
    if (e.data.type === "underrun") {
      live.underruns = e.data.count;
    } else if (live.ready && ws.readyState === WebSocket.OPEN) {
      live.sent.push(performance.now());
      ws.send(e.data.samples.buffer);
    }
  };
}

function showLiveStats(live) {
  const rtt = live.rtt.reduce((a, b) => a + b, 0) / Math.max(1, live.rtt.length);
  setLive("live-rtt", `${rtt.toFixed(1)} ms per ${BLOCK}-sample block`);
  setLive(
    "live-missed",
    `${live.missed} on the server (compute over the block's time), ${live.underruns} playback underrun(s)`,
  );
  const secs = live.received / live.ctx.sampleRate;
  setLive("live-received", `${secs.toFixed(1)} s of audio`);
  $("live-received").dataset.samples = String(live.received);
}

function stopLive() {
  const live = state.live;
  if (!live) return;
  state.live = null;
  if (live.ws && live.ws.readyState <= WebSocket.OPEN) live.ws.close();
  if (live.stream) for (const t of live.stream.getTracks()) t.stop();
  if (live.ctx) live.ctx.close();
  state.lastLive = live;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
}

$("live-start").addEventListener("click", () => startLive().catch((err) => showError(err.message)));
$("live-stop").addEventListener("click", stopLive);

loadModels().catch((err) => showError(`could not load the models: ${err.message}`));
