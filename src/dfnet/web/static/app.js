// dfnet web page: load an image, paint the hole, send both to /api/inpaint, show what DFNet returns.
//
// The mask lives in a canvas at the image's full resolution; the brush size is in image pixels at every
// zoom. Everything the user does is one list of operations (strokes, clears, loaded masks and inpaints):
// the picture shown is the result of the last inpaint (or the opened image) and the mask is the replay of
// the operations after it, so undo/redo covers inpaints too without storing full-resolution snapshots.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    imageInput: $("image-input"), maskInput: $("mask-input"), openImage: $("open-image"), openMask: $("open-mask"),
    brush: $("tool-brush"), eraser: $("tool-eraser"), size: $("brush-size"), sizeValue: $("brush-size-value"),
    undo: $("undo"), redo: $("redo"), clear: $("clear"), strategy: $("strategy"), strategyLabel: $("strategy-label"),
    texture: $("texture"), textureLabel: $("texture-label"), model: $("model"), modelLabel: $("model-label"),
    zoomIn: $("zoom-in"), zoomOut: $("zoom-out"), zoomFit: $("zoom-fit"), zoomActual: $("zoom-actual"),
    zoomValue: $("zoom-value"), theme: $("theme"),
    inpaint: $("inpaint"), imageInfo: $("image-info"), busy: $("busy"), busyLabel: $("busy-label"),
    elapsed: $("elapsed"), spinner: document.querySelector(".spinner"), cancel: $("cancel"), runInfo: $("run-info"), modelInfo: $("model-info"),
    error: $("error"), warning: $("warning"), stage: $("stage"), dropHint: $("drop-hint"),
    wrap: $("canvas-wrap"), baseImage: $("base-image"), viewImage: $("view-image"), beforeImage: $("before-image"),
    compareHandle: $("compare-handle"), mask: $("mask-canvas"), cursor: $("brush-cursor"),
    compareControl: $("compare-control"), compare: $("compare"), original: $("original-image"),
    showOriginal: $("show-original"), downloadResult: $("download-result"), downloadWhat: $("download-what"),
    downloadMask: $("download-mask"), dropOverlay: $("drop-overlay"), toolbar: document.querySelector(".toolbar"),
    shortcuts: $("shortcuts"), shortcutsClose: $("shortcuts-close"),
  };
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  const MASK_COLOUR = "#ff2d6f";
  const MAX_ZOOM = 32;
  const ZOOM_STEP = 1.25;
  const DEFAULT_BRUSH_SCREEN_PX = 40; // the brush a new image starts with, as seen at the fitted zoom
  const HOLE_WARNING_RATIO = 0.5; // as dfnet inpaint: above this the mask may be inverted
  const CANVAS_MAX_SIDE = 32767; // Chromium's canvas limits: a larger mask cannot be painted
  const CANVAS_MAX_AREA = 268435456;
  const EXTENSIONS = { "image/jpeg": "jpg", "image/webp": "webp", "image/png": "png" };

  const state = {
    image: null, // the opened picture: {blob, url, name, width, height}
    ops: [], // applied operations, oldest first
    undone: [], // operations undone, most recent last
    stroke: null, // the stroke being painted
    erasing: false,
    view: "edit",
    request: null, // the request in flight: {controller, timer}
    zoom: 1,
    panX: 0, // stage position of the image's top-left corner, in CSS pixels
    panY: 0,
    fitted: true, // keep fitting the picture while the window changes size
    pan: null, // a pan by space-drag or middle button: {x, y, panX, panY}
    pointers: new Map(), // touch points on the stage, for pinch and two-finger pan
    pinch: null,
    spaceDown: false,
    limits: null, // published by /api/model
    models: [], // the served models, as /api/model lists them
    drawn: null, // [x0, y0, x1, y1] of the mask canvas drawn on since it was cleared
    holeRatio: 0, // share of the picture the mask covers
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
  function formatBytes(size) {
    const mb = 1024 * 1024;
    return size >= mb ? `${Number((size / mb).toPrecision(3))} MB` : `${Number((size / 1024).toPrecision(3))} KB`;
  }
  const count = (n) => n.toLocaleString("en-US");
  // A share of the picture as a percentage that never reads "0.0%" for a real hole.
  function percent(ratio) {
    const value = 100 * ratio;
    if (value >= 0.1 || value === 0) return `${value.toFixed(1)}%`;
    return value >= 0.01 ? `${value.toFixed(2)}%` : "<0.01%";
  }

  // ---------- the history: current picture and mask ----------
  function lastInpaintIndex() {
    for (let i = state.ops.length - 1; i >= 0; i -= 1) if (state.ops[i].type === "inpaint") return i;
    return -1;
  }
  function lastInpaint() {
    const index = lastInpaintIndex();
    return index >= 0 ? state.ops[index] : null;
  }
  // The picture the next inpaint starts from: the last result, or the opened image.
  function currentPicture() {
    const step = lastInpaint();
    return step ? step.result : state.image;
  }
  const maskOps = () => state.ops.slice(lastInpaintIndex() + 1);

  // Blob URLs an operation owns (the "before" picture belongs to the operation or image before it).
  function release(op) {
    if (op.type !== "inpaint") return;
    for (const part of [op.result, op.alpha, op.raw]) if (part) URL.revokeObjectURL(part.url);
  }

  // ---------- loading pictures ----------
  // Width and height read from the file's header, without decoding it (null for formats not handled here).
  async function headerSize(blob) {
    const bytes = new Uint8Array(await blob.slice(0, 256 * 1024).arrayBuffer());
    const view = new DataView(bytes.buffer);
    const text = (offset, length) => String.fromCharCode(...bytes.subarray(offset, offset + length));
    if (bytes.length < 30) return null;
    if (text(1, 3) === "PNG") return [view.getUint32(16), view.getUint32(20)];
    if (text(0, 3) === "GIF") return [view.getUint16(6, true), view.getUint16(8, true)];
    if (text(0, 2) === "BM") return [view.getInt32(18, true), Math.abs(view.getInt32(22, true))];
    if (text(0, 4) === "RIFF" && text(8, 4) === "WEBP") {
      const chunk = text(12, 4);
      const u24 = (o) => bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16);
      if (chunk === "VP8X") return [1 + u24(24), 1 + u24(27)];
      if (chunk === "VP8L") {
        const bits = view.getUint32(21, true);
        return [1 + (bits & 0x3fff), 1 + ((bits >>> 14) & 0x3fff)];
      }
      if (chunk === "VP8 ") return [view.getUint16(26, true) & 0x3fff, view.getUint16(28, true) & 0x3fff];
    }
    if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      let offset = 2;
      while (offset + 9 < bytes.length) {
        if (bytes[offset] !== 0xff) return null;
        const marker = bytes[offset + 1];
        const isFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
        if (isFrame) return [view.getUint16(offset + 7), view.getUint16(offset + 5)];
        offset += 2 + view.getUint16(offset + 2);
      }
    }
    return null;
  }

  // Why the server (or this browser's canvas) would refuse a picture, or "" when it would not.
  function limitProblem(name, bytes, size) {
    const limits = state.limits;
    if (limits && bytes !== null && bytes > limits.max_upload_bytes) {
      return `${name} is ${formatBytes(bytes)}; the server accepts at most ${formatBytes(limits.max_upload_bytes)} for image and mask together (dfnet serve --max-upload-mb)`;
    }
    if (!size) return "";
    const [width, height] = size;
    const pixels = width * height;
    if (limits && pixels > limits.max_pixels) {
      return `${name} is ${width} × ${height} = ${count(pixels)} pixels; the server accepts at most ${count(limits.max_pixels)} (dfnet serve --max-pixels)`;
    }
    if (Math.max(width, height) > CANVAS_MAX_SIDE || pixels > CANVAS_MAX_AREA) {
      return `${name} is ${width} × ${height} pixels, more than this browser can paint on (at most ${CANVAS_MAX_SIDE} pixels a side)`;
    }
    return "";
  }

  async function decodeUrl(url) {
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
      return img;
    } catch (err) {
      URL.revokeObjectURL(url);
      return null;
    }
  }

  async function isTiff(blob) {
    const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
    const text = String.fromCharCode(...head);
    return text === "II*\0" || text === "MM\0*";
  }

  // The server's PNG of a picture browsers cannot decode (TIFF): the pixels it will inpaint.
  async function serverDisplay(blob, name) {
    const form = new FormData();
    form.append("image", blob, name);
    const response = await fetch("/api/display", { method: "POST", body: form });
    if (!response.ok) throw new Error(`${name}: ${(await errorMessage(response)).replace(/^The server refused the request/, "the server cannot read it")}`);
    return response.blob();
  }

  // A picture file -> { img, url } (url: what the page shows), or null after showing the error when
  // neither the browser nor, for TIFF, the server can decode it.
  async function decodeBlob(blob, name) {
    let url = URL.createObjectURL(blob);
    let img = await decodeUrl(url);
    if (!img && (await isTiff(blob))) {
      try {
        url = URL.createObjectURL(await serverDisplay(blob, name));
      } catch (err) {
        showError(err.message);
        return null;
      }
      img = await decodeUrl(url);
    }
    if (!img) {
      showError(`${name}: this browser cannot display that file; use a PNG, JPEG, WebP or TIFF image`);
      return null;
    }
    return { img, url };
  }

  // Whether the last result is still to be downloaded (opening another picture would discard it).
  function unsavedResult() {
    const step = lastInpaint();
    return Boolean(step && !step.downloaded);
  }

  async function loadImage(blob, name) {
    if (!blob) return;
    name = name || "image.png";
    if (state.request) {
      el.runInfo.textContent = `Not opening ${name}: DFNet is still working; wait for it or Cancel (Esc) first`;
      return;
    }
    const question = "The inpainted picture has not been downloaded. Open another picture and discard it and the undo history?";
    if (unsavedResult() && !window.confirm(question)) return;
    if (blob.type && !blob.type.startsWith("image/")) {
      showError(`${name} is not an image (${blob.type})`);
      return;
    }
    await modelReady;
    let problem = limitProblem(name, blob.size, await headerSize(blob));
    if (problem) {
      showError(problem);
      return;
    }
    const decoded = await decodeBlob(blob, name);
    if (!decoded) return;
    const { img, url } = decoded;
    problem = limitProblem(name, null, [img.naturalWidth, img.naturalHeight]);
    if (problem) {
      URL.revokeObjectURL(url);
      showError(problem);
      return;
    }
    clearError();
    forgetHistory();
    if (state.image) URL.revokeObjectURL(state.image.url);
    state.image = { blob, url, name, width: img.naturalWidth, height: img.naturalHeight };
    el.mask.width = img.naturalWidth;
    el.mask.height = img.naturalHeight;
    state.drawn = null; // resizing cleared the canvas
    el.imageInfo.textContent = `${name} · ${img.naturalWidth} × ${img.naturalHeight} px`;
    el.runInfo.textContent = "";
    el.dropHint.hidden = true;
    el.wrap.hidden = false;
    el.stage.classList.add("has-image");
    el.size.max = String(Math.max(64, Math.ceil(Math.max(img.naturalWidth, img.naturalHeight) / 3)));
    fit();
    setBrushSize(DEFAULT_BRUSH_SCREEN_PX / state.zoom);
    setView("edit");
    redraw();
  }

  function forgetHistory() {
    for (const op of [...state.ops, ...state.undone]) release(op);
    state.ops = [];
    state.undone = [];
  }

  // A mask picture -> a canvas at the image's size holding the hole in MASK_COLOUR (server's rule:
  // white = hole; a picture whose colour is uniform uses its alpha channel instead).
  async function loadMask(blob, name) {
    if (!state.image || state.request) return;
    const decoded = await decodeBlob(blob, name);
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
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(MASK_COLOUR.slice(i, i + 2), 16));
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

  // ---------- zoom and pan ----------
  function stageSize() {
    return [el.stage.clientWidth, el.stage.clientHeight];
  }
  function fitZoom() {
    const [width, height] = stageSize();
    const margin = 24;
    return Math.min(MAX_ZOOM, Math.max(0.01, Math.min((width - margin) / state.image.width, (height - margin) / state.image.height)));
  }
  const minZoom = () => Math.min(fitZoom(), 1) / 4;

  function fit() {
    if (!state.image) return;
    const [width, height] = stageSize();
    state.zoom = fitZoom();
    state.panX = (width - state.image.width * state.zoom) / 2;
    state.panY = (height - state.image.height * state.zoom) / 2;
    state.fitted = true;
    placePicture();
  }

  // Zoom to `zoom`, keeping the image point under the stage point (x, y) where it is (default: the centre).
  function zoomTo(zoom, x, y) {
    if (!state.image) return;
    const [width, height] = stageSize();
    const [cx, cy] = x === undefined ? [width / 2, height / 2] : [x, y];
    const next = Math.min(MAX_ZOOM, Math.max(minZoom(), zoom));
    const u = (cx - state.panX) / state.zoom;
    const v = (cy - state.panY) / state.zoom;
    state.zoom = next;
    state.panX = cx - u * next;
    state.panY = cy - v * next;
    state.fitted = false;
    placePicture();
  }

  // Keep at least a strip of the picture on the stage, however far it is panned.
  function clampPan() {
    const [width, height] = stageSize();
    const keep = 48;
    const w = state.image.width * state.zoom;
    const h = state.image.height * state.zoom;
    state.panX = Math.min(width - Math.min(keep, w), Math.max(Math.min(keep, w) - w, state.panX));
    state.panY = Math.min(height - Math.min(keep, h), Math.max(Math.min(keep, h) - h, state.panY));
  }

  function placePicture() {
    if (!state.image) return;
    clampPan();
    el.wrap.style.width = `${state.image.width * state.zoom}px`;
    el.wrap.style.height = `${state.image.height * state.zoom}px`;
    el.wrap.style.transform = `translate(${state.panX}px, ${state.panY}px)`;
    el.wrap.classList.toggle("pixelated", state.zoom >= 3);
    el.zoomValue.textContent = `${Math.round(state.zoom * 100)}%`;
    updateCursorSize();
  }

  function stagePoint(event) {
    const rect = el.stage.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  el.stage.addEventListener(
    "wheel",
    (event) => {
      if (!state.image) return;
      event.preventDefault();
      const step = event.deltaMode === 1 ? 0.05 : 0.002; // lines or pixels
      zoomTo(state.zoom * Math.exp(-event.deltaY * step), ...stagePoint(event));
    },
    { passive: false },
  );

  // ---------- painting ----------
  // A screen point -> image coordinates of the brush's centre: an odd brush is centred on the pixel
  // under the pointer (a 1-pixel brush covers exactly that pixel), an even one on the nearest pixel
  // corner, so that a brush of n pixels covers n pixel centres across, never n + 1.
  function toImagePoint(event, size) {
    const rect = el.mask.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * el.mask.width) / rect.width;
    const y = ((event.clientY - rect.top) * el.mask.height) / rect.height;
    return size % 2 ? [Math.floor(x) + 0.5, Math.floor(y) + 0.5] : [Math.round(x), Math.round(y)];
  }

  function setPen(op) {
    ctx.globalCompositeOperation = op.erase ? "destination-out" : "source-over";
    ctx.strokeStyle = MASK_COLOUR;
    ctx.fillStyle = MASK_COLOUR;
    ctx.lineWidth = op.size;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  // The part of the canvas anything was drawn on since it was last cleared: clearing a 12-megapixel
  // canvas whole costs more than the rest of showing a result.
  function touched(x0, y0, x1, y1) {
    const d = state.drawn;
    state.drawn = d ? [Math.min(d[0], x0), Math.min(d[1], y0), Math.max(d[2], x1), Math.max(d[3], y1)] : [x0, y0, x1, y1];
  }
  function clearDrawn() {
    const d = state.drawn;
    ctx.globalCompositeOperation = "source-over";
    if (d) ctx.clearRect(d[0], d[1], d[2] - d[0], d[3] - d[1]);
    state.drawn = null;
  }

  function drawDot(op, [x, y]) {
    const reach = op.size / 2 + 2;
    touched(x - reach, y - reach, x + reach, y + reach);
    setPen(op);
    ctx.beginPath();
    ctx.arc(x, y, op.size / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function drawSegment(op, [x0, y0], [x1, y1]) {
    const reach = op.size / 2 + 2;
    touched(Math.min(x0, x1) - reach, Math.min(y0, y1) - reach, Math.max(x0, x1) + reach, Math.max(y0, y1) + reach);
    setPen(op);
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
  }

  function apply(op) {
    if (op.type === "clear" || op.type === "mask") {
      clearDrawn();
      if (op.type === "mask") {
        ctx.drawImage(op.layer, 0, 0);
        touched(0, 0, el.mask.width, el.mask.height);
      }
      return;
    }
    drawDot(op, op.points[0]);
    for (let i = 1; i < op.points.length; i += 1) drawSegment(op, op.points[i - 1], op.points[i]);
  }

  // Show the current picture and replay the mask drawn on it.
  function redraw() {
    const picture = currentPicture();
    if (picture && el.baseImage.getAttribute("src") !== picture.url) el.baseImage.src = picture.url;
    clearDrawn();
    for (const op of maskOps()) apply(op);
    maskChanged();
  }

  // The rectangle [x0, y0, x1, y1) holding every painted pixel of the current mask, or null: only that
  // part of a large canvas needs reading.
  function maskBounds() {
    let bounds = null;
    for (const op of maskOps()) {
      if (op.type === "clear") bounds = null;
      else if (op.type === "mask") bounds = [0, 0, el.mask.width, el.mask.height];
      else {
        const reach = op.size / 2 + 2;
        bounds = bounds || [Infinity, Infinity, -Infinity, -Infinity];
        for (const [x, y] of op.points) {
          bounds = [Math.min(bounds[0], x - reach), Math.min(bounds[1], y - reach), Math.max(bounds[2], x + reach), Math.max(bounds[3], y + reach)];
        }
      }
    }
    if (!bounds) return null;
    const [x0, y0] = [Math.max(0, Math.floor(bounds[0])), Math.max(0, Math.floor(bounds[1]))];
    const [x1, y1] = [Math.min(el.mask.width, Math.ceil(bounds[2])), Math.min(el.mask.height, Math.ceil(bounds[3]))];
    return x1 > x0 && y1 > y0 ? [x0, y0, x1, y1] : null;
  }

  // The hole as the server will see it (alpha >= 128): {bounds, hole} with one byte per pixel of the bounds.
  function readHole() {
    const bounds = maskBounds();
    if (!bounds) return { bounds: null, hole: null };
    const [x0, y0, x1, y1] = bounds;
    const alpha = ctx.getImageData(x0, y0, x1 - x0, y1 - y0).data;
    const hole = new Uint8Array((x1 - x0) * (y1 - y0));
    for (let i = 0; i < hole.length; i += 1) hole[i] = alpha[4 * i + 3] >= 128 ? 1 : 0;
    return { bounds, hole };
  }

  // The share of pixels the server will see as hole, and the warnings that follow from it.
  function maskChanged() {
    let holes = 0;
    if (state.image) {
      const { hole } = readHole();
      if (hole) for (let i = 0; i < hole.length; i += 1) holes += hole[i];
    }
    state.holeRatio = state.image ? holes / (el.mask.width * el.mask.height) : 0;
    const large = state.holeRatio > HOLE_WARNING_RATIO;
    el.warning.hidden = !large;
    el.warning.textContent = large
      ? `The mask covers ${Math.round(100 * state.holeRatio)}% of the picture: DFNet fills small holes best. Undo, erase or make the brush smaller ([) if that was not meant.`
      : "";
    updateControls();
  }

  function push(op, alreadyDrawn = false) {
    for (const dropped of state.undone) release(dropped);
    state.ops.push(op);
    state.undone = [];
    if (alreadyDrawn) maskChanged();
    else redraw();
  }

  function undo() {
    if (!state.ops.length || state.stroke || state.request) return;
    const op = state.ops.pop();
    state.undone.push(op);
    if (op.type === "inpaint") el.runInfo.textContent = "Inpaint undone: the mask it used is back";
    if (state.view !== "edit") setView("edit"); // what is undone is in view
    redraw();
  }

  function redo() {
    if (!state.undone.length || state.stroke || state.request) return;
    const op = state.undone.pop();
    state.ops.push(op);
    redraw();
    setView(op.type === "inpaint" ? "result" : "edit");
  }

  function clearMask() {
    const ops = maskOps();
    if (!ops.length || ops[ops.length - 1].type === "clear" || state.request) return;
    push({ type: "clear" });
  }

  // Keep receiving a pointer's events when it leaves the stage (synthetic pointers cannot be captured).
  function capture(event) {
    try {
      el.stage.setPointerCapture(event.pointerId);
    } catch (err) {
      // not an active pointer: nothing to capture
    }
  }

  function startStroke(event) {
    if (state.request) {
      el.runInfo.textContent = "The mask is locked while DFNet works on it (Cancel to change it)";
      return;
    }
    if (state.view !== "edit") setView("edit"); // painting on a result continues editing it
    clearError();
    capture(event);
    const size = Number(el.size.value);
    const point = toImagePoint(event, size);
    state.stroke = { type: "stroke", erase: state.erasing, size, points: [point], pointerId: event.pointerId };
    drawDot(state.stroke, point);
  }

  function extendStroke(event) {
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      const point = toImagePoint(e, state.stroke.size);
      const points = state.stroke.points;
      const last = points[points.length - 1];
      if (last[0] === point[0] && last[1] === point[1]) continue;
      drawSegment(state.stroke, last, point);
      points.push(point);
    }
  }

  function endStroke() {
    if (!state.stroke) return;
    const op = state.stroke;
    state.stroke = null;
    delete op.pointerId;
    if (op.erase && state.holeRatio === 0) return; // erasing nothing changes nothing: no undo step
    push(op, true);
  }

  // A second finger turns a stroke into a pinch: the stroke so far is dropped.
  function abandonStroke() {
    if (!state.stroke) return;
    state.stroke = null;
    redraw();
  }

  function startPinch() {
    abandonStroke();
    const [a, b] = Array.from(state.pointers.values());
    state.pinch = {
      distance: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1,
      middle: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2],
      zoom: state.zoom,
      panX: state.panX,
      panY: state.panY,
    };
  }

  function movePinch() {
    const [a, b] = Array.from(state.pointers.values());
    const pinch = state.pinch;
    const zoom = Math.min(MAX_ZOOM, Math.max(minZoom(), (pinch.zoom * Math.hypot(a[0] - b[0], a[1] - b[1])) / pinch.distance));
    const middle = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    // The image point that was under the fingers' midpoint stays under it (pinch zoom plus two-finger pan).
    state.zoom = zoom;
    state.panX = middle[0] - ((pinch.middle[0] - pinch.panX) / pinch.zoom) * zoom;
    state.panY = middle[1] - ((pinch.middle[1] - pinch.panY) / pinch.zoom) * zoom;
    state.fitted = false;
    placePicture();
  }

  el.stage.addEventListener("pointerdown", (event) => {
    if (!state.image) return;
    const point = stagePoint(event);
    if (event.pointerType === "touch") {
      state.pointers.set(event.pointerId, point);
      if (state.pointers.size === 2) {
        startPinch();
        return;
      }
      if (state.pointers.size > 2) return;
    }
    if (event.button === 1 || (event.button === 0 && state.spaceDown)) {
      event.preventDefault();
      capture(event);
      state.pan = { x: point[0], y: point[1], panX: state.panX, panY: state.panY };
      return;
    }
    if (event.button !== 0) return;
    event.preventDefault();
    startStroke(event);
    moveCursor(event);
  });

  el.stage.addEventListener("pointermove", (event) => {
    const point = stagePoint(event);
    if (state.pointers.has(event.pointerId)) state.pointers.set(event.pointerId, point);
    moveCursor(event);
    if (state.pinch && state.pointers.size >= 2) movePinch();
    else if (state.pan) {
      state.panX = state.pan.panX + point[0] - state.pan.x;
      state.panY = state.pan.panY + point[1] - state.pan.y;
      state.fitted = false;
      placePicture();
    } else if (state.stroke && state.stroke.pointerId === event.pointerId) extendStroke(event);
  });

  function pointerEnded(event) {
    state.pointers.delete(event.pointerId);
    if (state.pointers.size < 2) state.pinch = null;
    state.pan = null;
    if (state.stroke && state.stroke.pointerId === event.pointerId) endStroke();
  }
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) el.stage.addEventListener(type, pointerEnded);
  el.stage.addEventListener("pointerleave", () => {
    el.cursor.hidden = true;
  });

  // ---------- brush cursor and size ----------
  function moveCursor(event) {
    // Shown on every tab: painting on the result or a detail view continues editing the current picture.
    const showBrush = state.image && !state.spaceDown && event.pointerType !== "touch";
    el.cursor.hidden = !showBrush;
    if (!showBrush) return;
    const [x, y] = stagePoint(event);
    el.cursor.style.left = `${x}px`;
    el.cursor.style.top = `${y}px`;
  }

  function updateCursorSize() {
    const size = Number(el.size.value);
    const onScreen = Math.max(2, size * state.zoom);
    el.cursor.style.width = `${onScreen}px`;
    el.cursor.style.height = `${onScreen}px`;
    el.cursor.classList.toggle("eraser", state.erasing);
    el.sizeValue.textContent = `${size} px`;
  }

  // "]" grows the brush by a quarter (at least 1 px); "[" is its exact inverse, so "]" then "[" returns.
  const largerBrush = (size) => size + Math.max(1, Math.floor(size / 4));
  function smallerBrush(size) {
    let smaller = size - 1;
    while (smaller > 1 && largerBrush(smaller - 1) >= size) smaller -= 1;
    return Math.max(1, smaller);
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

  // ---------- views: edit, result (before/after), alpha, raw ----------
  async function setView(view) {
    const step = lastInpaint();
    if (view !== "edit" && !step) return;
    if ((view === "alpha" || view === "raw") && !step[view]) {
      const fetched = await fetchDetail(step, view);
      if (!fetched || lastInpaint() !== step) return;
    }
    state.view = view;
    el.wrap.dataset.view = view;
    for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    const shown = view === "alpha" || view === "raw" ? step[view] : null;
    el.viewImage.hidden = !shown;
    if (shown) el.viewImage.src = shown.url;
    el.viewImage.alt = shown ? `${view} returned by DFNet` : "";
    el.compareControl.hidden = view !== "result";
    el.beforeImage.hidden = view !== "result";
    if (view === "result" && el.beforeImage.getAttribute("src") !== step.before.url) el.beforeImage.src = step.before.url;
    el.downloadWhat.textContent = { alpha: "alpha map", raw: "raw completion" }[view] || "result";
    el.cursor.hidden = true;
    updateCompare();
  }

  function updateCompare() {
    const split = Number(el.compare.value);
    el.beforeImage.style.clipPath = `inset(0 ${100 - split}% 0 0)`;
    el.compareHandle.style.left = `${split}%`;
    el.compareHandle.setAttribute("aria-valuenow", String(split));
    el.compareHandle.hidden = state.view !== "result";
  }

  // The handle on the picture moves the before/after split; a drag that starts on it never paints.
  function dragCompare(event) {
    const rect = el.wrap.getBoundingClientRect();
    const split = Math.min(100, Math.max(0, (100 * (event.clientX - rect.left)) / rect.width));
    el.compare.value = String(Math.round(split));
    updateCompare();
  }
  el.compareHandle.addEventListener("pointerdown", (event) => {
    event.stopPropagation();
    event.preventDefault();
    try {
      el.compareHandle.setPointerCapture(event.pointerId);
    } catch (err) {
      // a synthetic pointer: nothing to capture
    }
    el.compareHandle.dataset.dragging = String(event.pointerId);
    el.cursor.hidden = true;
  });
  el.compareHandle.addEventListener("pointermove", (event) => {
    event.stopPropagation();
    el.cursor.hidden = true;
    if (el.compareHandle.dataset.dragging === String(event.pointerId)) dragCompare(event);
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    el.compareHandle.addEventListener(type, (event) => {
      event.stopPropagation();
      delete el.compareHandle.dataset.dragging;
    });
  }

  // Holding "\" or the Original button shows the picture as it was opened, over whatever is in view.
  function showOriginal(shown) {
    const visible = shown && Boolean(state.image);
    if (visible) el.original.src = state.image.url;
    el.original.hidden = !visible;
  }
  el.showOriginal.addEventListener("pointerdown", () => showOriginal(true));
  for (const type of ["pointerup", "pointerleave", "pointercancel"]) el.showOriginal.addEventListener(type, () => showOriginal(false));

  // ---------- talking to the server ----------

  // ---------- the mask as a 1-bit PNG (white = hole), written here: small and quick at any size ----------
  const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i += 1) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }
  function pngChunk(type, data) {
    const chunk = new Uint8Array(12 + data.length);
    const view = new DataView(chunk.buffer);
    view.setUint32(0, data.length);
    for (let i = 0; i < 4; i += 1) chunk[4 + i] = type.charCodeAt(i);
    chunk.set(data, 8);
    view.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
    return chunk;
  }

  async function maskBlob() {
    const { width, height } = el.mask;
    const { bounds, hole } = readHole();
    const stride = 1 + Math.ceil(width / 8); // filter byte + packed bits, most significant bit first
    const rows = new Uint8Array(stride * height);
    if (bounds) {
      const [x0, y0, x1, y1] = bounds;
      const w = x1 - x0;
      for (let y = y0; y < y1; y += 1) {
        const row = y * stride + 1;
        const line = (y - y0) * w;
        for (let x = x0; x < x1; x += 1) if (hole[line + x - x0]) rows[row + (x >> 3)] |= 0x80 >> (x & 7);
      }
    }
    if (typeof CompressionStream !== "function") throw new Error("this browser cannot compress the mask (no CompressionStream)");
    const zlib = new Uint8Array(await new Response(new Blob([rows]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
    const header = new Uint8Array(13);
    const view = new DataView(header.buffer);
    view.setUint32(0, width);
    view.setUint32(4, height);
    header.set([1, 0, 0, 0, 0], 8); // bit depth 1, greyscale, deflate, no filter, not interlaced
    const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const parts = [signature, pngChunk("IHDR", header), pngChunk("IDAT", zlib), pngChunk("IEND", new Uint8Array(0))];
    return new Blob(parts, { type: "image/png" });
  }

  async function errorMessage(response) {
    let detail = "";
    try {
      detail = (await response.json()).detail;
      if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).slice(-1)[0] || ""}: ${d.msg}`).join("; ");
    } catch (err) {
      detail = response.statusText;
    }
    return `The server refused the request (${response.status}): ${detail || "no details"}`;
  }

  // POST one inpaint request while the page shows the elapsed time and a Cancel button.
  // Returns {blob, serverMs, seconds}, or null when it failed (error shown) or was cancelled.
  // options: {strategy, texture}, as chosen when the inpaint was asked for ("" / null: the server's default).
  async function send(picture, mask, returnFormat, options, label) {
    const controller = new AbortController();
    const started = performance.now();
    // Once a second: a page that redraws ten times a second while it waits used a sixth of a CPU core,
    // taken from the server when both run on one machine.
    const tick = () => {
      const seconds = Math.floor((performance.now() - started) / 1000);
      el.elapsed.textContent = `${seconds} s`;
      el.spinner.style.transform = `rotate(${seconds * 45}deg)`;
    };
    state.request = { controller, timer: setInterval(tick, 1000) };
    el.busyLabel.textContent = label;
    tick();
    setLocked(true);
    try {
      const form = new FormData();
      form.append("image", picture.blob, state.image.name);
      form.append("mask", mask, "mask.png");
      form.append("return", returnFormat);
      if (options.model) form.append("model", options.model);
      if (options.strategy) form.append("strategy", options.strategy);
      if (options.texture !== null) form.append("texture", String(options.texture));
      let response;
      try {
        response = await fetch("/api/inpaint", { method: "POST", body: form, signal: controller.signal });
      } catch (err) {
        if (err.name === "AbortError") throw err;
        throw new Error(`cannot reach the server (${err.message}); is dfnet serve still running?`);
      }
      if (!response.ok) throw new Error(await errorMessage(response));
      mark("headers", { serverMs: Number(response.headers.get("X-DFNet-Elapsed-Ms")) });
      const blob = await response.blob();
      mark("body");
      return {
        blob,
        serverMs: Number(response.headers.get("X-DFNet-Elapsed-Ms")),
        seconds: (performance.now() - started) / 1000,
      };
    } catch (err) {
      if (err.name === "AbortError") el.runInfo.textContent = `Cancelled after ${((performance.now() - started) / 1000).toFixed(1)} s`;
      else showError(err.message);
      return null;
    } finally {
      clearInterval(state.request.timer);
      state.request = null;
      setLocked(false);
    }
  }

  function cancel() {
    if (state.request) state.request.controller.abort();
  }

  function setLocked(locked) {
    el.busy.hidden = !locked;
    document.body.setAttribute("aria-busy", String(locked));
    el.stage.classList.toggle("locked", locked);
    el.wrap.classList.toggle("locked", locked);
    updateControls();
  }

  const runOptions = () => ({
    model: el.model.value,
    strategy: el.strategyLabel.hidden ? "" : el.strategy.value,
    texture: el.textureLabel.hidden ? null : el.texture.value,
  });

  // Performance marks of an inpaint's phases, for benchmarks/bench_web_page.py (click, mask encoded,
  // answer's headers with the server's time, answer's body, result shown).
  const mark = (name, detail) => performance.mark(`dfnet:${name}`, { detail });

  async function inpaint() {
    if (!canInpaint()) return;
    performance.clearMarks();
    mark("click");
    clearError();
    el.runInfo.textContent = "";
    let mask;
    try {
      mask = await maskBlob();
      mark("mask");
    } catch (err) {
      showError(err.message);
      return;
    }
    const before = currentPicture();
    const options = runOptions();
    const holeRatio = state.holeRatio;
    const answer = await send(before, mask, "image", options, "Inpainting…");
    if (!answer) return;
    const result = { blob: answer.blob, url: URL.createObjectURL(answer.blob) };
    push({ type: "inpaint", before, result, mask, options, alpha: null, raw: null });
    mark("pushed");
    el.runInfo.textContent = `Inpainted ${percent(holeRatio)} of the picture in ${answer.seconds.toFixed(2)} s (server ${(answer.serverMs / 1000).toFixed(2)} s)`;
    el.compare.value = "50";
    await setView("result");
    mark("view");
  }

  // The alpha map or raw completion of an inpaint, asked for when its tab is first opened.
  async function fetchDetail(step, part) {
    if (state.request) return false;
    clearError();
    const label = part === "alpha" ? "Computing the alpha map…" : "Computing the raw completion…";
    const answer = await send(step.before, step.mask, part, step.options, label);
    if (!answer) return false;
    step[part] = { blob: answer.blob, url: URL.createObjectURL(answer.blob) };
    return true;
  }

  let modelReady = Promise.resolve();
  async function showModel() {
    try {
      const response = await fetch("/api/model");
      if (!response.ok) return;
      const model = await response.json();
      state.limits = model.limits || null;
      state.models = Array.isArray(model.models) && model.models.length ? model.models : [{ id: "", ...model }];
      for (const served of state.models) if (served.id) el.model.add(new Option(served.id, served.id));
      el.modelLabel.hidden = state.models.length < 2;
      showChosenModel();
      const strategies = Array.isArray(model.strategies) ? model.strategies : [];
      if (strategies.length > 1) {
        for (const name of strategies) el.strategy.add(new Option(name, name, name === "auto", name === "auto"));
        el.strategyLabel.hidden = false;
      }
    } catch (err) {
      el.modelInfo.textContent = "";
    }
  }

  // The model chosen in the toolbar: its name and device in the status line, and the texture choice
  // when it has exemplar detail.
  function showChosenModel() {
    const model = state.models.find((m) => m.id === el.model.value) || state.models[0];
    if (!model) return;
    el.modelInfo.textContent = [model.name && `model: ${model.name}`, model.device && `on ${model.device}`].filter(Boolean).join(" ");
    el.textureLabel.hidden = !model.texture; // only a model with exemplar detail has the choice
  }

  // On phones the toolbar is one scrolling row: say on which side more controls are (a fade there).
  function showToolbarOverflow() {
    const bar = el.toolbar;
    const left = bar.scrollLeft > 1;
    const right = bar.scrollLeft + bar.clientWidth < bar.scrollWidth - 1;
    bar.dataset.more = left && right ? "both" : left ? "left" : right ? "right" : "";
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

  // What the tab in view shows: the result (in its own format), or the alpha map / raw completion.
  function downloadResult() {
    const step = lastInpaint();
    if (!step) return;
    const part = state.view === "alpha" || state.view === "raw" ? state.view : "result";
    if (part !== "result") {
      download(step[part].blob, `${stem(state.image.name)}-${part}.png`);
      return;
    }
    const type = step.result.blob.type.split(";")[0];
    download(step.result.blob, `${stem(state.image.name)}-inpainted.${EXTENSIONS[type] || "png"}`);
    step.downloaded = true;
  }

  // The mask being painted; right after an inpaint (nothing painted since) the mask that inpaint used.
  async function downloadMask() {
    if (!state.image) return;
    const step = lastInpaint();
    const used = step && !maskOps().length ? step.mask : null;
    try {
      download(used || (await maskBlob()), `${stem(state.image.name)}-mask.png`);
    } catch (err) {
      showError(err.message);
    }
  }

  // ---------- theme ----------
  const systemLight = window.matchMedia ? window.matchMedia("(prefers-color-scheme: light)") : null;
  function storedTheme() {
    try {
      return localStorage.getItem("dfnet-theme");
    } catch (err) {
      return null;
    }
  }
  function setTheme(theme) {
    document.documentElement.dataset.theme = theme;
    el.theme.title = theme === "light" ? "Switch to the dark theme" : "Switch to the light theme";
  }
  // The system's setting until the toggle is used; the toggle's choice is remembered.
  const followSystem = () => setTheme(storedTheme() || (systemLight && systemLight.matches ? "light" : "dark"));
  function toggleTheme() {
    const next = document.documentElement.dataset.theme === "light" ? "dark" : "light";
    try {
      localStorage.setItem("dfnet-theme", next);
    } catch (err) {
      // storage refused (private window): the choice lasts until the page is closed
    }
    setTheme(next);
  }
  if (systemLight && systemLight.addEventListener) systemLight.addEventListener("change", followSystem);

  // ---------- controls ----------
  const canInpaint = () => Boolean(state.image) && !state.request && state.holeRatio > 0;

  function updateControls() {
    const hasImage = Boolean(state.image);
    const busy = Boolean(state.request);
    const step = lastInpaint();
    el.openImage.disabled = busy;
    el.openMask.disabled = !hasImage || busy;
    el.undo.disabled = !state.ops.length || busy;
    el.redo.disabled = !state.undone.length || busy;
    el.clear.disabled = !maskOps().length || busy;
    el.inpaint.disabled = !canInpaint();
    el.inpaint.title = hasImage && state.holeRatio === 0 ? "Paint the area to fill first" : "Send image and mask to DFNet (Ctrl+Enter)";
    el.downloadMask.disabled = !hasImage;
    el.downloadResult.disabled = !step;
    el.showOriginal.disabled = !step;
    el.model.disabled = busy;
    for (const button of [el.zoomIn, el.zoomOut, el.zoomFit, el.zoomActual]) button.disabled = !hasImage;
    for (const tab of tabs) if (tab.dataset.view !== "edit") tab.disabled = !step || busy;
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
    if (file) loadMask(file, file.name);
  });
  el.brush.addEventListener("click", () => setEraser(false));
  el.eraser.addEventListener("click", () => setEraser(true));
  el.size.addEventListener("input", updateCursorSize);
  el.undo.addEventListener("click", undo);
  el.redo.addEventListener("click", redo);
  el.clear.addEventListener("click", clearMask);
  el.inpaint.addEventListener("click", inpaint);
  el.cancel.addEventListener("click", cancel);
  el.zoomIn.addEventListener("click", () => zoomTo(state.zoom * ZOOM_STEP));
  el.zoomOut.addEventListener("click", () => zoomTo(state.zoom / ZOOM_STEP));
  el.zoomFit.addEventListener("click", fit);
  el.zoomActual.addEventListener("click", () => zoomTo(1));
  el.theme.addEventListener("click", toggleTheme);
  el.compare.addEventListener("input", updateCompare);
  for (const tab of tabs) tab.addEventListener("click", () => setView(tab.dataset.view));
  el.downloadResult.addEventListener("click", downloadResult);
  el.downloadMask.addEventListener("click", downloadMask);
  el.shortcutsClose.addEventListener("click", () => toggleShortcuts(false));
  el.model.addEventListener("change", showChosenModel);

  // Keyboard focus goes back to the picture once a control has been used (a select or slider keeping it
  // would swallow the shortcuts, a button keeping it would be pressed again by Space).
  const focusStage = () => el.stage.focus({ preventScroll: true });
  document.addEventListener("change", (event) => {
    if (event.target.matches("select, input[type=range]")) focusStage();
  });
  document.addEventListener("click", (event) => {
    if (event.target.closest("button, input[type=range]")) focusStage();
  });

  // ---------- keyboard ----------
  // Keys a focused control needs for itself (a select's arrows and type-ahead, a slider's arrows); every
  // other shortcut works whatever has the focus.
  const SELECT_KEYS = ["arrowup", "arrowdown", "arrowleft", "arrowright", "home", "end", "pageup", "pagedown", "enter", " "];
  function ownKey(target, key, ctrl) {
    if (target instanceof HTMLInputElement && target.type === "text") return true;
    if (target instanceof HTMLInputElement && target.type === "range") return key.startsWith("arrow") || key === "home" || key === "end";
    if (target instanceof HTMLSelectElement) return SELECT_KEYS.includes(key) || (!ctrl && /^[a-z]$/.test(key));
    if (target instanceof HTMLButtonElement) return key === " " || key === "enter";
    return false;
  }
  function toggleShortcuts(shown) {
    el.shortcuts.hidden = !shown;
    if (!shown) focusStage();
  }
  document.addEventListener("keydown", (event) => {
    const key = event.key.toLowerCase();
    const ctrl = event.ctrlKey || event.metaKey;
    if (ownKey(event.target, key, ctrl)) return;
    let handled = true;
    if (key === " ") {
      state.spaceDown = Boolean(state.image);
      el.stage.classList.toggle("panning", state.spaceDown);
      el.cursor.hidden = true;
    } else if (key === "escape") {
      if (!el.shortcuts.hidden) toggleShortcuts(false);
      else cancel();
    } else if (key === "?") toggleShortcuts(el.shortcuts.hidden);
    else if (key === "\\" && !ctrl) showOriginal(true);
    else if (ctrl && key === "z" && event.shiftKey) redo();
    else if (ctrl && key === "z") undo();
    else if (ctrl && key === "y") redo();
    else if (ctrl && key === "enter") inpaint();
    else if (ctrl || event.altKey) handled = false;
    else if (key === "[") setBrushSize(smallerBrush(Number(el.size.value)));
    else if (key === "]") setBrushSize(largerBrush(Number(el.size.value)));
    else if (key === "b") setEraser(false);
    else if (key === "e") setEraser(true);
    else if (key === "+" || key === "=") zoomTo(state.zoom * ZOOM_STEP);
    else if (key === "-") zoomTo(state.zoom / ZOOM_STEP);
    else if (key === "0") fit();
    else if (key === "1") zoomTo(1);
    else handled = false;
    if (handled) event.preventDefault();
  });
  document.addEventListener("keyup", (event) => {
    if (event.key === "\\") showOriginal(false);
    if (event.key !== " ") return;
    state.spaceDown = false;
    el.stage.classList.remove("panning");
  });
  window.addEventListener("blur", () => {
    showOriginal(false);
    state.spaceDown = false;
    el.stage.classList.remove("panning");
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

  // The stage changes size with the window only (messages float over it, the status line and footer have
  // fixed heights): keep the picture fitted while the user has not zoomed, and on the stage otherwise.
  const relayout = () => (state.fitted ? fit() : placePicture());
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(relayout).observe(el.stage);
    new ResizeObserver(showToolbarOverflow).observe(el.toolbar);
  } else window.addEventListener("resize", () => (relayout(), showToolbarOverflow()));
  el.toolbar.addEventListener("scroll", showToolbarOverflow, { passive: true });
  followSystem();
  updateCursorSize();
  updateControls();
  modelReady = showModel().then(showToolbarOverflow);
})();
