// Alpine components. The CSP build of Alpine cannot evaluate inline JavaScript,
// so every x-data names a component registered here (no inline scripts anywhere).
document.addEventListener("alpine:init", () => {
  // Navbar burger: toggles the menu on small screens.
  window.Alpine.data("navbar", () => ({
    open: false,
    toggle() {
      this.open = !this.open;
    },
    get activeClass() {
      return this.open ? "is-active" : "";
    },
    get expanded() {
      return this.open ? "true" : "false";
    },
  }));

  // A notification the user can close.
  window.Alpine.data("dismissible", () => ({
    visible: true,
    dismiss() {
      this.visible = false;
    },
  }));

  // A navbar dropdown (the user menu): click to open, click outside or Escape to close.
  window.Alpine.data("dropdown", () => ({
    open: false,
    toggle() {
      this.open = !this.open;
    },
    close() {
      this.open = false;
    },
    get activeClass() {
      return this.open ? "is-active" : "";
    },
    get expanded() {
      return this.open ? "true" : "false";
    },
  }));

  // A Bulma modal; the trigger is a link that works without JavaScript too.
  window.Alpine.data("modal", () => ({
    open: false,
    show() {
      this.open = true;
      this.$nextTick(() => {
        const input = this.$root.querySelector(".modal input:not([type=hidden])");
        if (input) input.focus();
      });
    },
    hide() {
      this.open = false;
    },
    get activeClass() {
      return this.open ? "is-active" : "";
    },
  }));

  // Password strength hint on sign-up. Only a hint: the server's validators decide.
  // Mirrors users.validators.ComplexityValidator: length plus character classes.
  window.Alpine.data("passwordStrength", () => ({
    score: 0,
    visible: false,
    update(event) {
      const input = event.target;
      if (!input || input.name !== "password1") return;
      const value = input.value;
      const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((re) => re.test(value))
        .length;
      let score = 0;
      if (value.length >= 10) score += 1;
      if (value.length >= 14) score += 1;
      if (classes >= 3) score += 1;
      if (classes === 4) score += 1;
      if (value.length < 8) score = Math.min(score, 1);
      this.score = score;
      this.visible = value.length > 0;
    },
    get label() {
      return ["Too weak", "Weak", "Fair", "Good", "Strong"][this.score];
    },
    get colorClass() {
      return ["is-danger", "is-danger", "is-warning", "is-info", "is-success"][this.score];
    },
  }));
});

// Admin dashboard: a form whose submission asks for confirmation first and then
// disables its button, so one click sends one request (the server refuses repeats too).
document.addEventListener("alpine:init", () => {
  window.Alpine.data("confirmSubmit", () => ({
    sending: false,
    confirm(event) {
      if (this.sending || !window.confirm(event.target.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      this.sending = true;
    },
  }));
});

// Services: a code snippet's copy button. It copies the text of the snippet's
// x-ref="code" element with the clipboard API and says so for two seconds.
document.addEventListener("alpine:init", () => {
  window.Alpine.data("copyCode", () => ({
    label: "Copy",
    copy() {
      const text = this.$refs.code.textContent;
      navigator.clipboard.writeText(text).then(
        () => this.say("Copied"),
        () => this.say("Press Ctrl+C to copy"),
      );
    },
    say(label) {
      this.label = label;
      setTimeout(() => {
        this.label = "Copy";
      }, 2000);
    },
  }));

  // The pricing page's monthly/yearly switch; starts on the period the server names.
  window.Alpine.data("billingPeriod", () => ({
    period: "month",
    init() {
      this.period = this.$el.dataset.period === "year" ? "year" : "month";
    },
    showMonthly() {
      this.period = "month";
    },
    showYearly() {
      this.period = "year";
    },
    get monthly() {
      return this.period === "month";
    },
    get yearly() {
      return this.period === "year";
    },
    get monthlyClass() {
      return this.period === "month" ? "is-primary is-selected" : "";
    },
    get yearlyClass() {
      return this.period === "year" ? "is-primary is-selected" : "";
    },
    get monthlyPressed() {
      return this.period === "month" ? "true" : "false";
    },
    get yearlyPressed() {
      return this.period === "year" ? "true" : "false";
    },
  }));
});
