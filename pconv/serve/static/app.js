// The pconv web page: open an image, paint the hole, send both to POST /api/inpaint.
//
// State: the current image (a decoded bitmap and the Blob sent to the server) and the
// strokes painted on it, in image pixels. Every change (a stroke, Clear, an inpainting)
// pushes the previous state on the undo stack; images are never copied, only referenced.
// The mask sent to the server is rendered from the strokes at the image's own size:
// white (255) = hole on black, the server's default convention.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"), file: $("file"), open: $("open"), openHint: $("open-hint"),
  brush: $("brush"), eraser: $("eraser"), size: $("size"), sizeValue: $("size-value"),
  undo: $("undo"), redo: $("redo"), clear: $("clear"), refine: $("refine"), inpaint: $("inpaint"),
  compare: $("compare"), download: $("download"),
  progress: $("progress"), progressText: $("progress-text"), progressBar: $("progress-bar"),
  error: $("error"), errorText: $("error-text"), errorClose: $("error-close"),
  stage: $("stage"), empty: $("empty"), view: $("view"),
  picture: $("picture"), before: $("before"), paint: $("paint"),
  divider: $("divider"), cursor: $("cursor"),
  compareControl: $("compare-control"), comparePosition: $("compare-position"),
};

// image: {bitmap, blob, name}; strokes: [{erase, size, points: [[x, y], ...]}];
// before: the image the current one was inpainted from (null for an opened image).
let state = null;
const undoStack = [];
const redoStack = [];
let erasing = false;
let busy = false;
let activeStroke = null; // {stroke, pointerId} while a pointer is down
let limits = null; // from /api/health
let downloadUrl = null;

// ---------------------------------------------------------------- server

async function loadHealth() {
  try {
    const response = await fetch("/api/health");
    const health = await response.json();
    limits = health.limits;
    const model = health.model;
    const name = model.preset ? `${model.preset} U-Net` : model.backend;
    const seen = model.images_seen ? `, trained on ${model.images_seen.toLocaleString("en")} images` : "";
    ui.model.textContent = `model ${model.file} (${name}${seen}) on ${health.device} · pconv ${health.version}`;
  } catch (error) {
    ui.model.textContent = "the server does not answer";
  }
}

function inpaintRequest(imageBlob, maskBlob) {
  // XMLHttpRequest rather than fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("image", imageBlob, state.image.name);
    form.append("mask", maskBlob, "mask.png");
    form.append("refine", ui.refine.checked ? "true" : "false");
    const request = new XMLHttpRequest();
    request.open("POST", "/api/inpaint");
    request.responseType = "blob";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) showProgress("Uploading…", (100 * event.loaded) / event.total);
    };
    request.upload.onload = () => showProgress("Inpainting…", null);
    request.onerror = () => reject(new Error("cannot reach the server: is pconv serve still running?"));
    request.ontimeout = () => reject(new Error("the server took too long to answer"));
    request.onload = async () => {
      if (request.status === 200) return resolve(request.response);
      reject(new Error(await errorDetail(request.response, request)));
    };
    request.send(form);
  });
}

async function errorDetail(blob, request) {
  let detail = `${request.status} ${request.statusText}`;
  try {
    detail = JSON.parse(await blob.text()).detail || detail;
  } catch (_) {
    // not JSON: keep the status line
  }
  const retry = request.getResponseHeader("Retry-After");
  return retry ? `${detail} (retry in ${retry} s)` : detail;
}

// ---------------------------------------------------------------- messages

let progressTimer = null;

function showProgress(text, percent) {
  ui.progress.hidden = false;
  const started = performance.now();
  clearInterval(progressTimer);
  const render = () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    ui.progressText.textContent = percent === null ? `${text} ${seconds} s` : `${text} ${percent.toFixed(0)} %`;
  };
  render();
  if (percent === null) {
    ui.progressBar.removeAttribute("value"); // indeterminate
    progressTimer = setInterval(render, 500);
  } else {
    ui.progressBar.value = percent;
  }
}

