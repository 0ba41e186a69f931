"""``python -m clarion_directory``: serve the user-directory."""

from __future__ import annotations

from clarion_shared.logging import configure_logging
from clarion_shared.runner import serve

from .app import SERVICE, Settings, build


def main() -> None:
    settings = Settings()
    configure_logging(SERVICE, settings.log_level, settings.log_json)
    serve(build(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
