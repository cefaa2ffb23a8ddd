"""The HTTP server and web page: ``create_app(settings)``, run by ``vidsonar serve``."""

from api.server.app import create_app
from api.server.settings import ServerSettings

__all__ = ["create_app", "ServerSettings"]
