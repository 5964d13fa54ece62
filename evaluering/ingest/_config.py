"""The TOML configuration files of a data set: the code mapping and the trial catalogue."""

from __future__ import annotations

import tomllib
from pathlib import Path

from evaluering import contract
from evaluering.errors import InputError

KODER_FILE = "ydelseskoder.toml"
FORSOEG_FILE = "forsoeg.toml"


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"malformed TOML: {exc}", file=str(path),
                         expected="a valid TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot be read: {exc}", file=str(path)) from None


def load_koder(path: str | Path) -> dict[str, str]:
    """Read the ``[koder]`` table (code → outcome category) of a ``ydelseskoder.toml``.

    Other top-level keys are allowed and ignored. Every category must be one of
    ``contract.UGE_KATEGORIER``; anything else is a file-level :class:`InputError`.
    """
    path = Path(path)
    data = _read_toml(path)
    koder = data.get("koder")
    if not isinstance(koder, dict) or not koder:
        raise InputError("no [koder] table", file=str(path), column="koder",
                         expected='a non-empty table [koder] of "code" = "category"')
    out: dict[str, str] = {}
    for code, cat in koder.items():
        code_s = str(code).strip()
        if not code_s:
            raise InputError("empty code in [koder]", file=str(path), column="koder",
                             expected="non-empty codes")
        if not isinstance(cat, str) or cat not in contract.UGE_KATEGORIER:
            raise InputError(f"code {code_s!r} maps to {cat!r}, not an outcome category",
                             file=str(path), column="koder",
                             expected="one of " + ", ".join(contract.UGE_KATEGORIER))
        out[code_s] = cat
    return dict(sorted(out.items()))


def check_forsoeg(path: str | Path) -> dict:
    """Parse ``forsoeg.toml`` (only that it is valid TOML; its meaning is the trials layer's)."""
    return _read_toml(Path(path))
