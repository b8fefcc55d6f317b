// Renders this service's /openapi.json with Swagger UI, loaded just before this file from /docs/.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#reference",
  deepLinking: true,
  // Swagger UI's default validator is an online service: this page never calls one.
  validatorUrl: null,
  // Never render a document named in the page's query string: this page shows the service's own.
  queryConfigEnabled: false,
  defaultModelsExpandDepth: 1,
  displayRequestDuration: true,
});
