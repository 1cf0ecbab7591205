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
