"""APScheduler 3.x job stores, read from outside the scheduler's process.

Never through APScheduler's own store classes: they delete a job they fail
to load. :mod:`.location` parses a ``--jobstore`` URL.
"""
