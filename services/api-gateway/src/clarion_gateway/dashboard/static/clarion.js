/* Clarion dashboard: the theme, htmx's CSRF header and the Alpine components.
 *
 * Loaded in <head> before htmx and Alpine (both deferred): the theme is applied before
 * the first paint, and the components are registered before Alpine starts. Alpine is
 * its CSP build, so markup names properties and methods only; the logic lives here.
 */
(function () {
  "use strict";

  var THEME_KEY = "clarion-theme";
  var root = document.documentElement;

  function storedTheme() {
    try {
      return window.localStorage.getItem(THEME_KEY);
    } catch (e) {
      return null;
    }
  }

  function applyTheme(theme) {
    if (theme === "light" || theme === "dark") {
      root.setAttribute("data-theme", theme);
    } else {
      root.removeAttribute("data-theme");
    }
  }

  function currentTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen) {
      return chosen;
    }
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    return dark ? "dark" : "light";
  }

  applyTheme(storedTheme());
  root.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  // Every htmx request carries the session's CSRF token (forms carry it too).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  document.addEventListener("alpine:init", function () {
    var Alpine = window.Alpine;

    // The header's light/dark switch; the choice is kept in localStorage.
    Alpine.data("themeToggle", function () {
      return {
        theme: currentTheme(),
        get label() {
          return this.theme === "dark" ? "Light theme" : "Dark theme";
        },
        toggle: function () {
          this.theme = this.theme === "dark" ? "light" : "dark";
          applyTheme(this.theme);
          try {
            window.localStorage.setItem(THEME_KEY, this.theme);
          } catch (e) {
            /* private mode: the choice lasts for this page only */
          }
        },
      };
    });

    // The send panel of the User detail page: "Close" hides it.
    Alpine.data("sendPanel", function () {
      return {
        open: true,
        close: function () {
          this.open = false;
        },
      };
    });
  });
})();
