/* The idle-timeout countdown and screen lock (AU-6). No inline script: the CSP allows only this file.
 * When the countdown ends, the page's content (with any personal data) is removed from the document,
 * not just covered, and only the re-login button remains. The server ends the session at the same time. */
(function () {
  "use strict";
  var body = document.body;
  var raw = body.getAttribute("data-idle-seconds");
  if (raw === null || raw === "") {
    return;
  }
  var deadline = Date.now() + parseInt(raw, 10) * 1000;
  var output = document.getElementById("idle-countdown");
  var timer = null;

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function lock() {
    var main = document.getElementById("main");
    if (main) {
      while (main.firstChild) {
        main.removeChild(main.firstChild);
      }
    }
    var nav = document.querySelector(".mainnav");
    if (nav) {
      nav.parentNode.removeChild(nav);
    }
    body.classList.add("locked");
    var screen = document.getElementById("lock-screen");
    if (screen) {
      screen.hidden = false;
      var button = document.getElementById("relogin");
      if (button) {
        button.focus();
      }
    }
  }

  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    if (output) {
      output.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      if (left <= 60 && output.parentNode) {
        output.parentNode.classList.add("soon");
      }
    }
    if (left <= 0) {
      window.clearInterval(timer);
      lock();
    }
  }

  timer = window.setInterval(tick, 1000);
  tick();
})();
