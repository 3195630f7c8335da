"""Every error plait raises on purpose, and every warning it gives.

::

    PlaitError
     ├── InvalidInputError (ValueError)      an argument plait cannot take (a direction, a page size, CLI syntax)
     │    ├── InvalidNameError               a name, alias or spec that is not allowed
     │    ├── InvalidPathError               an entry path that would escape its folder
     │    ├── InvalidMetadataError           metadata that is not JSON
     │    └── SettingsError                  a user settings file or a store setting plait cannot take
     ├── NotFoundError (LookupError)         an unknown name, version, alias, run or path
     ├── SourceError (OSError)               a file to log, or a reference's source, is missing or unreadable
     │    └── FileChangedError               a file changed while it was being read
     ├── IntegrityError                      stored bytes do not match their digest
     ├── ReferenceChangedError               data a reference points at is no longer what was logged
     ├── ReferenceRefusedError (PermissionError) a reference this machine does not follow
     ├── CorruptRecordError (ValueError)     a stored record that cannot be read back
     ├── StoreError                          the store cannot be used as asked
     │    ├── UnsupportedStoreError          unknown protocol or no exclusive create
     │    ├── ConflictError                  a record already exists (lost a race)
     │    ├── StoreUnreachableError (ConnectionError) the store's endpoint or credentials do not work
     │    └── ReadOnlyError (PermissionError) a write where writing is off (dashboard without --allow-edit)
     ├── AccessError (PermissionError)       a change the one asking has no right to make
     │    ├── AuthenticationError            no valid login (wrong password, expired or forged session, unknown token)
     │    └── ProtectedAliasError            a protected alias moved without the right to (admins; force_protected)
     ├── ConversionError (TypeError)         no plugin can turn an object into an artifact
     └── MissingExtraError (ImportError)     an integration whose framework is not installed

    PlaitWarning (UserWarning)               plait could not do part of what it does on the side
     ├── CarryWarning                        a carried function runs where its run's store is not reachable
     └── PluginWarning                       a plugin failed to load, or raised in a notification hook

Each message says what went wrong and what to do next.
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AuthenticationError",
    "CarryWarning",
    "ConflictError",
    "ConversionError",
    "CorruptRecordError",
    "FileChangedError",
    "IntegrityError",
    "InvalidInputError",
    "InvalidMetadataError",
    "InvalidNameError",
    "InvalidPathError",
    "MissingExtraError",
    "NotFoundError",
    "PlaitError",
    "PlaitWarning",
    "PluginWarning",
    "ProtectedAliasError",
    "ReadOnlyError",
    "ReferenceChangedError",
    "ReferenceRefusedError",
    "SettingsError",
    "SourceError",
    "StoreError",
    "StoreUnreachableError",
    "UnsupportedStoreError",
]


class PlaitError(Exception):
    """Base class of every error plait raises on purpose.

    The CLI turns any ``PlaitError`` into one line on stderr and exit code :attr:`exit_code`.
    """

    exit_code: int = 1


class InvalidInputError(PlaitError, ValueError):
    """Raised for an argument plait cannot take: an unknown choice, a number out of range, malformed syntax."""

    exit_code = 2


class InvalidNameError(InvalidInputError):
    """Raised for a name, alias or spec that breaks the naming rules.

    :ivar name: the offending text.
    """

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class InvalidPathError(InvalidInputError):
    """Raised for an entry path that is absolute, has a drive, or climbs out with ``..``.

    :ivar path: the offending path.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class InvalidMetadataError(InvalidInputError):
    """Raised when metadata or a config cannot be stored as JSON."""


