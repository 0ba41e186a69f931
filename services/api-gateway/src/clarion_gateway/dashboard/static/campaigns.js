/* The Campaigns pages: the CSV upload's progress bar, and its size checked first.
 *
 * htmx posts the upload form (multipart) and reports the XHR's progress as
 * htmx:xhr:loadstart and htmx:xhr:progress on the form; a <progress> inside a form marked
 * data-upload-progress shows it. Without JavaScript the form posts normally and the bar
 * stays hidden. Loaded in <head>: it only listens on the document.
 */
(function () {
  "use strict";

  function barOf(event) {
    var target = event.target;
    var form = target && target.closest ? target.closest("form[data-upload-progress]") : null;
    return form ? form.querySelector("progress") : null;
  }

  function mebibytes(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1);
  }

  // A file over the upload limit is refused before it is sent (the server would too,
  // after the whole transfer).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.target;
    var form = target && target.closest ? target.closest("form[data-max-bytes]") : null;
    if (!form) {
      return;
    }
    var input = form.querySelector('input[type="file"]');
    var file = input && input.files ? input.files[0] : null;
    var max = parseInt(form.getAttribute("data-max-bytes"), 10);
    var message = form.querySelector(".upload-error");
    if (file && max && file.size > max) {
      event.preventDefault();
      if (message) {
        message.textContent =
          "The file is " + mebibytes(file.size) + " MiB: CSV uploads are limited to " +
          mebibytes(max) + " MiB.";
        message.hidden = false;
      }
    } else if (message) {
      message.hidden = true;
    }
  });

  document.addEventListener("htmx:xhr:loadstart", function (event) {
    var bar = barOf(event);
    if (bar) {
      bar.hidden = false;
      bar.removeAttribute("value"); // indeterminate until the first progress event
    }
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = barOf(event);
    var detail = event.detail;
    if (!bar || !detail || !detail.lengthComputable || !detail.total) {
      return;
    }
    bar.max = detail.total;
    bar.value = detail.loaded;
    bar.setAttribute("aria-valuetext", Math.round((100 * detail.loaded) / detail.total) + "%");
  });
})();
