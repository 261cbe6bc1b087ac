// Keeps the slider and the number field in step. Without JavaScript the slider stays hidden
// and the number field alone works; the server validates every answer either way.
(function () {
  // the response answers the end of the conversation: open the panel there (its last client turn is marked)
  var context = document.querySelector(".context");
  if (context) context.scrollTop = context.scrollHeight;
  var slider = document.getElementById("rating-slider");
  var number = document.getElementById("rating");
  if (!slider || !number) return;
  slider.hidden = false;
  document.querySelector(".slider-label").hidden = false;
  // "input" fires only when the value changes: a click (or Space) on the slider at rest takes its
  // value too, so every value, the middle included, is one action away; nothing is pre-filled
  function take() {
    number.value = slider.value;
    slider.classList.remove("unset");
  }
  slider.addEventListener("input", take);
  slider.addEventListener("click", take);
  slider.addEventListener("keydown", function (event) {
    if (event.key === " ") {
      event.preventDefault();
      take();
    }
  });
  number.addEventListener("input", function () {
    var value = parseInt(number.value, 10);
    if (!isNaN(value)) {
      slider.value = value;
      slider.classList.remove("unset");
    }
  });
})();
