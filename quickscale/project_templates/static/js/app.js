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
});
