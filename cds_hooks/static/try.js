// The try page: load or paste a hook request, send it to the real service, show the cards the
// server renders, and send the clinician's choices to the real feedback endpoint.
"use strict";

const JSON_HEADERS = { "Content-Type": "application/json" };
const requestBox = document.getElementById("request");
const serviceSelect = document.getElementById("service");
const results = document.getElementById("cards");
const status = document.getElementById("status");
let sentTo = null;

async function problem(response) {
  try {
    const body = await response.json();
    return body.issue?.[0]?.diagnostics ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function load(url) {
  status.textContent = "Loading…";
  const response = await fetch(url);
  if (!response.ok) {
    status.textContent = `Could not load: ${await problem(response)}`;
    return;
  }
  const body = await response.json();
  requestBox.value = JSON.stringify(body, null, 2);
  const match = [...serviceSelect.options].find((o) => o.dataset.hook === body.hook);
  if (match) serviceSelect.value = match.value;
  status.textContent = "Request loaded: press Send.";
}

async function send(event) {
  event.preventDefault();
  try {
    JSON.parse(requestBox.value);
  } catch (error) {
    status.textContent = `The request is not valid JSON: ${error.message}`;
    return;
  }
  sentTo = serviceSelect.value;
  status.textContent = "Sending…";
  const response = await fetch(`/cds-services/${encodeURIComponent(sentTo)}`, {
    method: "POST", headers: JSON_HEADERS, body: requestBox.value,
  });
  if (!response.ok) {
    results.replaceChildren();
    status.textContent = `The service answered ${response.status}: ${await problem(response)}`;
    return;
  }
  const answer = await response.json();
  const rendered = await fetch("/try/cards", {
    method: "POST", headers: JSON_HEADERS, body: JSON.stringify(answer),
  });
  results.innerHTML = await rendered.text(); // rendered and escaped by the server
  status.textContent = `The service answered with ${answer.cards.length} card(s).`;
}

async function feedback(card, item) {
  const body = { feedback: [{ card: card.dataset.card, outcomeTimestamp: new Date().toISOString(), ...item }] };
  const response = await fetch(`/cds-services/${encodeURIComponent(sentTo)}/feedback`, {
    method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body),
  });
  const message = response.ok ? "Feedback stored." : `Feedback not stored: ${await problem(response)}`;
  card.querySelector(".feedback-status").textContent = message;
}

results.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-suggestion]");
  if (!button) return;
  const card = button.closest("[data-card]");
  card.querySelectorAll("button[data-suggestion]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
  feedback(card, { outcome: "accepted", acceptedSuggestions: [{ id: button.dataset.suggestion }] });
});

results.addEventListener("submit", (event) => {
  const form = event.target.closest("form.override");
  if (!form) return;
  event.preventDefault();
  const option = form.elements.reason.selectedOptions[0];
  const card = form.closest("[data-card]");
  if (!option || !option.value) {
    card.querySelector(".feedback-status").textContent = "Choose an override reason first.";
    return;
  }
  const overrideReason = {
    reason: { system: option.dataset.system, code: option.dataset.code, display: option.textContent },
  };
  const comment = form.elements.comment.value.trim();
  if (comment) overrideReason.userComment = comment;
  feedback(card, { outcome: "overridden", overrideReason });
});

document.getElementById("load-example").addEventListener("click", () =>
  load(`/try/examples/${encodeURIComponent(document.getElementById("example").value)}`));
document.getElementById("load-patient").addEventListener("click", () =>
  load(`/try/synthea/${encodeURIComponent(document.getElementById("patient").value)}`));
document.getElementById("try-form").addEventListener("submit", send);