function hideProgress() {
  clearInterval(progressTimer);
  ui.progress.hidden = true;
}

function showError(message) {
  ui.errorText.textContent = message;
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
}

// ---------------------------------------------------------------- images

async function openFile(file) {
  hideError();
  if (!file) return;
  if (!file.type.startsWith("image/") && file.type !== "") {
    return showError(`${file.name} is not an image (${file.type})`);
  }
  if (limits && file.size > limits.max_upload_bytes) {
    return showError(
      `${file.name} is ${megabytes(file.size)}, over the server's upload limit of ${megabytes(limits.max_upload_bytes)}`,
    );
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (_) {
    return showError(`this browser cannot show ${file.name}: open a PNG, JPEG or WebP image`);
  }
  if (limits && bitmap.width * bitmap.height > limits.max_image_pixels) {
    return showError(
      `${file.name} is ${bitmap.width}×${bitmap.height} pixels, over the server's limit of ` +
        `${limits.max_image_pixels.toLocaleString("en")} pixels`,
    );
  }
  undoStack.length = 0;
  redoStack.length = 0;
  setComparing(false);
  state = { image: { bitmap, blob: file, name: file.name || "image.png" }, strokes: [], before: null };
  render();
}

function megabytes(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function drawImage(canvas, image) {
  canvas.width = image.bitmap.width;
  canvas.height = image.bitmap.height;
  canvas.getContext("2d").drawImage(image.bitmap, 0, 0);
}

// ---------------------------------------------------------------- painting

const PAINT_COLOUR = "#ff2d55"; // on screen; the mask itself is white on black

// Draw `stroke` from its point `from` on (0: all of it).
function drawStroke(context, stroke, colour, from = 0) {
  const points = stroke.points;
  context.save();
  context.globalCompositeOperation = stroke.erase ? "destination-out" : "source-over";
  context.strokeStyle = context.fillStyle = colour;
  context.lineWidth = stroke.size;
  context.lineCap = context.lineJoin = "round";
  if (points.length === 1) {
    const [x, y] = points[0];
    context.beginPath();
    context.arc(x, y, stroke.size / 2, 0, 2 * Math.PI);
    context.fill();
  } else {
    context.beginPath();
    context.moveTo(...points[Math.max(0, from - 1)]);
    for (let i = Math.max(1, from); i < points.length; i++) context.lineTo(...points[i]);
    context.stroke();
  }
  context.restore();
}

function drawStrokes(canvas, strokes, colour) {
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (const stroke of strokes) drawStroke(context, stroke, colour);
}

function imagePoint(event) {
  const box = ui.paint.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * ui.paint.width) / box.width,
    ((event.clientY - box.top) * ui.paint.height) / box.height,
  ];
}

function brushSizeInImagePixels() {
  const box = ui.paint.getBoundingClientRect();
  return (Number(ui.size.value) * ui.paint.width) / box.width;
}

function startStroke(event) {
  if (isComparing()) return startDividerDrag(event);
  if (!state || busy || activeStroke || event.button > 0) return;
  event.preventDefault();
  ui.paint.setPointerCapture(event.pointerId);
  const stroke = { erase: erasing, size: brushSizeInImagePixels(), points: [imagePoint(event)] };
  activeStroke = { stroke, pointerId: event.pointerId };
  drawStroke(ui.paint.getContext("2d"), stroke, PAINT_COLOUR);
}

function extendStroke(event) {
  moveCursor(event);
  if (draggingDivider) return moveDivider(event);
  if (!activeStroke || event.pointerId !== activeStroke.pointerId) return;
  event.preventDefault();
  const stroke = activeStroke.stroke;
  const from = stroke.points.length;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) stroke.points.push(imagePoint(each));
  drawStroke(ui.paint.getContext("2d"), stroke, PAINT_COLOUR, from);
}

function endStroke(event) {
  draggingDivider = false;
  if (!activeStroke || event.pointerId !== activeStroke.pointerId) return;
  const stroke = activeStroke.stroke;
  activeStroke = null;
  commit({ ...state, strokes: [...state.strokes, stroke] });
}