class SettingsError(InvalidInputError):
    """Raised for a malformed user settings file, or a store setting with a key or value plait cannot take.

    :ivar source: the settings file, or ``store setting KEY``.
    """

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class NotFoundError(PlaitError, LookupError):
    """Raised for an unknown artifact, version, alias, run or file inside a version.

    :ivar name: what was looked up.
    :ivar candidates: what does exist, for the message.
    """

    exit_code = 3

    def __init__(self, message: str, *, name: str = "", candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.candidates = candidates or []


class SourceError(PlaitError, OSError):
    """Raised when a file or folder to log, or the source a reference points at, is missing or unreadable.

    :ivar path: the local path.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class FileChangedError(SourceError):
    """Raised when a file changed (size or mtime) while plait was reading it."""


class IntegrityError(PlaitError):
    """Raised when bytes read from the store do not hash to the digest that names them.

    :ivar digest: the expected digest.
    :ivar path: the entry path or store key affected, when known.
    """

    exit_code = 4

    def __init__(self, message: str, *, digest: str = "", path: str = "") -> None:
        super().__init__(message)
        self.digest = digest
        self.path = path


class ReferenceChangedError(PlaitError):
    """Raised when the data a reference points at is no longer what was logged: changed, deleted or
    different bytes.

    Nothing is read or written when this is raised; log the data again to record what is there now.

    :ivar version: the version (``name:vN``) the reference belongs to, when known.
    :ivar path: the entry path inside the version.
    :ivar uri: the reference's URI.
    :ivar changes: what differs, e.g. ``["etag 'a1' -> 'b2'"]``, or ``["deleted"]``.
    """

    exit_code = 5

    def __init__(self, message: str, *, version: str = "", path: str = "", uri: str = "",
                 changes: list[str] | None = None) -> None:
        super().__init__(message)
        self.version = version
        self.path = path
        self.uri = uri
        self.changes = changes or []


class ReferenceRefusedError(PlaitError, PermissionError):
    """Raised, before anything is read, for a reference this machine does not follow.

    A store is written by everyone who can write its bucket, so what a reference may make this
    machine read is decided here, not by the store: local files only under folders the user
    settings allow, ``http(s)`` URLs and endpoints only when allowed, unknown schemes never.
    The message says which setting allows it.

    :ivar uri: the reference's URI (or the endpoint it would reach).
    """

    exit_code = 6

    def __init__(self, message: str, *, uri: str = "") -> None:
        super().__init__(message)
        self.uri = uri


class CorruptRecordError(PlaitError, ValueError):
    """Raised when a stored manifest, version record or event cannot be parsed or validated.

    :ivar key: the store key of the record.
    """

    exit_code = 4

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class StoreError(PlaitError):
    """Raised when the store cannot be used as asked (not initialised, wrong format, read-only)."""


class UnsupportedStoreError(StoreError):
    """Raised for a store URL whose protocol is unknown or cannot create records exclusively."""

    exit_code = 2


class ConflictError(StoreError):
    """Raised when an exclusive create finds the record already there.

    :ivar key: the store key that already exists.
    """

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class StoreUnreachableError(StoreError, ConnectionError):
    """Raised when a remote store cannot be reached or refuses the credentials given.

    :ivar url: the store URL.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ReadOnlyError(StoreError, PermissionError):
    """Raised for a write through an interface where writing is turned off (``plait ui`` without ``--allow-edit``)."""

    exit_code = 2


class AccessError(PlaitError, PermissionError):
    """A change (or a page) the one asking has no right to: a viewer's edit, a user's admin action.

    The dashboard answers it with 403.
    """

    exit_code = 2


class AuthenticationError(AccessError):
    """No valid login: a wrong password, an expired or forged session, a token of a removed user.

    The dashboard answers it with 401.
    """


class ProtectedAliasError(AccessError):
    """A protected alias (the store setting ``aliases.protected``) moved without the right to.

    From Python or the CLI, pass ``force_protected=True`` / ``--protected``; in the dashboard,
    only an admin may. Either way the move is recorded as a protected one.

    :ivar alias: the alias.
    """

    def __init__(self, message: str, *, alias: str = "") -> None:
        super().__init__(message)
        self.alias = alias


class ConversionError(PlaitError, TypeError):
    """Raised when no plugin can turn an object into an artifact, or a version into an object."""

    exit_code = 2


class MissingExtraError(PlaitError, ImportError):
    """Raised when an integration is used but its framework is not installed.

    :ivar extra: the pip extra that installs it, e.g. ``huggingface``.
    """

    exit_code = 2

    def __init__(self, message: str, *, extra: str = "") -> None:
        super().__init__(message)
        self.extra = extra


class PlaitWarning(UserWarning):
    """Base class of every warning plait gives: something on the side failed, the user's work goes on."""


class PluginWarning(PlaitWarning):
    """Warned when a plugin failed to load or its notification hook raised; the user's work goes on."""


class CarryWarning(PlaitWarning):
    """Warned when a function given to :func:`plait.carry` runs in a process that does not reach its
    run's store (another host, another bucket endpoint); those calls run unrecorded."""
