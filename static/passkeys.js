// Passkeys: the WebAuthn calls of the sign-in page and of the passkeys page (an ES module,
// loaded from this origin as the Content Security Policy requires). The server makes the
// options and checks the answers (quartapp/blueprints/passkeys.py); this only carries them
// between it and the browser. Without WebAuthn nothing here shows: the passkey button and
// the "Add a passkey" form stay hidden, and passwords work as before.

const supported = typeof window.PublicKeyCredential === "function"
  && typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

// Passkeys are for the site's public address (its host is the relying party id): on a page
// opened under another name, an IP address say, the browser would refuse every call, so
// nothing is offered there.
function atRelyingParty(element) {
  const rpId = element.dataset.rpId;
  const host = window.location.hostname;
  return Boolean(rpId) && (host === rpId || host.endsWith(`.${rpId}`));
}

function csrfToken() {
  try {
    return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  } catch {
    return "";
  }
}

// POST ``body`` as JSON; the answer's status and JSON (an error's is {code, message}).
async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRF-Token": csrfToken(),
    },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { message: "The server did not answer as expected. Try again." };
  }
  return { ok: response.ok, status: response.status, data };
}

// What to tell the user when the browser's own step ended without a passkey.
function browserProblem(error, adding) {
  if (error && error.name === "InvalidStateError" && adding) {
    return "This device already has a passkey for your account.";
  }
  if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
    return adding ? "No passkey was added." : "No passkey was used.";
  }
  return adding ? "The passkey could not be added. Try again." : "The passkey could not be used. Try again.";
}

// Tell the browser's password manager which of the account's passkeys are still valid
// (the WebAuthn Signals API), where it has it; harmless elsewhere.
function signalAccepted(accepted) {
  if (!accepted || !accepted.user_id) return;
  if (typeof PublicKeyCredential.signalAllAcceptedCredentials !== "function") return;
  PublicKeyCredential.signalAllAcceptedCredentials({
    rpId: accepted.rp_id,
    userId: accepted.user_id,
    allAcceptedCredentialIds: accepted.credential_ids,
  }).catch(() => {});
}

function signalUnknown(rpId, credentialId) {
  if (typeof PublicKeyCredential.signalUnknownCredential !== "function") return;
  PublicKeyCredential.signalUnknownCredential({ rpId, credentialId }).catch(() => {});
}

// --- the sign-in page ----------------------------------------------------------------

function safeNext(value) {
  return value && value.startsWith("/") && !value.startsWith("//") && !value.startsWith("/\\")
    ? value : null;
}

function setUpSignIn(box) {
  const button = box.querySelector("button");
  const problem = document.getElementById("passkey-sign-in-error");
  let waiting = null; // the autofill's pending request, ended before the button's own

  async function signIn(mediation) {
    const asked = await post(box.dataset.optionsUrl);
    if (!asked.ok) throw new Error(asked.data.message);
    const options = asked.data.public_key;
    const request = { publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) };
    if (mediation) {
      waiting = new AbortController();
      request.mediation = mediation;
      request.signal = waiting.signal;
    }
    const credential = await navigator.credentials.get(request);
    const answer = await post(box.dataset.signInUrl, { credential: credential.toJSON() });
    if (!answer.ok) {
      if (answer.data.code === "passkey_unknown") signalUnknown(options.rpId, credential.id);
      const refused = new Error(answer.data.message);
      refused.picked = true; // the user chose a passkey, and the server said no
      throw refused;
    }
    signalAccepted(answer.data.accepted);
    const next = document.querySelector("#sign-in-form input[name=next]");
    window.location.assign(safeNext(next && next.value) || box.dataset.homeUrl);
  }

  button.addEventListener("click", async () => {
    if (waiting) waiting.abort();
    problem.textContent = "";
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
    try {
      await signIn(null);
    } catch (error) {
      problem.textContent = error instanceof DOMException ? browserProblem(error, false) : error.message;
      button.removeAttribute("aria-busy");
      button.disabled = false;
      startAutofill();
    }
  });

  // The browser's passkey autofill on the email field (autocomplete="username webauthn"),
  // where it is offered: a request that waits until the user picks a passkey there.
  async function startAutofill() {
    if (typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    try {
      await signIn("conditional");
    } catch (error) {
      // Only the server's answer to a passkey the user picked is news to them; the
      // browser's refusals (the button took over) and a request made on their behalf as
      // the page loaded (no challenge now, the network away) are not.
      if (error && error.picked) problem.textContent = error.message;
    }
  }

  box.hidden = false;
  startAutofill();
}

