/* The Campaign detail page: a form with data-confirm (the "Cancel campaign" button)
 * asks before it posts. Without JavaScript the form posts at once. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
