"""The ``dfnet serve`` web app: a FastAPI server and a single static page for painting masks.

``app`` holds the routes, ``gate`` the admission control in front of uploads, ``parsing`` the request
checks, ``pool`` the served models and their worker threads, ``jobs`` the work of one request and
``responses`` what is sent back; ``settings`` the limits, all ``dfnet serve`` options.
"""

from dfnet.web.app import create_app
from dfnet.web.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
