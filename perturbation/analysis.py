"""The intake analysis as frozen values, and their JSON shape (the API's contract).

Spans are character offsets `[start, end)` into the ORIGINAL text, so a clinician's UI can
highlight exactly what the patient wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from perturbation.taxonomy import BY_ID

Language = Literal["en", "zh"]
EmotionLabel = Literal["neutral", "positive", "negative", "repressed", "mixed"]
Urgency = Literal["emergency", "urgent"]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"span": [self.start, self.end], "text": self.text}


@dataclass(frozen=True)
class Finding:
    """One perturbation: what, where, how sure, and the standard wording if there is one."""

    subcategory: str
    start: int
    end: int
    text: str
    confidence: float
    correction: str | None = None

    def __post_init__(self) -> None:
        if self.subcategory not in BY_ID:
            raise ValueError(f"unknown perturbation subcategory {self.subcategory!r}")
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad span [{self.start}, {self.end})")

    @property
    def category(self) -> str:
        return BY_ID[self.subcategory].category

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "subcategory": self.subcategory,
            "span": [self.start, self.end],
            "text": self.text,
            "confidence": round(self.confidence, 3),
            "correction": self.correction,
        }


@dataclass(frozen=True)
class Emotion:
    label: EmotionLabel
    intensity: float  # 0 (none) .. 1 (extreme)
    evidence: tuple[Span, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "intensity": round(self.intensity, 3),
            "evidence": [span.to_json() for span in self.evidence],
        }


@dataclass(frozen=True)
class RedFlag:
    id: str  # stable, e.g. "cardiac_chest_pain"
    label: str  # human-readable, in English
    urgency: Urgency
    evidence: Span

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "urgency": self.urgency,
            "evidence": self.evidence.to_json(),
        }


@dataclass(frozen=True)
class Symptom:
    term: str  # standard clinical term, English
    text: str  # as the patient wrote it
    start: int
    end: int
    negated: bool = False
    icd10: str | None = None  # only where the mapping is confident

    def to_json(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "text": self.text,
            "span": [self.start, self.end],
            "negated": self.negated,
            "icd10": self.icd10,
        }


@dataclass(frozen=True)
class ChiefComplaint:
    symptoms: tuple[Symptom, ...] = ()
    site: str | None = None
    onset: str | None = None
    duration: str | None = None
    severity: str | None = None

    @property
    def summary(self) -> str:
        """One line in standard terms: present symptoms, then denied ones, then qualifiers."""
        present = [s.term for s in self.symptoms if not s.negated]
        denied = [s.term for s in self.symptoms if s.negated]
        parts = []
        if present:
            parts.append(", ".join(present))
        if self.site:
            parts.append(f"site: {self.site}")
        if self.onset:
            parts.append(f"onset: {self.onset}")
        if self.duration:
            parts.append(f"duration: {self.duration}")
        if self.severity:
            parts.append(f"severity: {self.severity}")
        if denied:
            parts.append("denies " + ", ".join(denied))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "symptoms": [symptom.to_json() for symptom in self.symptoms],
            "site": self.site,
            "onset": self.onset,
            "duration": self.duration,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class IntakeResult:
    language: Language
    text: str
    normalized_text: str
    perturbations: tuple[Finding, ...] = ()
    emotion: Emotion = field(default_factory=lambda: Emotion("neutral", 0.0))
    chief_complaint: ChiefComplaint = field(default_factory=ChiefComplaint)
    red_flags: tuple[RedFlag, ...] = ()
    engine: str = "rules"  # which engine produced it: rules, model or hybrid

    def to_json(self) -> dict[str, Any]:
        """The API shape. The original text is not repeated: callers have it already, and
        the gateway must be able to drop it from audit records."""
        return {
            "language": self.language,
            "normalized_text": self.normalized_text,
            "perturbations": [finding.to_json() for finding in self.perturbations],
            "emotion": self.emotion.to_json(),
            "chief_complaint": self.chief_complaint.to_json(),
            "red_flags": [flag.to_json() for flag in self.red_flags],
            "engine": self.engine,
        }
