// Draws each <canvas data-chart="name"> from the page's JSON (json_script); the numbers
// are also in the table under each chart. Suppressed figures ("< 5") arrive as null: gaps.
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }
  var palette = ["#1f4e79", "#2e86c1", "#7d3c98", "#229954", "#b9770e"];
  var source = document.getElementById("chart-data") || document.getElementById("governance-chart");
  if (!source) { return; }
  var all = JSON.parse(source.textContent);
  var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var name = canvas.getAttribute("data-chart");
    var spec = all[name] || (name === "cycle" ? all : null);
    if (!spec || !spec.labels || !spec.labels.length) { canvas.parentNode.hidden = true; return; }
    // spec.types overrides a series' type: a "line" series in a bar chart is drawn as points
    // (content performance: the rate as a point over its interval, a floating [low, high] bar).
    var types = spec.types || {}, colors = spec.colors || {};
    var datasets = Object.keys(spec.series).map(function (label, i) {
      var own = types[label], colour = colors[label] || palette[i % palette.length];
      return { label: label, data: spec.series[label], type: own,
               backgroundColor: colour, borderColor: colour, spanGaps: false,
               order: own === "line" ? 0 : 1,  // points drawn over the interval bars
               pointRadius: own === "line" ? 6 : 0, pointBorderColor: "#ffffff",
               showLine: own === "line" ? false : undefined };
    });
    new Chart(canvas, {
      type: canvas.getAttribute("data-type") || "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: reduce ? false : {},
                 plugins: { legend: { position: "bottom" } } }
    });
  });
})();
