"""One small exception tree. Foreign exceptions are translated where they enter.

    DigestError                  anything digest reports to a person as one clear line
    ├── ConfigError              settings that cannot work (bad URL, missing key file)
    ├── InputError               input we were given is unusable (file, CSV row, address, token)
    │   └── ExtractionError      a page or dump yields no article (empty, binary, not text)
    ├── SourceError              a source could not be fetched or parsed (feed, page, dump file)
    ├── NotFound                 a named thing (issue, subscriber, source) does not exist
    ├── StateError               the action does not fit the current state (rebuild a sent issue)
    ├── ConsentError             a consent transition that is not allowed
    ├── SendError                SMTP or signing failed; ``permanent`` says whether to retry
    │   └── RelayUnavailable     the relay is down: pause the whole send
    └── CheckFailed              the pre-send check found problems

Everything else that escapes is a bug and gets a traceback.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base class: the message is one line a person can act on."""


class ConfigError(DigestError):
    pass


class InputError(DigestError):
    pass


class ExtractionError(InputError):
    pass


class SourceError(DigestError):
    pass


class NotFound(DigestError):
    pass


class StateError(DigestError):
    pass


class ConsentError(DigestError):
    pass


class SendError(DigestError):
    """A message could not be handed over. ``permanent`` means retrying will not help."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class RelayUnavailable(SendError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False)


class CheckFailed(DigestError):
    pass