function moveCursor(event) {
  if (event.pointerType !== "mouse" || !state || isComparing()) {
    ui.cursor.hidden = true;
    return;
  }
  const box = ui.view.getBoundingClientRect();
  const size = Number(ui.size.value);
  Object.assign(ui.cursor.style, {
    left: `${event.clientX - box.left}px`,
    top: `${event.clientY - box.top}px`,
    width: `${size}px`,
    height: `${size}px`,
  });
  ui.cursor.hidden = false;
}

// The mask at the image's size: white (255) where painted, black elsewhere.
function maskBlob() {
  const { width, height } = ui.paint;
  const mask = document.createElement("canvas");
  mask.width = width;
  mask.height = height;
  const context = mask.getContext("2d");
  drawStrokes(mask, state.strokes, "#fff"); // white strokes on transparent
  context.globalCompositeOperation = "destination-over";
  context.fillStyle = "#000";
  context.fillRect(0, 0, width, height);
  return new Promise((resolve) => mask.toBlob(resolve, "image/png"));
}

// ---------------------------------------------------------------- history

function commit(next) {
  undoStack.push(state);
  redoStack.length = 0;
  state = next;
  render();
}

function undo() {
  if (!undoStack.length || busy) return;
  redoStack.push(state);
  state = undoStack.pop();
  render();
}

function redo() {
  if (!redoStack.length || busy) return;
  undoStack.push(state);
  state = redoStack.pop();
  render();
}

function clearPaint() {
  if (state && state.strokes.length && !busy) commit({ ...state, strokes: [] });
}

// ---------------------------------------------------------------- inpainting

async function inpaint() {
  if (!state || !state.strokes.length || busy) return;
  hideError();
  setBusy(true);
  const previous = state;
  try {
    const resultBlob = await inpaintRequest(previous.image.blob, await maskBlob());
    const bitmap = await createImageBitmap(resultBlob);
    const name = `${stem(previous.image.name)}-inpainted.png`;
    commit({ image: { bitmap, blob: resultBlob, name }, strokes: [], before: previous.image });
  } catch (error) {
    showError(`Inpainting failed: ${error.message}`);
  } finally {
    hideProgress();
    setBusy(false);
  }
}

function stem(name) {
  return name.replace(/\.[^.]*$/, "").replace(/-inpainted$/, "");
}

function setBusy(value) {
  busy = value;
  document.body.setAttribute("aria-busy", String(value));
  updateControls();
}

// ---------------------------------------------------------------- compare

function isComparing() {
  return ui.compare.getAttribute("aria-pressed") === "true";
}

function setComparing(on) {
  ui.compare.setAttribute("aria-pressed", String(on));
  ui.view.classList.toggle("comparing", on);
  ui.before.hidden = ui.divider.hidden = ui.compareControl.hidden = !on;
  if (on) {
    drawImage(ui.before, state.before);
    placeDivider();
  }
}

// In Compare, dragging across the image moves the divider.
let draggingDivider = false;

function startDividerDrag(event) {
  event.preventDefault();
  ui.paint.setPointerCapture(event.pointerId);
  draggingDivider = true;
  moveDivider(event);
}

function moveDivider(event) {
  const box = ui.paint.getBoundingClientRect();
  ui.comparePosition.value = Math.round((100 * (event.clientX - box.left)) / box.width);
  placeDivider();
}

function placeDivider() {
  const percent = Number(ui.comparePosition.value);
  ui.before.style.clipPath = `inset(0 ${100 - percent}% 0 0)`;
  ui.divider.style.left = `${percent}%`;
}

// ---------------------------------------------------------------- rendering

function render() {
  ui.empty.hidden = Boolean(state);
  ui.view.hidden = !state;
  if (state) {
    ui.paint.width = state.image.bitmap.width;
    ui.paint.height = state.image.bitmap.height;
    drawImage(ui.picture, state.image);
    drawStrokes(ui.paint, state.strokes, PAINT_COLOUR);
  }
  if (isComparing()) setComparing(Boolean(state && state.before));
  fitView();
  updateDownload();
  updateControls();
}

