"""The ``dfnet serve`` web app: a FastAPI server and a single static page for painting masks."""

from dfnet.web.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
