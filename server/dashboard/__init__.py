"""The web dashboard of ``durably serve``: executions, their graph and timeline, and an inbox of the
callbacks that wait for a person. Server-rendered pages (Jinja2, everything escaped) with a little
JavaScript; graph layout by the vendored dagre; no asset from another host."""

from durably.server.dashboard._views import dashboard_routes

__all__ = ["dashboard_routes"]
