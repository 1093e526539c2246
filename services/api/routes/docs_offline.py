"""/docs (Swagger UI) with its script and style served by the API, so it works offline.

The assets come from the installed `fastapi-offline` package: Swagger UI 5, which reads the
OpenAPI 3.1 that FastAPI writes (the `swagger-ui-bundle` package ships 4.15, which cannot).
ReDoc is not offered: its page fetches a logo from its CDN. The app is created with
`docs_url=None, redoc_url=None` and includes `router` (and `root_router`: / leads to /docs).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from shared.errors import NotFoundError

router = APIRouter(include_in_schema=False)
root_router = APIRouter(include_in_schema=False)

ASSETS_PATH = "/docs/assets"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
_ASSET_DIR = Path(str(files("fastapi_offline") / "static"))


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    base = _prefix(request)
    app = request.app
    return get_swagger_ui_html(
        openapi_url=f"{base}{app.openapi_url}",
        title=f"{app.title} - API",
        swagger_js_url=f"{base}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{base}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{base}{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=f"{base}/docs/oauth2-redirect",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(ASSETS_PATH + "/{name}")
def asset(name: str) -> FileResponse:
    media_type = _ASSETS.get(name)
    if media_type is None:  # a fixed list: the name never reaches the file system otherwise
        raise NotFoundError(f"no documentation asset {name!r}")
    return FileResponse(
        _ASSET_DIR / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )


@root_router.get("/")
def root(request: Request) -> RedirectResponse:
    """The API's front door points at its documentation; the web UI is the Streamlit app."""
    return RedirectResponse(f"{_prefix(request)}/docs")
