"""The operator console: ``/admin`` (a server-rendered page) and its JSON API under ``/admin/api/``."""
