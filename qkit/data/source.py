"""Is a run's recorded data source still what ``build_data`` loads now?

A run scored on other images than it was recorded with (an image added to the folder, another
MedMNIST file, another split seed or grouping) produces numbers that look like the old ones but
do not compare with them. Training on resume and ``qkit evaluate`` call ``check_source`` with
the ``source`` dict from ``config.json`` and the one from a fresh ``build_data``.
"""

from __future__ import annotations

from qkit.errors import QkitError

# The keys that decide which images land in which split, in the order a message names them.
# Paths (``file``, ``path``) are left out on purpose: a folder moved elsewhere is the same data.
COMPARED = (
    "dataset",
    "size",
    "md5",
    "n_images",
    "fingerprint",
    "content_md5",
    "split",
    "split_seed",
    "group_by",
    "n_groups",
    "classes",
)
# What a record written before a key existed meant by its absence (None: skip the key)
_ABSENT_MEANS = {"group_by": None, "n_groups": None}
_HASHES = ("md5", "fingerprint", "content_md5")


def source_differences(recorded: dict, current: dict) -> list[str]:
    """Human-readable ``key old -> new`` for every compared key that differs.

    A key missing from ``recorded`` (a run from an older qkit) is only compared when its
    absence has a meaning (no ``group_by`` there means no grouping); missing from ``current``
    it is not compared (another kind of dataset says so through ``dataset``).
    """
    diffs = []
    for key in COMPARED:
        if key not in current:
            continue
        if key in recorded:
            old = recorded[key]
        elif key in _ABSENT_MEANS:
            old = _ABSENT_MEANS[key]
        else:
            continue
        new = current[key]
        if _normal(old) != _normal(new):
            diffs.append(f"{key} {_show(key, old)} -> {_show(key, new)}")
    return diffs


def check_source(recorded: dict, current: dict) -> None:
    """Raise a one-line QkitError when ``current`` (a fresh ``DataBundle.source``) no longer
    matches the ``recorded`` one: same files (md5 / folder fingerprint), same split (split_seed,
    group_by). Returns None when they match."""
    diffs = source_differences(recorded, current)
    if not diffs:
        return
    where = current.get("path") or current.get("file") or current.get("dataset", "the data")
    hint = ""
    if any(d.startswith(("n_images", "fingerprint", "content_md5")) for d in diffs):
        hint = " (images added, removed, renamed or edited)"
    elif any(d.startswith("md5") for d in diffs):
        hint = " (another file)"
    raise QkitError(
        f"the data changed since this run was recorded: {'; '.join(diffs)}{hint} "
        f"in {where}; results would not be comparable with the recorded ones"
    )


def _normal(value):
    """JSON turns tuples into lists: compare them alike."""
    return list(value) if isinstance(value, tuple) else value


def _show(key: str, value) -> str:
    if key in _HASHES and isinstance(value, str):
        return value[:12]  # enough to tell hashes apart, short enough for one line
    if isinstance(value, str):  # quoted, but a regex's backslashes as the user typed them
        return f"'{value}'"
    return repr(_normal(value))
