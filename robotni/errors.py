"""One exception root; each subclass says which rule was broken."""


class RobotniError(Exception):
    """Base of every error Robotni raises on purpose."""


class DeclarationError(RobotniError):
    """A worker script's metadata block is missing or wrong."""


class UnknownType(RobotniError):
    """No worker type of that name is registered."""


class InvalidParams(RobotniError):
    """Params do not match the worker type's schema."""


class UnsafePath(RobotniError):
    """A script path or venv name points outside what was configured."""


class UnsafeScript(UnsafePath):
    """The `python-script` path is not a regular file inside the scripts folder."""


class UnsafeVenv(UnsafePath):
    """The venv name is not a virtualenv in the venvs folder, or the type does not allow one."""


class InterpreterError(RobotniError):
    """The interpreter for a job is missing or is not a real executable."""


class EnvNotReady(RobotniError):
    """A worker type's own Python environment is not built, failed to build, or is missing."""


class ConfigError(RobotniError):
    """A setting that cannot be used as given (robotni/config.py names them all)."""


class SchemaOutdated(RobotniError):
    """The job store needs `robotni db upgrade` before this version can use it."""


class UnknownParent(RobotniError):
    """A job's depends_on names ids that are no job of its project; `args[0]` lists them."""


class UnsafeURL(RobotniError):
    """A webhook or callback URL that is not http(s), or whose host is or resolves to a non-public address."""
