"""Label sets as configuration: names, labels with descriptions, and review thresholds.

The defaults (department, sentiment, kind) live in ``classifiers/labels.toml``. A deployment renames
or adds labels and label sets by writing its own TOML (or JSON) file of the same shape::

    [[label_set]]
    name = "department"          # the JSONL field that holds this label set's label
    threshold = 0.5              # top label below this -> the case is queued for review
    margin = 0.1                 # top two labels closer than this -> queued for review
    [label_set.labels]
    window_services = "Hall service windows ..."

and puts it next to its training data as ``labels.toml`` (or passes it to ``train``). The training
data then decides which labels the model really has (see ``restrict_to_data``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError, InvalidLabelError
from pipeline.core.model import Label, ReviewRule

#: The bundled default label sets, exactly as in the foundation issue.
DEFAULT_LABELS_FILE = Path(__file__).resolve().parent / "labels.toml"
#: File name looked for in a training-data directory.
LABELS_FILE_NAME = "labels.toml"


@dataclass(frozen=True, slots=True)
class LabelSet:
    """One label set: its name, its labels (id -> description) and when a case needs review."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    threshold: float = 0.5
    margin: float = 0.1
    #: label -> language -> what the label owns (services, places, typical problems); training turns
    #: each entry into a row of that label, so a label can be described before it has examples
    handles: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def label_ids(self) -> tuple[str, ...]:
        return tuple(self.labels)

    @property
    def review_rule(self) -> ReviewRule:
        """This label set's threshold and margin, in the form ``storage`` applies to new cases."""
        return ReviewRule(threshold=self.threshold, margin=self.margin)

    def needs_review(self, label: Label) -> bool:
        """True when the top label is below the threshold or the runner-up is within ``margin``."""
        return self.review_rule.needs_review(label)

    def check_label(self, label: str) -> None:
        """Raise unless ``label`` is one of this label set's labels.

        Raises:
            InvalidLabelError: it is not (the message lists the allowed labels).
        """
        if label not in self.labels:
            raise InvalidLabelError(
                f"{label!r} is not a label of {self.name!r}; allowed: {', '.join(self.labels) or '(none)'}"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "threshold": self.threshold, "margin": self.margin,
                               "labels": dict(self.labels)}
        if self.handles:
            out["handles"] = {lab: {lang: list(items) for lang, items in by_lang.items()}
                              for lab, by_lang in self.handles.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSet:
        """Build a label set from its TOML/JSON form.

        Raises:
            ConfigError: the name is missing or a value has the wrong type.
        """
        try:
            name = str(data["name"]).strip()
            raw_labels = data.get("labels", {})
            if isinstance(raw_labels, list):  # a plain list of ids is accepted too
                raw_labels = {str(x): "" for x in raw_labels}
            labels = {str(k): str(v) for k, v in dict(raw_labels).items()}
            threshold = float(data.get("threshold", 0.5))
            margin = float(data.get("margin", 0.1))
            handles = {
                str(lab): {str(lang): tuple(str(x) for x in items) for lang, items in dict(by_lang).items()
                           if not isinstance(items, str)}
                for lab, by_lang in dict(data.get("handles", {})).items()
            }
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"invalid label set {dict(data)!r}: {e}") from e
        if not name or name in {"text", "lang", "id"}:
            raise ConfigError(f"invalid label set name {name!r}")
        if not 0.0 <= threshold <= 1.0 or not 0.0 <= margin <= 1.0:
            raise ConfigError(f"label set {name!r}: threshold and margin must be between 0 and 1")
        unknown = sorted(set(handles) - set(labels))
        if unknown:
            raise ConfigError(f"label set {name!r}: handles listed for labels it does not have: {unknown}")
        return cls(name=name, labels=labels, threshold=threshold, margin=margin, handles=handles)


def load_label_sets(path: Path | None = None) -> tuple[LabelSet, ...]:
    """Read label sets from a TOML or JSON file (default: the bundled ``labels.toml``).

    Raises:
        ConfigError: the file cannot be read, is not valid TOML/JSON, or repeats a label set.
    """
    path = path or DEFAULT_LABELS_FILE
    try:
        raw = path.read_text(encoding="utf-8")
        data: Any = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read label sets from {path}: {e}") from e
    # parsed TOML/JSON: from_dict checks each item's shape
    items: Any = data.get("label_set", data.get("label_sets", [])) if isinstance(data, dict) else data
    sets = tuple(LabelSet.from_dict(item) for item in items)
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: a label set name appears twice: {names}")
    return sets


