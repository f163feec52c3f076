// Swagger UI on this server's OpenAPI description (with a token: its Authorize button takes it).
"use strict";

SwaggerUIBundle({ url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true });
