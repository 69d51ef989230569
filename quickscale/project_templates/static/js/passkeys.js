// Passkeys (WebAuthn) as Alpine components, for allauth's MFA views.
// The server's options arrive as JSON (a json_script element named by data-options,
// or fetched), base64url for binary fields; the browser's credential goes back as
// JSON in the form's hidden "credential" field, and the form is submitted.
// Loaded before Alpine, like app.js, so the components exist when Alpine starts.
(() => {
  const b64urlToBuffer = (value) => {
    const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };
  const bufferToB64url = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: b64urlToBuffer(c.id) }));

  // Browsers without WebAuthn's JSON helpers (older Safari) get the same by hand.
  const creationOptions = (json) =>
    window.PublicKeyCredential.parseCreationOptionsFromJSON
      ? window.PublicKeyCredential.parseCreationOptionsFromJSON(json)
      : {
          ...json,
          challenge: b64urlToBuffer(json.challenge),
          user: { ...json.user, id: b64urlToBuffer(json.user.id) },
          excludeCredentials: withIds(json.excludeCredentials),
        };
  const requestOptions = (json) =>
    window.PublicKeyCredential.parseRequestOptionsFromJSON
      ? window.PublicKeyCredential.parseRequestOptionsFromJSON(json)
      : {
          ...json,
          challenge: b64urlToBuffer(json.challenge),
          allowCredentials: withIds(json.allowCredentials),
        };
  const credentialJSON = (credential) => {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const response = {};
    for (const key of ["clientDataJSON", "attestationObject", "authenticatorData", "signature"]) {
      if (credential.response[key]) response[key] = bufferToB64url(credential.response[key]);
    }
    if (credential.response.userHandle) {
      response.userHandle = bufferToB64url(credential.response.userHandle);
    }
    if (credential.response.getTransports) response.transports = credential.response.getTransports();
    return {
      id: credential.id,
      rawId: bufferToB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  };

  const readOptions = (root) => {
    const element = document.getElementById(root.dataset.options);
    return JSON.parse(element.textContent);
  };

  const failureMessage = (error) =>
    error && error.name === "NotAllowedError"
      ? "The passkey request was cancelled or timed out. Try again."
      : "Your browser could not use a passkey here. Try again, or use another way.";

  // Shared state and flow: run() asks the browser, fills the field and submits.
  const component = (ask) => () => ({
    busy: false,
    error: "",
    async run() {
      if (!window.PublicKeyCredential) {
        this.error = "This browser does not support passkeys.";
        return;
      }
      this.busy = true;
      this.error = "";
      const form = this.$root.closest("form") || this.$root;
      try {
        const credential = await ask(this.$root, form);
        form.querySelector("input[name=credential]").value = JSON.stringify(
          credentialJSON(credential),
        );
        form.submit();
      } catch (error) {
        this.error = failureMessage(error);
        this.busy = false;
      }
    },
  });

  document.addEventListener("alpine:init", () => {
    // Register a new passkey; "passwordless" (when offered) asks for one that can sign in alone.
    window.Alpine.data(
      "passkeyCreate",
      component((root, form) => {
        const options = JSON.parse(JSON.stringify(readOptions(root).creation_options.publicKey));
        const passwordless = form.querySelector("input[name=passwordless]");
        if (passwordless) {
          const selection = options.authenticatorSelection || {};
          selection.residentKey = passwordless.checked ? "required" : "discouraged";
          selection.requireResidentKey = passwordless.checked;
          if (passwordless.checked) selection.userVerification = "required";
          options.authenticatorSelection = selection;
        }
        return navigator.credentials.create({ publicKey: creationOptions(options) });
      }),
    );

    // Second step or reauthentication: a passkey of the account being signed in.
    window.Alpine.data(
      "passkeyGet",
      component((root) => {
        const options = readOptions(root).request_options.publicKey;
        return navigator.credentials.get({ publicKey: requestOptions(options) });
      }),
    );

    // Passwordless sign-in: fetch a fresh challenge, let the browser pick the account's passkey.
    window.Alpine.data(
      "passkeyLogin",
      component(async (root, form) => {
        const answer = await fetch(form.action, { headers: { Accept: "application/json" } });
        if (!answer.ok) throw new Error(`passkey options: HTTP ${answer.status}`);
        const options = (await answer.json()).request_options.publicKey;
        return navigator.credentials.get({ publicKey: requestOptions(options) });
      }),
    );
  });
})();
