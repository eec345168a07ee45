// dfnet web page: load an image, paint the hole, send both to /api/inpaint, show what DFNet returns.
//
// The mask lives in a canvas at the image's full resolution; the brush size is set in screen pixels and
// converted to image pixels per stroke. Edits are kept as a list of operations (strokes, clears, loaded
// masks) so undo/redo replays them instead of storing full-resolution snapshots.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    imageInput: $("image-input"), maskInput: $("mask-input"), openImage: $("open-image"), openMask: $("open-mask"),
    brush: $("tool-brush"), eraser: $("tool-eraser"), size: $("brush-size"), sizeValue: $("brush-size-value"),
    undo: $("undo"), redo: $("redo"), clear: $("clear"), strategy: $("strategy"), strategyLabel: $("strategy-label"),
    inpaint: $("inpaint"), imageInfo: $("image-info"), busy: $("busy"), runInfo: $("run-info"),
    modelInfo: $("model-info"), error: $("error"), stage: $("stage"), dropHint: $("drop-hint"),
    wrap: $("canvas-wrap"), baseImage: $("base-image"), viewImage: $("view-image"), beforeImage: $("before-image"),
    compareLine: $("compare-line"), mask: $("mask-canvas"), cursor: $("brush-cursor"),
    compareControl: $("compare-control"), compare: $("compare"), useResult: $("use-result"),
    downloadResult: $("download-result"), downloadMask: $("download-mask"), dropOverlay: $("drop-overlay"),
  };
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  const MASK_COLOUR = "#ff2d6f";
  const MAX_UPSCALE = 2;

  const state = {
    image: null, // {blob, url, name, width, height}
    ops: [], // applied edit operations, oldest first
    undone: [], // operations undone, most recent last
    stroke: null, // the stroke being painted
    erasing: false,
    results: null, // {result, alpha, raw}: each {blob, url}
    view: "edit",
    busy: false,
  };
  const ctx = el.mask.getContext("2d", { willReadFrequently: true });

  // ---------- messages ----------
  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = false;
  }
  function clearError() {
    el.error.hidden = true;
    el.error.textContent = "";
  }
  function stem(name) {
    const base = (name || "image").replace(/^.*[\\/]/, "");
    return base.includes(".") ? base.slice(0, base.lastIndexOf(".")) : base;
  }

  // ---------- loading pictures ----------
  // A picture file -> { img, url }, or null after showing the error when the browser cannot decode it.
  async function decodeBlob(blob) {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
    } catch (err) {
      URL.revokeObjectURL(url);
      showError("this browser cannot display that file; use a PNG, JPEG or WebP image");
      return null;
    }
    return { img, url };
  }

  async function loadImage(blob, name) {
    if (!blob) return;
    if (blob.type && !blob.type.startsWith("image/")) {
      showError(`${name || "that file"} is not an image (${blob.type})`);
      return;
    }
    const decoded = await decodeBlob(blob);
    if (!decoded) return;
    clearError();
    if (state.image) URL.revokeObjectURL(state.image.url);
    const { img, url } = decoded;
    state.image = { blob, url, name: name || "image.png", width: img.naturalWidth, height: img.naturalHeight };
    el.baseImage.src = url;
    el.beforeImage.src = url;
    el.mask.width = img.naturalWidth;
    el.mask.height = img.naturalHeight;
    state.ops = [];
    state.undone = [];
    dropResults();
    el.imageInfo.textContent = `${state.image.name} · ${img.naturalWidth} × ${img.naturalHeight} px`;
    el.dropHint.hidden = true;
    el.wrap.hidden = false;
    setView("edit");
    layout();
    redraw();
  }

  function dropResults() {
    if (state.results) {
      for (const part of Object.values(state.results)) if (part) URL.revokeObjectURL(part.url);
    }
    state.results = null;
    el.runInfo.textContent = "";
    updateControls();
  }

  // A mask picture -> a canvas at the image's size holding the hole in MASK_COLOUR (server's rule:
  // white = hole; a picture whose colour is uniform uses its alpha channel instead).
  async function loadMask(blob) {
    if (!state.image) return;
    const decoded = await decodeBlob(blob);
    if (!decoded) return;
    const { img, url } = decoded;
    URL.revokeObjectURL(url);
    const { width, height } = state.image;
    if (img.naturalWidth !== width || img.naturalHeight !== height) {
      showError(`mask is ${img.naturalWidth}x${img.naturalHeight} but the image is ${width}x${height}: they must be the same size`);
      return;
    }
    clearError();
    const layer = document.createElement("canvas");
    layer.width = width;
    layer.height = height;
    const lctx = layer.getContext("2d", { willReadFrequently: true });
    lctx.drawImage(img, 0, 0);
    const data = lctx.getImageData(0, 0, width, height);
    const px = data.data;
    let lo = 255;
    let hi = 0;
    for (let i = 0; i < px.length; i += 4) {
      lo = Math.min(lo, px[i], px[i + 1], px[i + 2]);
      hi = Math.max(hi, px[i], px[i + 1], px[i + 2]);
    }
    const useAlpha = lo === hi;
    const [r, g, b] = [parseInt(MASK_COLOUR.slice(1, 3), 16), parseInt(MASK_COLOUR.slice(3, 5), 16), parseInt(MASK_COLOUR.slice(5, 7), 16)];
    for (let i = 0; i < px.length; i += 4) {
      const grey = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      const hole = useAlpha ? px[i + 3] > 127 : grey > 127;
      px[i] = r;
      px[i + 1] = g;
      px[i + 2] = b;
      px[i + 3] = hole ? 255 : 0;
    }
    lctx.putImageData(data, 0, 0);
    push({ type: "mask", layer });
    setView("edit");
  }

  // ---------- layout: fit the picture into the stage ----------
  function layout() {
    if (!state.image) return;
    const style = getComputedStyle(el.stage);
    const availW = el.stage.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const availH = el.stage.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    const { width, height } = state.image;
    const scale = Math.max(0.01, Math.min(availW / width, availH / height, MAX_UPSCALE));
    el.wrap.style.width = `${Math.round(width * scale)}px`;
    el.wrap.style.height = `${Math.round(height * scale)}px`;
    updateCursorSize();
  }

  // ---------- painting ----------
  function displayScale() {
    const rect = el.mask.getBoundingClientRect();
    return rect.width > 0 ? el.mask.width / rect.width : 1;
  }

  function toImagePoint(event) {
    const rect = el.mask.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * el.mask.width) / rect.width,
      ((event.clientY - rect.top) * el.mask.height) / rect.height,
    ];
  }

  function setPen(op) {
    ctx.globalCompositeOperation = op.erase ? "destination-out" : "source-over";
    ctx.strokeStyle = MASK_COLOUR;
    ctx.fillStyle = MASK_COLOUR;
    ctx.lineWidth = op.size;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  function drawDot(op, [x, y]) {
    setPen(op);
    ctx.beginPath();
    ctx.arc(x, y, op.size / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function drawSegment(op, [x0, y0], [x1, y1]) {
    setPen(op);
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
  }

  function apply(op) {
    if (op.type === "clear" || op.type === "mask") {
      ctx.globalCompositeOperation = "source-over";
      ctx.clearRect(0, 0, el.mask.width, el.mask.height);
      if (op.type === "mask") ctx.drawImage(op.layer, 0, 0);
      return;
    }
    drawDot(op, op.points[0]);
    for (let i = 1; i < op.points.length; i += 1) drawSegment(op, op.points[i - 1], op.points[i]);
  }

  function redraw() {
    ctx.globalCompositeOperation = "source-over";
    ctx.clearRect(0, 0, el.mask.width, el.mask.height);
    for (const op of state.ops) apply(op);
    updateControls();
  }

  function push(op, alreadyDrawn = false) {
    state.ops.push(op);
    state.undone = [];
    if (alreadyDrawn) updateControls();
    else redraw();
  }

  function undo() {
    if (!state.ops.length || state.stroke) return;
    state.undone.push(state.ops.pop());
    redraw();
  }

  function redo() {
    if (!state.undone.length || state.stroke) return;
    state.ops.push(state.undone.pop());
    redraw();
  }

  function clearMask() {
    if (!state.ops.length || state.ops[state.ops.length - 1].type === "clear") return;
    push({ type: "clear" });
  }

  el.mask.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || state.view !== "edit" || !state.image) return;
    event.preventDefault();
    el.mask.setPointerCapture(event.pointerId);
    const point = toImagePoint(event);
    state.stroke = { type: "stroke", erase: state.erasing, size: Number(el.size.value) * displayScale(), points: [point] };
    drawDot(state.stroke, point);
    moveCursor(event);
  });

  el.mask.addEventListener("pointermove", (event) => {
    moveCursor(event);
    if (!state.stroke) return;
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      const point = toImagePoint(e);
      const points = state.stroke.points;
      drawSegment(state.stroke, points[points.length - 1], point);
      points.push(point);
    }
  });

  function endStroke() {
    if (!state.stroke) return;
    const op = state.stroke;
    state.stroke = null;
    push(op, true);
  }
  el.mask.addEventListener("pointerup", endStroke);
  el.mask.addEventListener("pointercancel", endStroke);
  el.mask.addEventListener("lostpointercapture", endStroke);
  el.mask.addEventListener("pointerleave", () => {
    el.cursor.hidden = true;
  });

  // ---------- brush cursor and size ----------
  function moveCursor(event) {
    if (state.view !== "edit") return;
    const rect = el.wrap.getBoundingClientRect();
    el.cursor.style.left = `${event.clientX - rect.left}px`;
    el.cursor.style.top = `${event.clientY - rect.top}px`;
    el.cursor.hidden = false;
  }

  function updateCursorSize() {
    const size = Number(el.size.value);
    el.cursor.style.width = `${size}px`;
    el.cursor.style.height = `${size}px`;
    el.cursor.classList.toggle("eraser", state.erasing);
    el.sizeValue.textContent = `${size} px`;
  }

  function setBrushSize(size) {
    el.size.value = String(Math.round(Math.min(Number(el.size.max), Math.max(Number(el.size.min), size))));
    updateCursorSize();
  }

  function setEraser(erasing) {
    state.erasing = erasing;
    el.brush.setAttribute("aria-pressed", String(!erasing));
    el.eraser.setAttribute("aria-pressed", String(erasing));
    updateCursorSize();
  }

  // ---------- views: edit, result (with before/after), alpha, raw ----------
  function setView(view) {
    if (view !== "edit" && !(state.results && state.results[view])) return;
    state.view = view;
    el.wrap.dataset.view = view;
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    const shown = view === "edit" ? null : state.results[view];
    el.viewImage.hidden = !shown;
    if (shown) el.viewImage.src = shown.url;
    el.viewImage.alt = shown ? `${view} returned by DFNet` : "";
    el.compareControl.hidden = view !== "result";
    el.beforeImage.hidden = view !== "result";
    el.compareLine.hidden = view !== "result";
    el.cursor.hidden = true;
    updateCompare();
  }

  function updateCompare() {
    const percent = Number(el.compare.value);
    el.beforeImage.style.clipPath = `inset(0 ${100 - percent}% 0 0)`;
    el.compareLine.style.left = `${percent}%`;
    el.compareLine.hidden = state.view !== "result" || percent <= 0 || percent >= 100;
  }

  // Hold the mouse on the picture (result view) to see the input in full.
  el.wrap.addEventListener("pointerdown", (event) => {
    if (state.view === "result" && event.button === 0) el.wrap.classList.add("holding");
  });
  for (const type of ["pointerup", "pointerleave", "pointercancel"]) {
    el.wrap.addEventListener(type, () => el.wrap.classList.remove("holding"));
  }

  // ---------- talking to the server ----------

  // The painted canvas -> a PNG at the image's full resolution: white = hole, black = known.
  function maskBlob() {
    const { width, height } = el.mask;
    const source = ctx.getImageData(0, 0, width, height).data;
    const out = document.createElement("canvas");
    out.width = width;
    out.height = height;
    const octx = out.getContext("2d");
    const image = octx.createImageData(width, height);
    const px = image.data;
    for (let i = 0; i < px.length; i += 4) {
      const value = source[i + 3] >= 128 ? 255 : 0;
      px[i] = value;
      px[i + 1] = value;
      px[i + 2] = value;
      px[i + 3] = 255;
    }
    octx.putImageData(image, 0, 0);
    return new Promise((resolve, reject) => {
      out.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("could not encode the mask"))), "image/png");
    });
  }

  async function errorMessage(response) {
    let detail = "";
    try {
      const body = await response.json();
      detail = body.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).slice(-1)[0] || ""}: ${d.msg}`).join("; ");
    } catch (err) {
      detail = response.statusText;
    }
    return `The server refused the request (${response.status}): ${detail || "no details"}`;
  }

  function base64Blob(text, type) {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return new Blob([bytes], { type });
  }

  function setBusy(busy) {
    state.busy = busy;
    el.busy.hidden = !busy;
    document.body.setAttribute("aria-busy", String(busy));
    el.stage.style.cursor = busy ? "progress" : "";
    updateControls();
  }

  async function inpaint() {
    if (!state.image || state.busy) return;
    clearError();
    setBusy(true);
    el.runInfo.textContent = "";
    try {
      const form = new FormData();
      form.append("image", state.image.blob, state.image.name);
      form.append("mask", await maskBlob(), "mask.png");
      form.append("return", "json");
      form.append("alpha", "true");
      form.append("raw", "true");
      if (!el.strategyLabel.hidden) form.append("strategy", el.strategy.value);
      let response;
      try {
        response = await fetch("/api/inpaint", { method: "POST", body: form });
      } catch (err) {
        throw new Error(`cannot reach the server (${err.message}); is dfnet serve still running?`);
      }
      if (!response.ok) throw new Error(await errorMessage(response));
      const body = await response.json();
      dropResults();
      const results = {};
      for (const part of ["result", "alpha", "raw"]) {
        if (!body[part]) continue;
        const blob = base64Blob(body[part], body.media_type || "image/png");
        results[part] = { blob, url: URL.createObjectURL(blob) };
      }
      state.results = results;
      el.runInfo.textContent = `Inpainted ${(100 * body.hole_ratio).toFixed(1)}% of the picture in ${(body.elapsed_ms / 1000).toFixed(2)} s`;
      setView("result");
    } catch (err) {
      showError(err.message);
    } finally {
      setBusy(false);
    }
  }

  async function showModel() {
    try {
      const response = await fetch("/api/model");
      if (!response.ok) return;
      const model = await response.json();
      el.modelInfo.textContent = [model.name && `model: ${model.name}`, model.device && `on ${model.device}`].filter(Boolean).join(" ");
      const strategies = Array.isArray(model.strategies) ? model.strategies : [];
      if (strategies.length > 1) {
        for (const name of strategies) el.strategy.add(new Option(name, name, name === "auto", name === "auto"));
        el.strategyLabel.hidden = false;
      }
    } catch (err) {
      el.modelInfo.textContent = "";
    }
  }

  // ---------- downloads ----------
  function download(blob, filename) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = filename;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---------- controls ----------
  function updateControls() {
    const hasImage = Boolean(state.image);
    const hasResult = Boolean(state.results && state.results.result);
    el.openMask.disabled = !hasImage;
    el.undo.disabled = !state.ops.length;
    el.redo.disabled = !state.undone.length;
    el.clear.disabled = !state.ops.length;
    el.inpaint.disabled = !hasImage || state.busy;
    el.downloadMask.disabled = !hasImage;
    el.downloadResult.disabled = !hasResult;
    el.useResult.disabled = !hasResult || state.busy;
    for (const tab of tabs) {
      if (tab.dataset.view !== "edit") tab.disabled = !(state.results && state.results[tab.dataset.view]);
    }
  }

  el.openImage.addEventListener("click", () => el.imageInput.click());
  el.openMask.addEventListener("click", () => el.maskInput.click());
  el.imageInput.addEventListener("change", () => {
    const file = el.imageInput.files[0];
    el.imageInput.value = "";
    if (file) loadImage(file, file.name);
  });
  el.maskInput.addEventListener("change", () => {
    const file = el.maskInput.files[0];
    el.maskInput.value = "";
    if (file) loadMask(file);
  });
  el.brush.addEventListener("click", () => setEraser(false));
  el.eraser.addEventListener("click", () => setEraser(true));
  el.size.addEventListener("input", updateCursorSize);
  el.undo.addEventListener("click", undo);
  el.redo.addEventListener("click", redo);
  el.clear.addEventListener("click", clearMask);
  el.inpaint.addEventListener("click", inpaint);
  el.compare.addEventListener("input", updateCompare);
  for (const tab of tabs) tab.addEventListener("click", () => setView(tab.dataset.view));
  el.downloadResult.addEventListener("click", () => {
    if (state.results) download(state.results.result.blob, `${stem(state.image.name)}-inpainted.png`);
  });
  el.downloadMask.addEventListener("click", async () => {
    if (!state.image) return;
    try {
      download(await maskBlob(), `${stem(state.image.name)}-mask.png`);
    } catch (err) {
      showError(err.message);
    }
  });
  el.useResult.addEventListener("click", () => {
    if (!state.results) return;
    const name = `${stem(state.image.name)}-inpainted.png`;
    loadImage(state.results.result.blob, name);
  });

  // ---------- keyboard ----------
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target instanceof HTMLSelectElement || (target instanceof HTMLInputElement && target.type === "text")) return;
    const key = event.key.toLowerCase();
    const ctrl = event.ctrlKey || event.metaKey;
    let handled = true;
    if (ctrl && key === "z" && event.shiftKey) redo();
    else if (ctrl && key === "z") undo();
    else if (ctrl && key === "y") redo();
    else if (ctrl && key === "enter") inpaint();
    else if (ctrl || event.altKey) handled = false;
    else if (key === "[") setBrushSize(Number(el.size.value) / 1.25);
    else if (key === "]") setBrushSize(Number(el.size.value) * 1.25 + 1);
    else if (key === "b") setEraser(false);
    else if (key === "e") setEraser(true);
    else handled = false;
    if (handled) event.preventDefault();
  });

  // ---------- drag and drop, paste ----------
  let dragDepth = 0;
  const carriesFiles = (event) => Array.from(event.dataTransfer ? event.dataTransfer.types : []).includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth += 1;
    el.dropOverlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) el.dropOverlay.hidden = true;
  });
  document.addEventListener("dragover", (event) => {
    if (carriesFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    el.dropOverlay.hidden = true;
    const file = event.dataTransfer.files[0];
    if (file) loadImage(file, file.name);
  });
  document.addEventListener("paste", (event) => {
    const items = Array.from(event.clipboardData ? event.clipboardData.items : []);
    const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (!item) return;
    event.preventDefault();
    const file = item.getAsFile();
    const ext = item.type.split("/")[1] || "png";
    loadImage(file, file.name && file.name !== "image.png" ? file.name : `pasted.${ext}`);
  });

  // The stage changes size with the window and whenever an error, a second toolbar row or the
  // before/after slider appears; keep the picture fitted to it.
  if (typeof ResizeObserver === "function") new ResizeObserver(layout).observe(el.stage);
  else window.addEventListener("resize", layout);
  updateCursorSize();
  updateControls();
  showModel();
})();
