// The case page: pan and zoom, heatmap overlays with opacity, side by side, magnifier,
// regions and evidence boxes, tabs, and the follow-up box. Text from the case is only
// ever set with textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const data = JSON.parse($("case-data").textContent);
  const view = data.view;
  const W = view.width;
  const H = view.height;
  const stage = $("stage");
  const side = $("stage-side");
  const canvases = [$("canvas"), $("canvas-side")];
  const overlays = [$("overlay"), $("overlay-side")];
  const marks = $("marks");
  const t = { scale: 1, x: 0, y: 0 };

  // -- the image and its transform ------------------------------------------------
  $("photo").style.width = W + "px";
  $("photo").style.height = H + "px";
  $("blank").style.width = W + "px";
  $("blank").style.height = H + "px";
  marks.style.width = W + "px";
  marks.style.height = H + "px";

  function apply() {
    const transform = `translate(${t.x}px, ${t.y}px) scale(${t.scale})`;
    canvases.forEach((c) => (c.style.transform = transform));
    // outlines and numbers keep their screen size whatever the zoom
    marks.style.setProperty("--line", String(2 / t.scale));
    marks.style.setProperty("--hover-line", String(3 / t.scale));
    marks.style.setProperty("--label", 16 / t.scale + "px");
  }

  function fit() {
    const box = stage.getBoundingClientRect();
    t.scale = Math.min(box.width / W, box.height / H);
    t.x = (box.width - W * t.scale) / 2;
    t.y = (box.height - H * t.scale) / 2;
    apply();
  }

  function zoomAt(factor, cx, cy) {
    const next = Math.min(Math.max(t.scale * factor, 0.02), 40);
    t.x = cx - ((cx - t.x) * next) / t.scale;
    t.y = cy - ((cy - t.y) * next) / t.scale;
    t.scale = next;
    apply();
  }

  [stage, side].forEach((s) => {
    s.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = s.getBoundingClientRect();
      zoomAt(event.deltaY < 0 ? 1.2 : 1 / 1.2, event.clientX - box.left, event.clientY - box.top);
    });
    let drag = null;
    s.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, tx: t.x, ty: t.y };
      s.setPointerCapture(event.pointerId);
      s.classList.add("dragging");
    });
    s.addEventListener("pointermove", (event) => {
      if (drag) {
        t.x = drag.tx + event.clientX - drag.x;
        t.y = drag.ty + event.clientY - drag.y;
        apply();
      }
    });
    s.addEventListener("pointerup", () => {
      drag = null;
      s.classList.remove("dragging");
    });
  });
  const centre = () => {
    const box = stage.getBoundingClientRect();
    return [box.width / 2, box.height / 2];
  };
  $("zoom-in").addEventListener("click", () => zoomAt(1.5, ...centre()));
  $("zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, ...centre()));
  $("zoom-fit").addEventListener("click", fit);
  window.addEventListener("resize", fit);

  // -- regions and evidence boxes --------------------------------------------------
  function rect(box, cls) {
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", box[0]);
    r.setAttribute("y", box[1]);
    r.setAttribute("width", box[2] - box[0]);
    r.setAttribute("height", box[3] - box[1]);
    r.setAttribute("class", cls);
    return r;
  }
  (view.regions || []).forEach((box, i) => {
    marks.appendChild(rect(box, "region"));
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", box[0]);
    label.setAttribute("y", box[1]);
    label.setAttribute("dominant-baseline", "hanging");
    label.setAttribute("class", "region-number");
    label.textContent = String(i + 1);
    marks.appendChild(label);
  });
  $("show-regions").addEventListener("change", (event) =>
    marks.classList.toggle("hidden-regions", !event.target.checked)
  );

  const cards = {};
  [...view.evidence, ...view.answers.flatMap((a) => a.evidence)].forEach((e) => (cards[e.id] = e));
  document.querySelectorAll("[data-evidence]").forEach((card) => {
    const item = cards[card.dataset.evidence];
    card.addEventListener("mouseenter", () => {
      card.classList.add("highlight");
      const boxes = item.boxes.length ? item.boxes : item.region ? [item.region] : [];
      boxes.forEach((b) => marks.appendChild(rect(b, "hover")));
    });
    card.addEventListener("mouseleave", () => {
      card.classList.remove("highlight");
      marks.querySelectorAll(".hover").forEach((r) => r.remove());
    });
  });

  // -- heatmap layers ----------------------------------------------------------------
  const select = $("layer");
  const layers = {};
  Object.values(cards).forEach((e) =>
    e.layers
      .filter((layer) => layer.placement && !layer.missing)
      .forEach((layer) => {
        layers[layer.name] = layer;
        const option = document.createElement("option");
        option.value = layer.name;
        option.textContent = `${e.id} · ${layer.name}`;
        select.appendChild(option);
      })
  );
  const stops = data.legend.map(([v, colour]) => `${colour} ${Math.round(v * 100)}%`);
  $("ramp").style.background = `linear-gradient(to right, ${stops.join(", ")})`;

  function showLayer(name) {
    const layer = layers[name];
    select.value = layer ? name : "";
    overlays.forEach((img) => {
      img.hidden = !layer;
      if (!layer) return;
      const [left, top, width, height] = layer.placement;
      img.style.left = left * W + "px";
      img.style.top = top * H + "px";
      img.style.width = width * W + "px";
      img.style.height = height * H + "px";
      img.src = data.overlays[name];
    });
    $("legend").hidden = !layer;
    $("layer-description").textContent = layer ? layer.description : "";
    setOpacity();
  }
  function setOpacity() {
    const value = Number($("opacity").value) / 100;
    overlays[0].style.opacity = String(value);
    overlays[1].style.opacity = "1";
  }
  select.addEventListener("change", () => showLayer(select.value));
  $("opacity").addEventListener("input", setOpacity);
  document.querySelectorAll(".show-layer").forEach((button) =>
    button.addEventListener("click", () => showLayer(button.dataset.layer))
  );
  $("side-by-side").addEventListener("change", (event) => {
    side.hidden = !event.target.checked;
    fit();
  });

  // -- magnifier -----------------------------------------------------------------------
  const loupe = $("loupe");
  const ZOOM = 3;
  loupe.style.backgroundImage = `url("${$("photo").src}")`;
  stage.addEventListener("pointermove", (event) => {
    if (!$("magnifier").checked) return;
    const box = stage.getBoundingClientRect();
    const px = (event.clientX - box.left - t.x) / t.scale;
    const py = (event.clientY - box.top - t.y) / t.scale;
    const size = t.scale * ZOOM;
    loupe.hidden = false;
    loupe.style.left = event.clientX + 20 + "px";
    loupe.style.top = event.clientY + 20 + "px";
    loupe.style.backgroundSize = `${W * size}px ${H * size}px`;
    loupe.style.backgroundPosition = `${110 - px * size}px ${110 - py * size}px`;
  });
  stage.addEventListener("pointerleave", () => (loupe.hidden = true));
  $("magnifier").addEventListener("change", (event) => {
    if (!event.target.checked) loupe.hidden = true;
  });

  // -- tabs and citations ----------------------------------------------------------------
  function openTab(panelId) {
    document.querySelectorAll(".tab").forEach((tab) => {
      tab.classList.toggle("active", tab.dataset.tab === panelId);
      $(tab.dataset.tab).hidden = tab.dataset.tab !== panelId;
    });
  }
  document.querySelectorAll(".tab").forEach((tab) =>
    tab.addEventListener("click", () => openTab(tab.dataset.tab))
  );
  document.querySelectorAll("a.cite").forEach((link) =>
    link.addEventListener("click", (event) => {
      const target = $("ev-" + link.dataset.cite);
      if (!target) return;
      event.preventDefault();
      openTab(target.closest(".panel").id);
      target.scrollIntoView({ block: "nearest" });
      target.classList.add("highlight");
      setTimeout(() => target.classList.remove("highlight"), 1500);
    })
  );
  if (window.location.hash === "#thread") openTab("thread-panel");

  // -- follow-up questions -----------------------------------------------------------------
  const status = $("ask-status");
  const ask = $("ask");
  ask?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) {
      status.textContent = "Type a question first.";
      return;
    }
    status.textContent = "Asking…";
    let response = await fetch(`/api/cases/${encodeURIComponent(view.case_id)}/questions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question }),
    });
    let job = await response.json().catch(() => ({ error: response.statusText }));
    while (response.ok && (job.status === "queued" || job.status === "running")) {
      status.textContent = `Working… ${job.steps.length ? job.steps[job.steps.length - 1] : ""}`;
      await new Promise((resolve) => setTimeout(resolve, 400));
      response = await fetch("/api/jobs/" + encodeURIComponent(job.id));
      job = await response.json().catch(() => ({ error: response.statusText }));
    }
    if (!response.ok || job.status === "failed") {
      status.textContent = job.error || "the question could not be answered";
      return;
    }
    window.location.hash = "thread";
    window.location.reload();
  });

  if ($("photo").complete) fit();
  else $("photo").addEventListener("load", fit);
  fit();
})();