@dataclass(frozen=True)
class LabelNames:
    """Label sets and labels as people read them: ``{set: (en, zh)}`` and ``{(set, label): (en, zh)}``."""

    sets: dict[str, tuple[str, str]]
    labels: dict[tuple[str, str], tuple[str, str]]

    def label(self, label_set: str, label: str | None) -> str:
        """"English · 中文" for a label (its id, humanised, when the file does not name it)."""
        if not label:
            return ""
        en, zh = self.labels.get((label_set, label), (_humanise(label), ""))
        return f"{en} · {zh}" if zh else en

    def label_set(self, label_set: str) -> str:
        """"English · 中文" for a label set."""
        en, zh = self.sets.get(label_set, (_humanise(label_set), ""))
        return f"{en} · {zh}" if zh else en

    def label_in(self, label_set: str, label: str, language: str) -> str:
        """A label's name in one language (``zh`` or ``en``): what a letter to a citizen says."""
        en, zh = self.labels.get((label_set, label), (_humanise(label), ""))
        return zh if language == "zh" and zh else en


def _humanise(name: str) -> str:
    return name.replace("_", " ").capitalize()


@cache
def label_names(path: Path = DEFAULT_LABELS_FILE) -> LabelNames:
    """The names of ``labels.toml``: English from the ids, Chinese from ``title_zh`` and
    ``[label_set.zh]``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    sets: dict[str, tuple[str, str]] = {}
    labels: dict[tuple[str, str], tuple[str, str]] = {}
    for item in data.get("label_set", []):
        name = str(item["name"])
        sets[name] = (_humanise(name), str(item.get("title_zh", "")))
        zh = item.get("zh", {})
        for label in item.get("labels", {}):
            labels[(name, label)] = (_humanise(label), str(zh.get(label, "")))
    return LabelNames(sets, labels)


def review_rules(label_sets: Iterable[LabelSet]) -> dict[str, ReviewRule]:
    """``{label set: ReviewRule}``: what ``storage.create_case`` needs to decide ``needs_review``."""
    return {ls.name: ls.review_rule for ls in label_sets}


def check_label(label_sets: Sequence[LabelSet], label_set: str, label: str) -> LabelSet:
    """The label set ``label_set`` if ``label`` is one of its labels.

    Raises:
        InvalidLabelError: no such label set, or no such label in it (the message lists the allowed values).
    """
    found = next((ls for ls in label_sets if ls.name == label_set), None)
    if found is None:
        names = ", ".join(ls.name for ls in label_sets) or "(none)"
        raise InvalidLabelError(f"{label_set!r} is not a label set; allowed: {names}")
    found.check_label(label)
    return found


def find_label_sets(data_paths: Iterable[Path]) -> tuple[LabelSet, ...]:
    """The label sets for training on ``data_paths``: a ``labels.toml`` in a data directory, else the
    defaults."""
    for p in data_paths:
        candidate = p / LABELS_FILE_NAME if p.is_dir() else p.parent / LABELS_FILE_NAME
        if candidate.is_file():
            return load_label_sets(candidate)
    return load_label_sets()


def restrict_to_data(
    label_sets: Sequence[LabelSet], rows: Sequence[Mapping[str, Any]]
) -> tuple[LabelSet, ...]:
    """Keep the label sets and labels the rows actually use (configured order first, then new labels).

    A label with ``handles`` but no rows is kept too when the rows use some configured label of its
    set (the data follows this label file; a deployment described a new label before having
    examples); with none in common the data has its own labels and the described ones are dropped.
    A label set needs at least two distinct labels to be trainable; others are dropped.
    """
    out = []
    for ls in label_sets:
        seen = {str(r[ls.name]) for r in rows if r.get(ls.name) not in (None, "")}
        if seen & set(ls.labels):
            seen |= {lab for lab, by_lang in ls.handles.items() if any(by_lang.values())}
        ordered = [lab for lab in ls.labels if lab in seen] + sorted(seen - set(ls.labels))
        if len(ordered) >= 2:
            out.append(replace(ls, labels={lab: ls.labels.get(lab, "") for lab in ordered},
                               handles={lab: h for lab, h in ls.handles.items() if lab in seen}))
    return tuple(out)
