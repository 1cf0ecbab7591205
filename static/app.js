// The pages' own small script (an ES module, loaded from this origin as the Content
// Security Policy requires). Everything here is an improvement: without JavaScript the
// pages say the same things, less conveniently.

// --- the tab's title during the countdown's warning ------------------------------------
// While the session is about to end (the countdown's "warning" and "final" phases), the
// tab's title shows the time left, for a user busy in another tab; in any other phase, and
// so once "Stay signed in" has extended the session, the page's own title is back.

const pageTitle = document.title;

function showTimeLeftInTitle() {
  const widget = document.getElementById("countdown-clock");
  if (!widget) return;
  const phase = widget.dataset.phase;
  const clock = widget.querySelector(".clock");
  if ((phase === "warning" || phase === "final") && clock) {
    document.title = `${clock.textContent.trim()} left · ${pageTitle}`;
  } else if (document.title !== pageTitle) {
    document.title = pageTitle;
  }
}

showTimeLeftInTitle();
// After every swap: the countdown replaces itself on each poll.
document.addEventListener("htmx:afterSettle", showTimeLeftInTitle);

// --- times in the reader's time zone -----------------------------------------------------
// The server writes every absolute time as <time datetime="...Z"> in UTC, its text saying
// "UTC" (quartapp/web/templating.py). Here each one is rewritten in the browser's own time
// zone: its text where it has data-local, its title (the exact time behind "5 min ago")
// where it has data-local-title; "datetime" reads date and time, "time" hours and minutes.
// Swapped-in content (the countdown, every second) is rewritten as it arrives, before the
// browser paints it: a MutationObserver's callback runs before the next frame.

const language = document.documentElement.lang || undefined;
const FORMATS = {
  datetime: new Intl.DateTimeFormat(language, {
    day: "2-digit", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23", timeZoneName: "short",
  }),
  time: new Intl.DateTimeFormat(language, {
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
  }),
};

function localize(element) {
  const moment = new Date(element.getAttribute("datetime"));
  if (Number.isNaN(moment.getTime())) return;
  const text = FORMATS[element.dataset.local];
  if (text) element.textContent = text.format(moment);
  const title = FORMATS[element.dataset.localTitle];
  if (title) element.title = title.format(moment);
}

const LOCAL_TIMES = "time[data-local], time[data-local-title]";

function localizeWithin(root) {
  if (root.matches && root.matches(LOCAL_TIMES)) localize(root);
  if (root.querySelectorAll) root.querySelectorAll(LOCAL_TIMES).forEach(localize);
}

localizeWithin(document);
new MutationObserver((changes) => {
  for (const change of changes) change.addedNodes.forEach(localizeWithin);
}).observe(document.body, { childList: true, subtree: true });

// --- long email addresses -------------------------------------------------------------------
// An address too long for its line breaks after its "@" and before its dots, not at
// whichever letter reached the edge: its two halves (up to the "@", and the domain) are
// each kept whole where the line has room (an inline block, static/app.css), and a half
// longer than the line breaks before a dot (a <wbr>). Without JavaScript it breaks where
// it must (overflow-wrap); it never runs off the screen either way. The text stays the
// same: neither the blocks nor <wbr> add characters.

function addressHalf(text) {
  const half = document.createElement("span");
  half.className = "address-part";
  const parts = text.split(/(?=\.)/).filter((part) => part);
  half.append(...parts.flatMap((part, i) => (i ? [document.createElement("wbr"), part] : [part])));
  return half;
}

function breakAddress(element) {
  if (element.childElementCount > 0) return; // done already, or more than plain text
  const text = element.textContent;
  const at = text.lastIndexOf("@");
  if (at < 1 || at === text.length - 1) return;
  element.replaceChildren(addressHalf(text.slice(0, at + 1)), addressHalf(text.slice(at + 1)));
}

function breakAddressesWithin(root) {
  if (root.matches && root.matches(".email")) breakAddress(root);
  if (root.querySelectorAll) root.querySelectorAll(".email").forEach(breakAddress);
}

breakAddressesWithin(document);
new MutationObserver((changes) => {
  for (const change of changes) change.addedNodes.forEach(breakAddressesWithin);
}).observe(document.body, { childList: true, subtree: true });

// --- copying recovery codes ------------------------------------------------------------
// A button with data-copy="<id>" copies that element's recovery codes (one per line) to
// the clipboard. It is hidden in the markup and shown here, so that without JavaScript (or
// without a clipboard) no button that does nothing is offered; "Download" works anyway.
// The result is said in the status next to it.

function setUpCopy(button) {
  if (!navigator.clipboard || button.dataset.copyReady) return;
  button.dataset.copyReady = "1";
  button.hidden = false;
  button.addEventListener("click", async () => {
    const list = document.getElementById(button.dataset.copy);
    const status = button.parentElement.querySelector(".copy-status");
    if (!list) return;
    const codes = [...list.querySelectorAll(".recovery-code")].map((code) => code.textContent.trim());
    try {
      await navigator.clipboard.writeText(codes.join("\n") + "\n");
      if (status) status.textContent = "Copied the recovery codes.";
    } catch {
      if (status) status.textContent = "Could not copy: select the codes, or download them.";
    }
  });
}

function setUpCopyWithin(root) {
  if (root.matches && root.matches("button[data-copy]")) setUpCopy(root);
  if (root.querySelectorAll) root.querySelectorAll("button[data-copy]").forEach(setUpCopy);
}

setUpCopyWithin(document);
new MutationObserver((changes) => {
  for (const change of changes) change.addedNodes.forEach(setUpCopyWithin);
}).observe(document.body, { childList: true, subtree: true });