function updateControls() {
  const hasImage = Boolean(state);
  ui.undo.disabled = busy || !undoStack.length;
  ui.redo.disabled = busy || !redoStack.length;
  ui.clear.disabled = busy || !hasImage || !state.strokes.length;
  ui.inpaint.disabled = busy || !hasImage || !state.strokes.length;
  ui.inpaint.title = hasImage && !state.strokes.length ? "Paint the hole first" : "Fill the painted hole";
  ui.compare.disabled = busy || !(state && state.before);
  ui.open.disabled = busy;
  ui.brush.setAttribute("aria-pressed", String(!erasing));
  ui.eraser.setAttribute("aria-pressed", String(erasing));
}

function updateDownload() {
  const result = state && state.before ? state.image : null; // an inpainting result
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = result ? URL.createObjectURL(result.blob) : null;
  if (result) {
    ui.download.href = downloadUrl;
    ui.download.download = result.name;
  } else {
    ui.download.removeAttribute("href");
  }
  ui.download.setAttribute("aria-disabled", String(!result));
}

// Scale the view to the largest size that fits the stage, keeping the aspect ratio.
function fitView() {
  if (!state) return;
  const { width, height } = state.image.bitmap;
  const stage = ui.stage.getBoundingClientRect();
  const availableWidth = ui.stage.clientWidth - 16;
  const availableHeight = Math.max(160, window.innerHeight - stage.top - 16);
  const scale = Math.min(availableWidth / width, availableHeight / height);
  ui.view.style.width = `${Math.floor(width * scale)}px`;
  ui.view.style.height = `${Math.floor(height * scale)}px`;
}

// ---------------------------------------------------------------- wiring

function setSize(value) {
  ui.size.value = Math.max(Number(ui.size.min), Math.min(Number(ui.size.max), value));
  ui.sizeValue.textContent = ui.size.value;
}

function onKey(event) {
  if (event.target instanceof HTMLInputElement && event.target.type !== "range") return;
  const command = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  if (command && key === "z") {
    event.preventDefault();
    event.shiftKey ? redo() : undo();
  } else if (command && key === "y") {
    event.preventDefault();
    redo();
  } else if (!command && key === "b") {
    erasing = false;
    updateControls();
  } else if (!command && key === "e") {
    erasing = true;
    updateControls();
  } else if (key === "[" || key === "]") {
    setSize(Number(ui.size.value) + (key === "]" ? 4 : -4));
  }
}

function wire() {
  ui.open.addEventListener("click", () => ui.file.click());
  ui.openHint.addEventListener("click", () => ui.file.click());
  ui.file.addEventListener("change", () => {
    openFile(ui.file.files[0]);
    ui.file.value = "";
  });
  ui.brush.addEventListener("click", () => { erasing = false; updateControls(); });
  ui.eraser.addEventListener("click", () => { erasing = true; updateControls(); });
  ui.size.addEventListener("input", () => setSize(Number(ui.size.value)));
  ui.undo.addEventListener("click", undo);
  ui.redo.addEventListener("click", redo);
  ui.clear.addEventListener("click", clearPaint);
  ui.inpaint.addEventListener("click", inpaint);
  ui.compare.addEventListener("click", () => setComparing(!isComparing()));
  ui.comparePosition.addEventListener("input", placeDivider);
  ui.errorClose.addEventListener("click", hideError);

  ui.paint.addEventListener("pointerdown", startStroke);
  ui.paint.addEventListener("pointermove", extendStroke);
  ui.paint.addEventListener("pointerup", endStroke);
  ui.paint.addEventListener("pointercancel", endStroke);
  ui.paint.addEventListener("pointerleave", () => { ui.cursor.hidden = true; });

  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    ui.stage.classList.add("dragging");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) ui.stage.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.stage.classList.remove("dragging");
    openFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((each) => each.type.startsWith("image/"));
    if (item) openFile(item.getAsFile());
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", fitView);
}

wire();
updateControls();
loadHealth();
