"""A self-contained demo cluster for taskwatch.

`taskwatch demo` starts a private Redis, two Celery workers, celery beat, an
APScheduler process and a traffic producer, so the UI has something real to
watch. Nothing in this package imports Textual or Rich: it is also the test
harness for the integration and UI tests.
"""


class DemoError(Exception):
    """The demo cluster could not be started; the message is meant for the user."""
