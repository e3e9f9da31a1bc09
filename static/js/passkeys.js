// Passkeys on the account pages. A form marked data-passkey="create" or "get" asks its
// data-options-url for WebAuthn options, lets the browser create or use a passkey, puts the
// answer (JSON) in its hidden "passkey" field and submits: the server checks everything.
// A static file, no inline script, so it runs under a Content-Security-Policy of 'self'. What it
// says comes from the status line's data attributes, which the page translates.
(() => {
  "use strict";

  const toBytes = (b64url) => {
    const base64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  };
  const toB64url = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  // The browser's own JSON helpers where it has them (WebAuthn Level 3), else the same by hand.
  const creationOptions = (json) => {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: toBytes(json.challenge),
      user: { ...json.user, id: toBytes(json.user.id) },
      excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
    };
  };
  const requestOptions = (json) => {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: toBytes(json.challenge),
      allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
    };
  };
  const credentialJSON = (credential) => {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const r = credential.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  };

  const fetchOptions = async (form) => {
    const csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
    const answer = await fetch(form.dataset.optionsUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf ? csrf.value : "", Accept: "application/json" },
    });
    if (!answer.ok) throw new Error("options");
    return answer.json();
  };

  // `what` names a data attribute of the status line: waiting, checking, cancelled or failed.
  const say = (form, what) => {
    const status = form.querySelector("[data-passkey-status]");
    if (status) status.textContent = status.dataset[what] || "";
  };

  const usePasskey = async (form, button) => {
    button.disabled = true;
    say(form, "waiting");
    try {
      const options = await fetchOptions(form);
      const credential = form.dataset.passkey === "create"
        ? await navigator.credentials.create({ publicKey: creationOptions(options) })
        : await navigator.credentials.get({ publicKey: requestOptions(options) });
      form.querySelector("input[name=passkey]").value = JSON.stringify(credentialJSON(credential));
      say(form, "checking");
      form.submit();
    } catch (error) {
      button.disabled = false;
      say(form, error && error.name === "NotAllowedError" ? "cancelled" : "failed");
    }
  };

  const supported = window.PublicKeyCredential && navigator.credentials && window.isSecureContext;
  document.querySelectorAll("form[data-passkey]").forEach((form) => {
    if (!supported) return;
    form.hidden = false;
    const note = form.nextElementSibling;
    if (note && note.hasAttribute("data-passkey-unsupported")) note.hidden = true;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      usePasskey(form, event.submitter || form.querySelector("button"));
    });
  });
})();
