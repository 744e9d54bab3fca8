// The case list: start an analysis (drop, file picker or path), follow its steps, search.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function show(error) {
    const box = $("progress-error");
    box.textContent = error;
    box.hidden = false;
    $("progress-title").textContent = "The analysis did not finish.";
  }

  async function follow(job) {
    const steps = $("steps");
    for (;;) {
      steps.replaceChildren(
        ...job.steps.map((line) => {
          const item = document.createElement("li");
          item.textContent = line;
          return item;
        })
      );
      steps.scrollTop = steps.scrollHeight;
      $("progress-title").textContent =
        job.status === "queued" ? "Waiting for a free worker…" : `Analysing… ${job.seconds} s`;
      if (job.status === "done") {
        window.location.assign("/cases/" + encodeURIComponent(job.case_id));
        return;
      }
      if (job.status === "failed") {
        show(job.error || "the analysis failed");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
      const response = await fetch("/api/jobs/" + encodeURIComponent(job.id));
      if (!response.ok) {
        show("lost track of the analysis; reload the page");
        return;
      }
      job = await response.json();
    }
  }

  async function start(body) {
    $("progress").hidden = false;
    $("progress-error").hidden = true;
    $("steps").replaceChildren();
    $("progress-title").textContent = "Sending…";
    let response;
    try {
      response = await fetch("/api/analyses", { method: "POST", body });
    } catch (err) {
      show("the workbench cannot be reached: is `sleuth ui` still running?");
      return;
    }
    const answer = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) {
      show(answer.error || response.statusText);
      return;
    }
    await follow(answer);
  }

  function upload(file) {
    const body = new FormData();
    body.append("image", file, file.name);
    start(body);
  }

  const drop = $("upload");
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) upload(event.target.files[0]);
  });
  ["dragenter", "dragover"].forEach((name) =>
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    })
  );
  ["dragleave", "drop"].forEach((name) =>
    drop.addEventListener(name, () => drop.classList.remove("over"))
  );
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
  drop.addEventListener("submit", (event) => event.preventDefault());

  const byPath = $("by-path");
  if (byPath) {
    byPath.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = new FormData();
      body.append("path", $("path").value);
      start(body);
    });
  }

  const search = $("search");
  search.addEventListener("input", () => {
    const wanted = search.value.trim().toLowerCase();
    document.querySelectorAll("#cases tbody tr").forEach((row) => {
      row.hidden = wanted !== "" && !row.dataset.search.includes(wanted);
    });
  });
})();
