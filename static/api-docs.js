// GET /api/docs: Swagger UI (static/vendor/swagger-ui) showing the app's OpenAPI document.
// "Try it out" sends requests from this page with its cookies, as any JSON client would.
window.addEventListener("DOMContentLoaded", function () {
  var reference = document.getElementById("reference");
  window.SwaggerUIBundle({
    url: reference.dataset.document,
    domNode: reference,
    deepLinking: true,
    layout: "BaseLayout",
    presets: [window.SwaggerUIBundle.presets.apis],
  });
});
