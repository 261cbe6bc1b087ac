// Keeps the slider and the number field in step. Without JavaScript the slider stays hidden
// and the number field alone works; the server validates every answer either way.
(function () {
  var slider = document.getElementById("rating-slider");
  var number = document.getElementById("rating");
  if (!slider || !number) return;
  slider.hidden = false;
  document.querySelector(".slider-label").hidden = false;
  slider.addEventListener("input", function () {
    number.value = slider.value;
    slider.classList.remove("unset");
  });
  number.addEventListener("input", function () {
    var value = parseInt(number.value, 10);
    if (!isNaN(value)) {
      slider.value = value;
      slider.classList.remove("unset");
    }
  });
})();
