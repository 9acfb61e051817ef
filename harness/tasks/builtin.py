"""The built-in tasks, registered through the same hook as any third-party task."""

from harness.hookspecs import hookimpl


@hookimpl
def register_tasks(register):
    from harness.tasks.general import GeneralTask
    from harness.tasks.kbqa import KBQATask
    from harness.tasks.prefs import PrefsTask
    from harness.tasks.sentiment import SentimentTask

    register(SentimentTask)
    register(KBQATask)
    register(PrefsTask)
    register(GeneralTask)
