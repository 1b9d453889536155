"""`${ENV_VAR}` substitution in configs, and keeping the substituted secrets out of every log.

    data = substitute(yaml.safe_load(text), os.environ)   # raises EnvError naming the field
    hide_in_logs(secret_values(data_before, data))

`${NAME}` must be set; `${NAME:-default}` falls back to the default. `$${` writes a literal `${`.
These are replaced by `***` in log records: every value of a field named like a secret
(password, token, secret, private_key, api_key), every value of a variable named like one
(..._PASSWORD, ..._TOKEN, ..._SECRET, ..._KEY, ...), and the password of any URL with
credentials (`mqtt://user:pass@host`). Other values from the environment (a broker URL, a
bucket, a CA file) stay readable in the logs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

_PATTERN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = re.compile(r"password|passwd|token|secret|private_key|api_key", re.IGNORECASE)
_SECRET_VARIABLES = re.compile(r"pass|pwd|token|secret|key|credential|auth", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:([^/@\s]+)@")


class EnvError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def substitute(data: Any, environ: Mapping[str, str], secrets: set[str] | None = None, path: str = "") -> Any:
    """A copy of `data` with `${VAR}` replaced in every string; values used go into `secrets`."""
    if isinstance(data, dict):
        result = {}
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            result[key] = substitute(value, environ, secrets, child)
            if secrets is not None and _SECRET_KEYS.search(str(key)) and isinstance(result[key], str):
                secrets.add(result[key])
        return result
    if isinstance(data, list):
        return [substitute(value, environ, secrets, f"{path}[{index}]") for index, value in enumerate(data)]
    if not isinstance(data, str):
        return data

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None:
            if default is None:
                raise EnvError(path, f"environment variable {name} is not set")
            value = default
        if secrets is not None and value and _SECRET_VARIABLES.search(name):
            secrets.add(value)
        return value

    result = _PATTERN.sub(replace, data)
    if secrets is not None:
        for password in _URL_PASSWORD.findall(result):
            secrets.update({password, unquote(password)})
    return result


class _Redact(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.exc_text = text
            record.exc_info = None
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = _Redact()


def hide_in_logs(secrets: Iterable[str]) -> None:
    """Redact these values from every record that reaches the root logger's handlers."""
    for secret in secrets:
        if len(secret) >= 3 and secret not in _FILTER.secrets:
            _FILTER.secrets.append(secret)
    _FILTER.secrets.sort(key=len, reverse=True)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
