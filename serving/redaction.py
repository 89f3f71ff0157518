"""Credentials are never shown: the user-info of any URI (``user:password@``) is masked as ``***@``.

``http://alice:s3cret@mlflow.internal:5000`` becomes ``http://***@mlflow.internal:5000``, wherever
the URI appears in a message, a log line, a tag or a parameter.
"""

from __future__ import annotations

import re
from typing import Any

# scheme://, then everything up to the last @ of the URI: a password may hold a raw @ or /. A path
# holding an @ is masked too, on purpose: masking too much costs a word, too little a password.
USER_INFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^\s'\"<>]*@")


def mask_credentials(text: str) -> str:
    """``text`` with the user-info of every URI in it replaced by ``***``."""
    return USER_INFO.sub(r"\1***@", text) if "@" in text else text


def has_credentials(uri: str) -> bool:
    """Whether a URI carries a user name or password."""
    return mask_credentials(uri) != uri


def masked_values(values: dict[str, Any]) -> dict[str, Any]:
    """A mapping whose string values have their credentials masked (parameters, tags)."""
    return {key: mask_credentials(v) if isinstance(v, str) else v for key, v in values.items()}
