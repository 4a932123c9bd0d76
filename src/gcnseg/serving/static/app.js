// The gcnseg page: send a photo to /v1/segment, then paint its mask over it in the browser, so
// the opacity slider redraws at once without asking the server again. Plain JS, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
// pending: a photo refused for want of an API key, sent again once a key is entered.
const state = { photo: null, colours: null, pending: null, maskUrl: null, overlayUrl: null };

function apiHeaders() {
  const key = $("api-key").value;
  return key ? { "X-API-Key": key } : {};
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${response.status}: ${body.detail}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("result").hidden = true;
  $("status").textContent = "";
}

async function loadModel() {
  const response = await fetch("/v1/model", { headers: apiHeaders() });
  if (response.status === 401) {
    $("key-row").hidden = false;
    $("model").textContent = "API key needed";
    return;
  }
  if (!response.ok) {
    $("model").textContent = `model unavailable (${await errorText(response)})`;
    return;
  }
  const model = await response.json();
  $("model").textContent = `${model.name} · ${model.classes.join(", ")} · engine ${model.engine}`;
}

async function segment(file) {
  $("error").hidden = true;
  $("status").textContent = `Segmenting ${file.name}…`;
  const form = new FormData();
  form.append("image", file, file.name);
  const started = performance.now();
  let response;
  try {
    response = await fetch("/v1/segment", { method: "POST", body: form, headers: apiHeaders() });
  } catch (err) {
    showError(`Could not reach the server: ${err.message}`);
    return;
  }
  if (!response.ok) {
    if (response.status === 401) {
      state.pending = file;
      $("key-row").hidden = false;
      $("api-key").focus();
    }
    showError(`Could not segment ${file.name}. ${await errorText(response)}`);
    return;
  }
  state.pending = null;
  const result = await response.json();
  const roundTrip = performance.now() - started;
  // The server turns a photo as its EXIF orientation says, as viewers show it; so does the page.
  let photo;
  try {
    photo = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    photo = null; // e.g. TIFF, which browsers cannot show: the mask is drawn alone
  }
  const maskPng = await (await fetch(`data:image/png;base64,${result.mask_png}`)).blob();
  const mask = await createImageBitmap(maskPng);
  state.photo = photo;
  const stem = file.name.replace(/\.[^.]*$/, "");
  state.maskUrl = link($("download-mask"), state.maskUrl, maskPng, `${stem}_mask.png`);
  $("download-overlay").download = `${stem}_overlay.png`;
  const background = result.classes.find((cls) => cls.background);
  state.colours = colourLayer(mask, background ? background.color : null);
  draw(result, file.name, roundTrip);
}

// The mask's colours where a class is found, transparent where the model's background class is
// (when it has one; every class is painted otherwise): blended over the photo at the slider's
// opacity this is what `gcnseg predict` draws at --alpha.
function colourLayer(mask, background) {
  const canvas = new OffscreenCanvas(mask.width, mask.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(mask, 0, 0);
  if (!background) return canvas;
  const pixels = ctx.getImageData(0, 0, mask.width, mask.height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === background[0] && data[i + 1] === background[1] && data[i + 2] === background[2]) {
      data[i + 3] = 0;
    }
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

function draw(result, name, roundTrip) {
  for (const id of ["original", "overlay"]) {
    $(id).width = result.width;
    $(id).height = result.height;
  }
  const original = $("original").getContext("2d");
  original.clearRect(0, 0, result.width, result.height);
  if (state.photo) original.drawImage(state.photo, 0, 0);
  repaint();
  const legend = $("legend");
  legend.replaceChildren();
  for (const cls of result.classes) {
    if (cls.share === 0) continue;
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${cls.color.join(",")})`;
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = cls.name;
    const share = document.createElement("span");
    share.className = "share";
    share.textContent = cls.share < 0.001 ? "<0.1%" : `${(100 * cls.share).toFixed(1)}%`;
    item.append(swatch, label, share);
    legend.append(item);
  }
  const t = result.timings_ms;
  $("timing").textContent =
    `${name}: ${result.width}×${result.height}, ${Math.round(roundTrip)} ms in all ` +
    `(inference ${t.inference} ms on ${result.engine}, decode ${t.decode} ms, queue ${t.queue} ms)`;
  $("status").textContent = "";
  $("result").hidden = false;
}

function repaint() {
  if (!state.colours) return;
  const alpha = Number($("opacity").value);
  $("opacity-value").textContent = `${Math.round(alpha * 100)}%`;
  const canvas = $("overlay");
  const ctx = canvas.getContext("2d");
  ctx.globalAlpha = 1;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.photo) ctx.drawImage(state.photo, 0, 0);
  ctx.globalAlpha = state.photo ? alpha : 1;
  ctx.drawImage(state.colours, 0, 0);
  ctx.globalAlpha = 1;
  const shown = state.colours;
  canvas.toBlob((blob) => {
    if (blob && shown === state.colours) {
      state.overlayUrl = link($("download-overlay"), state.overlayUrl, blob);
    }
  }, "image/png");
}

// Point a download link at `blob`, freeing the object URL it pointed at before.
function link(anchor, oldUrl, blob, name) {
  if (oldUrl) URL.revokeObjectURL(oldUrl);
  const url = URL.createObjectURL(blob);
  anchor.href = url;
  if (name) anchor.download = name;
  return url;
}

async function tryExample(button) {
  const src = button.dataset.src;
  const response = await fetch(src);
  if (!response.ok) {
    showError(`Could not load the example ${src}: ${await errorText(response)}`);
    return;
  }
  const blob = await response.blob();
  segment(new File([blob], src.split("/").pop(), { type: blob.type }));
}

function useKey(event) {
  event.preventDefault();
  loadModel();
  if (state.pending) segment(state.pending);
}

function choose(files) {
  if (files && files.length) segment(files[0]);
}

$("file").addEventListener("change", (event) => choose(event.target.files));
$("opacity").addEventListener("input", repaint);
$("key-row").addEventListener("submit", useKey);
for (const button of document.querySelectorAll(".example")) {
  button.addEventListener("click", () => tryExample(button));
}
const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  choose(event.dataTransfer.files);
});
loadModel();
