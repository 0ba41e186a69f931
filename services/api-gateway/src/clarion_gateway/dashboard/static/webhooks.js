/* The Webhooks pages: "Copy" next to the signing secret shown once, and the address
 * bar moved off the form that made it.
 *
 * Loaded in <head> after clarion.js and before Alpine (deferred), so the component is
 * registered before Alpine starts. Alpine is its CSP build: the markup names the
 * component's properties and methods only.
 */
(function () {
  "use strict";

  // The secret is in the answer to a POST (create, rotate). The address becomes the
  // webhook's page, so that a reload reads it (without the secret) rather than posting
  // the form again: a second webhook, or a second rotation.
  document.addEventListener("DOMContentLoaded", function () {
    var shown = document.querySelector("[data-replace-url]");
    if (shown && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", shown.getAttribute("data-replace-url"));
    }
  });

  document.addEventListener("alpine:init", function () {
    window.Alpine.data("copySecret", function () {
      return {
        copied: false,
        get label() {
          return this.copied ? "Copied" : "Copy";
        },
        copy: function () {
          var input = this.$refs.secret;
          var self = this;
          input.select();
          if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(input.value).then(function () {
              self.copied = true;
            });
          } else if (document.execCommand("copy")) {
            self.copied = true;
          }
        },
      };
    });
  });
})();
