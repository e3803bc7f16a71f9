"""Which class of a binary task is "positive" (the one sensitivity, AUC and g-mean are about).

A wrong guess silently inverts every binary metric's meaning, so an image folder's positive
class is never its alphabetical position (``malignant/`` + ``normal/`` would make *normal*
positive): it is named by the user, or recognised from the class names, or an error.
"""

from __future__ import annotations

import re

from qkit.errors import QkitError

# Words that mark a class as the finding (positive) or its absence (negative). Keywords of 4+
# letters also match as word prefixes (tumors, cancerous, diseased); the short ones only as
# whole words, or "no" would claim "nodule" and "pos" "posterior".
POSITIVE_WORDS = (
    "malignant",
    "malignancy",
    "cancer",
    "carcinoma",
    "tumor",
    "tumour",
    "abnormal",
    "positive",
    "pneumonia",
    "disease",
    "diseased",
    "lesion",
    "melanoma",
    "pos",
    "yes",
)
NEGATIVE_WORDS = ("benign", "normal", "negative", "healthy", "control", "neg", "no")
# A negation before a positive word (no_tumor, non-cancer) or "free" after it (cancer_free)
# makes the class negative
_NEGATIONS = ("no", "non", "not", "without")
_SHORT = 3


def _words(name: str) -> list[str]:
    """Lower-case words of a class name: split at non-letters and at camelCase humps."""
    return re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())


def _matches(word: str, keywords: tuple[str, ...]) -> bool:
    return any(word == k or (len(k) > _SHORT and word.startswith(k)) for k in keywords)


def name_polarity(name: str) -> str | None:
    """'positive', 'negative' or None (no keyword, or both kinds) for one class name."""
    pos = neg = False
    words = _words(name)
    for i, word in enumerate(words):
        negated_next = word in _NEGATIONS and i + 1 < len(words) and _matches(words[i + 1], POSITIVE_WORDS)
        glued = word.startswith("non") and _matches(word[3:], POSITIVE_WORDS)  # noncancerous
        prev_negates = i > 0 and words[i - 1] in _NEGATIONS
        free = i + 1 < len(words) and words[i + 1] == "free"  # cancer_free, tumor-free
        if negated_next or glued or (free and _matches(word, POSITIVE_WORDS)):
            neg = True
        elif _matches(word, POSITIVE_WORDS) and not prev_negates:
            pos = True
        elif _matches(word, NEGATIVE_WORDS):
            neg = True
    return "positive" if pos and not neg else "negative" if neg and not pos else None


def recognise_positive(names: list[str]) -> int | None:
    """Index of the positive class of a binary task from its names, or None when unclear.

    One class reads as positive and the other does not -> that one; else one reads as negative
    and the other does not -> the other (``nodule`` vs ``no_nodule``); else None.
    """
    polarity = [name_polarity(n) for n in names]
    for wanted, pick_it in (("positive", True), ("negative", False)):
        hits = [i for i, p in enumerate(polarity) if p == wanted]
        if len(hits) == 1:
            return hits[0] if pick_it else 1 - hits[0]
    return None


def resolve_positive(requested: int | str | None, names: list[str], default: int | None, recognise: bool) -> int | None:
    """The positive index into ``names`` (None when multi-class).

    ``requested``: an index or a class name. Otherwise ``recognise`` (image folders) reads
    the names, falling back to ``default`` (MedMNIST's rule, or the order the user gave with
    ``classes``); with neither, a one-line QkitError asks for ``--positive-class``.
    """
    if len(names) != 2:
        if requested is not None:
            raise QkitError(f"positive_class applies to binary tasks only; this one has {len(names)} classes")
        return None
    quoted = ", ".join(f"'{n}'" for n in names)
    if isinstance(requested, str):
        if requested in names:
            return names.index(requested)
        folded = [n.lower() for n in names]
        if requested.lower() in folded and folded.count(requested.lower()) == 1:
            return folded.index(requested.lower())
        if requested.strip().isdigit():  # "1" from a command line or a JSON record
            requested = int(requested)
        else:
            raise QkitError(f"positive_class '{requested}' is not a class of this task; the classes are {quoted}")
    if requested is not None:
        if requested not in (0, 1):
            raise QkitError(
                f"positive_class must be 0 or 1 (or a class name: {quoted}) for a binary task, got {requested!r}"
            )
        return requested
    found = recognise_positive(names) if recognise else None
    if found is not None:
        return found
    if default is not None:
        return default
    raise QkitError(
        f"cannot tell which class of {quoted} is positive; pass --positive-class {names[0]} (or {names[1]})"
    )
