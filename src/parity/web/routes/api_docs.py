"""A server-rendered description of the API, built from its OpenAPI document.

FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN, which Parity never does; this
page lists the same operations and parameters with no JavaScript at all.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from parity.web.deps import base_context, get_state, optional_actor

router = APIRouter(tags=["docs"], include_in_schema=False)


@router.get("/api/v1/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    state = get_state(request)
    spec = request.app.openapi()
    operations = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                       "description": p.get("description") or _schema_text(p.get("schema", {}))}
                      for p in op.get("parameters", [])]
            operations.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                               "description": op.get("description", ""), "parameters": params})
    ctx = base_context(request, optional_actor(request), title="API", operations=operations,
                       openapi_url=request.app.openapi_url)
    return state.templates.TemplateResponse(request, "api_docs.html", ctx)


def _schema_text(schema: dict) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_schema_text(s) or s.get("type", "") for s in schema["anyOf"])
    return str(schema.get("type", ""))
