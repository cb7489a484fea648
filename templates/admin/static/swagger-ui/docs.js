// Starts the vendored Swagger UI on the admin's OpenAPI document (no inline script: the CSP forbids it).
// "Try it out" sends the session's CSRF token with every request, as admin.js does.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const meta = (name) => {
    const tag = document.querySelector('meta[name="' + name + '"]');
    return tag ? tag.content : "";
  };
  window.SwaggerUIBundle({
    url: meta("openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: false,
    validatorUrl: null,
    requestInterceptor: (request) => {
      request.headers["X-CSRF-Token"] = meta("csrf-token");
      return request;
    },
  });
});
