"""One interface, several engines: how the gateway and the CLI get an intake analysis.

`rules` (the default) is deterministic and fast enough to run inline on every request.
`model` asks a served model for the same JSON under a JSON schema, for GPU deployments
(see `perturbation.model_engine`); `hybrid` runs both and merges them, keeping the rules'
spans and negation handling as the safety floor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from perturbation.analysis import Finding, IntakeResult, Language
from perturbation.document import Document

if TYPE_CHECKING:
    from perturbation.model_engine import Completer

EngineName = Literal["rules", "model", "hybrid"]
ENGINES: tuple[EngineName, ...] = ("rules", "model", "hybrid")
Detector = Callable[[Document], list[Finding]]


class IntakeEngine(Protocol):
    """What the gateway and the CLI call. Asynchronous because the `model` engine waits on
    a worker; the rules engine answers inline (it also offers a synchronous `analyze`)."""

    name: EngineName

    async def analyze_async(self, text: str, language: Language | None = None) -> IntakeResult: ...


def build_engine(
    name: EngineName, rules: RulesEngine, complete: Completer | None = None
) -> IntakeEngine:
    """The named engine; `model` and `hybrid` need a way to ask the served model."""
    if name == "rules":
        return rules
    if complete is None:
        raise ValueError(f"the {name} engine needs a model to ask")
    from perturbation.hybrid import HybridEngine
    from perturbation.model_engine import ModelEngine

    model = ModelEngine(complete)
    return model if name == "model" else HybridEngine(rules, model)


def _detectors() -> tuple[Detector, ...]:
    """Every rules detector, imported on first use so importing the engine stays cheap."""
    from perturbation import contextual, formal, structural

    return (
        structural.detect_perspective_misalignment,
        structural.detect_incomplete_grammar,
        structural.detect_reversed_order,
        formal.detect_internet_slang,
        formal.detect_dialect,
        formal.detect_spelling_error,
        contextual.detect_subjective_misdiagnosis,
        contextual.detect_irrelevant_information,
        contextual.detect_vague_expression,
    )


class RulesEngine:
    """Lexicons and patterns only: same input, same output, a few milliseconds."""

    name: EngineName = "rules"

    def __init__(self, detectors: Sequence[Detector] | None = None) -> None:
        self.detectors = tuple(detectors) if detectors is not None else _detectors()

    def analyze(self, text: str, language: Language | None = None) -> IntakeResult:
        from perturbation.complaint import extract_chief_complaint
        from perturbation.emotion import perceive
        from perturbation.normalize import normalize
        from perturbation.redflags import find_red_flags

        doc = Document.of(text, language)
        emotion, emotional_findings = perceive(doc)
        findings = [f for detect in self.detectors for f in detect(doc)] + emotional_findings
        findings.sort(key=lambda f: (f.start, f.end, f.subcategory))
        return IntakeResult(
            language=doc.language,
            text=text,
            normalized_text=normalize(doc, findings),
            perturbations=tuple(findings),
            emotion=emotion,
            chief_complaint=extract_chief_complaint(doc),
            red_flags=tuple(find_red_flags(doc)),
        )

    async def analyze_async(self, text: str, language: Language | None = None) -> IntakeResult:
        return self.analyze(text, language)
