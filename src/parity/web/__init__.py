"""The Parity web app and JSON API (FastAPI): ``create_app(settings)`` builds it."""

from parity.web.app import create_app

__all__ = ["create_app"]
