"""The dashboard: server-rendered pages for operators at ``/dashboard``.

``web`` holds what every page shares (sessions, roles, CSRF and origin checks, security
headers, rendering); each ``routes*`` module holds one area's pages.
"""
