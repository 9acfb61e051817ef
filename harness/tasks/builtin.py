"""The built-in tasks, registered through the same hook as any third-party task."""

from harness.core.hookspecs import hookimpl


@hookimpl
def register_tasks(register):
    from harness.tasks.addresses.task import AddressesTask
    from harness.tasks.general.task import GeneralTask
    from harness.tasks.kbqa.task import KBQATask
    from harness.tasks.prefs.task import PrefsTask
    from harness.tasks.sentiment.task import SentimentTask

    register(SentimentTask)
    register(KBQATask)
    register(PrefsTask)
    register(GeneralTask)
    register(AddressesTask)
