"""Root pytest configuration: the shared fixtures (real Kafka, real MongoDB-wire server).

The tests' topics live in a namespace of their own (``test.clarion.*``), set before
anything reads the topic registry, so a ``make run`` on the same broker neither sees
what the tests send nor feeds them its own records. The end-to-end stack has a
namespace of its own again (``tests/conftest.py``).
"""

import os

os.environ.setdefault("CLARION_TOPIC_PREFIX", "test.")

pytest_plugins = ["clarion_shared.testing.plugin"]
