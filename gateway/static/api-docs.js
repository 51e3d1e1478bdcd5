// The API docs page (/api/docs): Swagger UI on the portal's own OpenAPI document.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    // Swagger UI's default sends the document's URL to validator.swagger.io for a
    // badge (except at localhost): the page loads nothing from elsewhere.
    validatorUrl: null,
  });
});
