// The privacy centre: plain JavaScript, no build step, same-origin calls only.
// The token arrives in the URL fragment (never sent to a server), moves to sessionStorage,
// and is sent only as "Authorization: Bearer" to this gateway's /v1/me routes.
"use strict";

(function () {
  const KEY = "privrec.token";
  const PURPOSES = { analytics: "Analytics", personalization: "Personalisation", advertising: "Advertising" };
  const STAGES = { stream: "Your plays and choices in our live systems", trainer: "What our model learned from you", cache: "Your recommendations and settings" };
  const $ = (id) => document.getElementById(id);

  function takeToken() {
    const hash = window.location.hash.replace(/^#/, "");
    const params = new URLSearchParams(hash);
    const token = params.get("token");
    if (token) {
      sessionStorage.setItem(KEY, token);
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(KEY);
  }

  const token = takeToken();

  function say(text) { $("status").textContent = text; }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      $("signed-out").hidden = false;
      throw new Error("Your link has expired. Open the privacy centre again from your app.");
    }
    return response;
  }

  async function json(method, path, body) {
    const response = await api(method, path, body);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reason = data.error || response.status;
      throw new Error("That did not work (" + reason + "). Please try again.");
    }
    return data;
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function when(ms) { return ms ? new Date(ms).toLocaleString() : ""; }

  // -- consent -------------------------------------------------------------------------------
  function showConsent(consent) {
    const box = $("consent");
    box.replaceChildren();
    // Every purpose the gateway names, in its order; a label here is optional (the name stands in).
    Object.entries(consent.purposes).forEach(([name, p]) => {
      const label = PURPOSES[name] || name;
      const row = el("div", { class: "switch" });
      const input = el("input", { type: "checkbox", role: "switch", id: "consent-" + name, "aria-describedby": "consent-" + name + "-why" });
      input.checked = p.granted;
      input.addEventListener("change", () => changeConsent(name, input));
      row.append(input, el("label", { for: "consent-" + name }, label), el("p", { id: "consent-" + name + "-why" }, p.description));
      box.append(row);
    });
    const note = consent.recorded ? "Last changed " + when(consent.updated_at) + "." : "You have not chosen yet: everything is off until you do.";
    box.append(el("p", { class: "note", id: "consent-updated" }, note));
  }

  async function changeConsent(name, input) {
    input.disabled = true;
    try {
      const consent = await json("PUT", "/v1/me/consent", { [name]: input.checked });
      showConsent(consent);
      say((PURPOSES[name] || name) + (input.checked ? " allowed." : " turned off."));
    } catch (e) {
      input.checked = !input.checked;
      say(e.message);
    } finally {
      input.disabled = false;
    }
  }

  // -- recommendations -----------------------------------------------------------------------
  async function loadRecs() {
    const data = await json("GET", "/v1/me/recommendations?n=10");
    const list = $("recs");
    list.replaceChildren();
    const items = data.items || [];
    $("recs-source").textContent = data.personalized
      ? "Picked for you from what you watched."
      : "Not personalised: popular titles, the same for everyone.";
    list.dataset.personalized = String(Boolean(data.personalized));
    if (!items.length) list.append(el("li", {}, "Nothing to recommend yet."));
    items.forEach((item) => {
      const li = el("li", { "data-content-id": item.content_id });
      const text = el("span");
      text.append(el("span", { class: "title" }, item.content_id));
      if (item.because && item.because.length) {
        text.append(el("span", { class: "because" }, "Because you watched " + item.because.join(", ")));
      }
      const hide = el("button", { type: "button", class: "secondary", "data-hide": item.content_id, "aria-label": "Hide " + item.content_id }, "Hide");
      hide.addEventListener("click", () => changeControls({ hide: [item.content_id] }, item.content_id + " hidden: it will not be recommended again."));
      li.append(text, hide);
      list.append(li);
    });
  }

  // -- controls ------------------------------------------------------------------------------
  function showControls(controls) {
    const radio = $("level-" + controls.personalization);
    if (radio) radio.checked = true;
    const list = $("hidden");
    list.replaceChildren();
    $("hidden-none").hidden = controls.hidden.length > 0;
    controls.hidden.forEach((cid) => {
      const li = el("li", { "data-content-id": cid }, cid + " ");
      const show = el("button", { type: "button", class: "secondary", "aria-label": "Show " + cid + " again" }, "Show again");
      show.addEventListener("click", () => changeControls({ unhide: [cid] }, cid + " can be recommended again."));
      li.append(show);
      list.append(li);
    });
  }

  async function changeControls(change, message) {
    try {
      showControls(await json("PUT", "/v1/me/controls", change));
      await loadRecs();
      say(message);
    } catch (e) {
      say(e.message);
    }
  }

  // -- export --------------------------------------------------------------------------------
  async function download() {
    const button = $("download");
    button.disabled = true;
    say("Collecting your data… this can take a few seconds.");
    try {
      const response = await api("POST", "/v1/me/export");
      if (!response.ok) throw new Error("The download did not work (" + response.status + "). Please try again.");
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: "privrec-export.json" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say("Your data is downloaded (privrec-export.json).");
    } catch (e) {
      say(e.message);
    } finally {
      button.disabled = false;
    }
  }

  // -- erasure -------------------------------------------------------------------------------
  function showErasure(status) {
    $("erasure").hidden = false;
    const list = $("erasure-stages");
    list.replaceChildren();
    Object.entries(STAGES).forEach(([stage, label]) => {
      const at = status.stages[stage];
      const li = el("li", { "data-stage": stage, class: at ? "done" : "" }, label + ": " + (at ? "deleted " + when(at) : "in progress…"));
      list.append(li);
    });
    const receipt = $("receipt");
    if (!status.receipt) return;
    receipt.hidden = false;
    receipt.replaceChildren(
      el("h4", {}, "Receipt"),
      el("p", { id: "receipt-done" }, "Deletion complete on " + when(status.receipt.completed_at) + ". Request " + status.receipt.request_id + "."),
      el("p", {}, "What remains for a while, by design:"),
    );
    const remains = el("ul");
    status.receipt.remains.forEach((r) => {
      remains.append(el("li", {}, r.what + " (until " + (r.until ? when(r.until) : r.rule) + ")"));
    });
    receipt.append(remains);
  }

  async function erase() {
    $("erase-confirm-box").hidden = true;
    $("erase").disabled = true;
    try {
      const accepted = await json("POST", "/v1/me/erasure");
      say("Deletion requested. This page shows each part as it is done.");
      showErasure({ stages: {}, receipt: null });
      for (let i = 0; i < 300; i++) {
        const status = await json("GET", "/v1/me/erasure/" + accepted.request_id);
        showErasure(status);
        if (status.complete) {
          await refresh();  // show what is left: no choices recorded, no personal recommendations
          say("Your data is deleted. Your receipt is below.");
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 2000)); // 30 polls a minute: half the privacy rate limit
      }
      say("Deletion is taking longer than usual. Come back later to see your receipt.");
    } catch (e) {
      say(e.message);
      $("erase").disabled = false;
    }
  }

  // -- start ---------------------------------------------------------------------------------
  function wire() {
    document.querySelectorAll("input[name=level]").forEach((radio) => {
      radio.addEventListener("change", () => changeControls({ personalization: radio.value }, "Personalisation set to " + radio.value + "."));
    });
    $("recs-refresh").addEventListener("click", () => loadRecs().catch((e) => say(e.message)));
    $("download").addEventListener("click", download);
    $("erase").addEventListener("click", () => { $("erase-confirm-box").hidden = false; $("erase-confirm").focus(); });
    $("erase-cancel").addEventListener("click", () => { $("erase-confirm-box").hidden = true; $("erase").focus(); });
    $("erase-confirm").addEventListener("click", erase);
  }

  async function refresh() {
    const [consent, controls] = await Promise.all([json("GET", "/v1/me/consent"), json("GET", "/v1/me/controls")]);
    showConsent(consent);
    showControls(controls);
    await loadRecs();
  }

  async function start() {
    wire();
    if (!token) {
      $("signed-out").hidden = false;
      say("No sign-in link: open this page from your app.");
      return;
    }
    try {
      await refresh();
      document.body.dataset.ready = "true";
    } catch (e) {
      say(e.message);
    }
  }

  start();
})();