// --- the passkeys page ---------------------------------------------------------------

function setUpManage() {
  const list = document.querySelector(".passkey-list[data-user-id]");
  if (list) {
    signalAccepted({
      rp_id: list.dataset.rpId,
      user_id: list.dataset.userId,
      credential_ids: list.dataset.credentialIds.split(" ").filter(Boolean),
    });
  }

  const form = document.getElementById("passkey-add-form");
  if (!atRelyingParty(form)) return;
  const problem = document.getElementById("passkey-add-error");
  const button = form.querySelector("button[type=submit]");
  const password = form.elements.current_password;
  form.hidden = false;
  document.getElementById("passkey-unsupported").hidden = true;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    password.removeAttribute("aria-invalid");
    if (!password.value) {
      problem.textContent = "Enter your current password.";
      password.setAttribute("aria-invalid", "true");
      password.focus();
      return;
    }
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
    try {
      const asked = await post(form.dataset.optionsUrl, { current_password: password.value });
      if (!asked.ok) {
        const fields = asked.data.fields || {};
        if (fields.current_password) {
          password.setAttribute("aria-invalid", "true");
          throw new Error(fields.current_password);
        }
        throw new Error(asked.data.message);
      }
      let credential;
      try {
        credential = await navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(asked.data.public_key),
        });
      } catch (error) {
        throw new Error(browserProblem(error, true));
      }
      const added = await post(form.dataset.registerUrl, {
        credential: credential.toJSON(),
        name: form.elements.name.value,
      });
      if (!added.ok) throw new Error(added.data.message);
      window.location.assign(form.dataset.doneUrl);
    } catch (error) {
      problem.textContent = error.message;
      password.value = "";
      password.focus();
      button.removeAttribute("aria-busy");
      button.disabled = false;
    }
  });

  // Removing: the same form, sent as JSON, so the browser can be told the passkey is gone.
  for (const remove of document.querySelectorAll("form.passkey-remove")) {
    remove.addEventListener("submit", async (event) => {
      event.preventDefault();
      const done = await post(remove.action);
      if (!done.ok) {
        const alert = document.getElementById("alerts");
        if (alert) alert.textContent = done.data.message;
        return;
      }
      signalUnknown(done.data.accepted.rp_id, done.data.credential_id);
      signalAccepted(done.data.accepted);
      const page = new URL(window.location.href);
      page.search = "?removed=1";
      window.location.assign(page.pathname + page.search);
    });
  }
}

// --- the offer after a password sign-in ------------------------------------------------
// Where the browser can (Chrome and Safari's conditional create), a passkey is added
// without a dialog right after a password sign-in, when the browser's password manager
// filled the password; the server gives such options only in the first minutes of a
// session signed in with a password, to an account without passkeys. Once per session.

async function offerPasskey(box) {
  const tried = `quartapp-passkey-offer-${box.dataset.session}`;
  try {
    if (window.sessionStorage.getItem(tried)) return;
    window.sessionStorage.setItem(tried, "1");
  } catch {
    return; // no storage: no way to ask only once
  }
  if (typeof PublicKeyCredential.getClientCapabilities !== "function") return;
  const capabilities = await PublicKeyCredential.getClientCapabilities();
  if (!capabilities.conditionalCreate) return;
  const asked = await post(box.dataset.optionsUrl, { mediation: "conditional" });
  if (!asked.ok) return; // the account has passkeys, or the sign-in is not fresh
  let credential;
  try {
    credential = await navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(asked.data.public_key),
      mediation: "conditional",
    });
  } catch {
    return; // the browser chose not to: nothing to say
  }
  const added = await post(box.dataset.registerUrl, { credential: credential.toJSON() });
  if (!added.ok) return;
  box.textContent = "A passkey was added to your account: next time, sign in with it.";
  box.hidden = false;
}

if (supported) {
  const offer = document.getElementById("passkey-offer");
  if (offer && atRelyingParty(offer)) offerPasskey(offer).catch(() => {});
  const signInBox = document.getElementById("passkey-sign-in");
  if (signInBox && atRelyingParty(signInBox)) setUpSignIn(signInBox);
  if (document.querySelector("[data-passkeys=manage]")) setUpManage();
}
