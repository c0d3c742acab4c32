// Starts Swagger UI on the API's own OpenAPI document (src/qistas/api/docs.py serves the page).
const root = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({ url: root.dataset.openapi, dom_id: "#swagger-ui", deepLinking: true });
