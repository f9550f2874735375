"""durably: durable execution for sagas and human-in-the-loop AI agents.

Handlers written against :class:`DurableContext` checkpoint every operation and replay from the
top after a suspension or a crash. They run on the embedded SQLite engine and, with the same
API and history format, on AWS Lambda durable functions.
"""

from durably.core import *  # noqa: F403 - the face re-exports the curated core API
from durably.core import __all__ as _core_all
from durably.sagas import *  # noqa: F403 - and the saga API
from durably.sagas import __all__ as _sagas_all

__version__ = "0.1.0"
__all__ = [*_core_all, *_sagas_all, "__version__"]
