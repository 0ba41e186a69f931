"""``python -m clarion_dispatcher``: run the dispatcher."""

from __future__ import annotations

from clarion_shared.logging import configure_logging
from clarion_shared.runner import serve

from .app import SERVICE, Settings, build
from .delivery.app import SERVICE as DELIVERY


def main() -> None:
    settings = Settings()
    name = DELIVERY if settings.role == "delivery" else SERVICE
    configure_logging(name, settings.log_level, settings.log_json)
    serve(build(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
