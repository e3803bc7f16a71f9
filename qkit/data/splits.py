"""Train/val/test splits of an image folder: per image (stratified), or per group.

Images of one patient (or slide, or lesion) look alike; when they land in both train and test
the test score measures recognition of the patient, not of the disease. ``group_by`` keeps each
group in one split. Both splits are seeded by ``split_seed`` alone, so runs with different
training seeds are scored on the same test images.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from qkit.data.spec import SPLIT_FRACTIONS, compile_group_regex
from qkit.errors import QkitError

# Grouped splits deal whole folds: 0.15 = 3/20, so 20 folds give 3 to test, 3 to val, 14 to
# train. Fewer groups than folds, or folds that cannot give every split every class -> fewer
# folds (see grouped_split).
GROUP_FOLDS = 20
MIN_GROUPS_PER_CLASS = 3  # one for each split, or some split misses the class
_DEAL_TRIES = 200  # seeded fold orders tried per fold count


def image_split(labels: np.ndarray, split_seed: int, root) -> tuple[np.ndarray, ...]:
    """Stratified 70/15/15 split of single images: (train, val, test) index arrays."""
    from sklearn.model_selection import train_test_split  # lazy: only image folders need it

    idx = np.arange(len(labels))
    holdout = SPLIT_FRACTIONS[1] + SPLIT_FRACTIONS[2]
    try:
        train_idx, rest = train_test_split(idx, test_size=holdout, stratify=labels, random_state=split_seed)
        val_idx, test_idx = train_test_split(
            rest, test_size=SPLIT_FRACTIONS[2] / holdout, stratify=labels[rest], random_state=split_seed
        )
    except ValueError as exc:
        raise QkitError(
            f"cannot split {root} 70/15/15 stratified (too few images per class?): {str(exc).splitlines()[0]}"
        ) from None
    return train_idx, val_idx, test_idx


def group_keys(rel_paths: list[str], group_by: str) -> list[str]:
    """The group of every file: the first capture group of ``group_by`` (else the whole match)
    searched in its path relative to the folder root. A file without one is an error: guessing
    its group could leak a patient across splits."""
    pattern = compile_group_regex(group_by)
    keys, missing = [], []
    for rel in rel_paths:
        key = _group_key(pattern, rel)
        if key is None:
            missing.append(rel)
        keys.append(key)
    if missing:
        raise QkitError(
            f"{len(missing)} of {len(rel_paths)} files do not match group_by "
            f"'{group_by}', e.g. '{missing[0]}' (the regex is searched in the path "
            f"relative to the folder; its first capture group names the group)"
        )
    return keys


def _group_key(pattern: re.Pattern, rel: str) -> str | None:
    match = pattern.search(rel)
    if match is None:
        return None
    key = match.group(1) if pattern.groups else match.group(0)
    return key or None  # an optional group that took no part, or an empty match: no group


def grouped_split(
    labels: np.ndarray, keys: list[str], names: list[str], rel_paths: list[str], group_by: str, split_seed: int
) -> tuple[np.ndarray, ...]:
    """(train, val, test) index arrays with every group in exactly one split, stratified by
    class as far as the groups allow: scikit-learn's StratifiedGroupKFold deals the groups
    into GROUP_FOLDS folds (fewer when there are fewer groups), and whole folds go to the
    splits, 3/20 each to val and test. Which folds go where is a seeded choice among those
    that give every split every class; when none does, fewer (larger) folds are tried, so a
    class with only a few groups still reaches all three splits, at a less even share."""
    groups = np.asarray(keys)
    per_class = {int(c): np.unique(groups[labels == c]) for c in np.unique(labels)}
    c_min = min(per_class, key=lambda c: len(per_class[c]))
    if len(per_class[c_min]) < MIN_GROUPS_PER_CLASS:
        example = rel_paths[int(np.flatnonzero(labels == c_min)[0])]
        raise QkitError(
            f"too few groups for a grouped 70/15/15 split: group_by '{group_by}' finds "
            f"{len(per_class[c_min])} group(s) in class '{names[c_min]}' (e.g. '{example}' -> "
            f"'{_group_key(re.compile(group_by), example)}'); each class needs >= "
            f"{MIN_GROUPS_PER_CLASS}, one per split"
        )
    # StratifiedGroupKFold refuses more folds than groups, or than images in every class
    k_max = min(GROUP_FOLDS, len(np.unique(groups)), int(np.bincount(labels).max()))
    for k in range(k_max, MIN_GROUPS_PER_CLASS - 1, -1):
        # fewer folds hold more groups each, so a class with few groups can reach all splits
        dealt = _deal_folds(labels, groups, k, set(per_class), split_seed)
        if dealt is not None:
            return dealt
    raise QkitError(
        f"too few groups for a grouped 70/15/15 split: with group_by '{group_by}' "
        f"no split of the {len(np.unique(groups))} groups gives every split every "
        f"class (e.g. '{names[c_min]}' has {len(per_class[c_min])} groups, like "
        f"'{rel_paths[int(np.flatnonzero(labels == c_min)[0])]}')"
    )


def _deal_folds(labels, groups, k: int, classes: set, split_seed: int):
    """Deal k StratifiedGroupKFold folds to (train, val, test), or None when no seeded order
    of the folds gives every split every class."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_hold = max(1, int(k * SPLIT_FRACTIONS[2] + 0.5))  # folds for val, and again for test
    with warnings.catch_warnings():  # "least populated class has only n members": expected
        warnings.simplefilter("ignore", UserWarning)
        folds = [
            test
            for _, test in StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=split_seed).split(
                labels, labels, groups
            )
        ]
    classes_in = [set(labels[f].tolist()) for f in folds]
    # fold 0 gets the largest groups first: a seeded order keeps it from always being test
    rng = np.random.default_rng(split_seed)
    for _ in range(_DEAL_TRIES):
        order = rng.permutation(k)
        parts = (order[2 * n_hold :], order[n_hold : 2 * n_hold], order[:n_hold])
        if all(set().union(*(classes_in[i] for i in part)) == classes for part in parts):
            return tuple(np.sort(np.concatenate([folds[i] for i in part])) for part in parts)
    return None
