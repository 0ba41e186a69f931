"""``python -m clarion_webhooks``: serve the webhook-emitter."""

from clarion_shared.runner import serve

from .app import Settings, build


def main() -> None:
    settings = Settings()
    serve(build(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
