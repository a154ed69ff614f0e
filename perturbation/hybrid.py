"""The `hybrid` engine: the rules' analysis, widened by what the model read.

The rules are the safety floor: everything they report stays, with their spans,
confidences and negation verdicts. The model adds what the rules missed:

* a model finding is kept unless a rules finding of the same subcategory overlaps it;
* a model symptom is kept unless it overlaps a rules symptom; qualifiers (site, onset,
  duration, severity) the rules left empty are taken from the model;
* red flags are the union by id, and the more urgent of the two verdicts wins: a second
  opinion may raise urgency, never lower it;
* emotion: the rules' label, unless they saw none and the model did;
* the corrected text is rebuilt from the merged findings by `normalize`, where rules
  findings outrank model findings on overlap (higher confidence).
"""

from __future__ import annotations

from perturbation.analysis import ChiefComplaint, Finding, IntakeResult, Language, RedFlag
from perturbation.document import Document
from perturbation.engine import EngineName, RulesEngine
from perturbation.model_engine import ModelEngine
from perturbation.normalize import normalize


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def _findings(rules: IntakeResult, model: IntakeResult) -> list[Finding]:
    merged = list(rules.perturbations)
    for finding in model.perturbations:
        if not any(
            other.subcategory == finding.subcategory
            and _overlaps(other.start, other.end, finding.start, finding.end)
            for other in rules.perturbations
        ):
            merged.append(finding)
    return sorted(merged, key=lambda f: (f.start, f.end, f.subcategory))


def _complaint(rules: ChiefComplaint, model: ChiefComplaint) -> ChiefComplaint:
    symptoms = list(rules.symptoms)
    for symptom in model.symptoms:
        if not any(_overlaps(s.start, s.end, symptom.start, symptom.end) for s in rules.symptoms):
            symptoms.append(symptom)
    return ChiefComplaint(
        tuple(sorted(symptoms, key=lambda s: s.start)),
        site=rules.site or model.site,
        onset=rules.onset or model.onset,
        duration=rules.duration or model.duration,
        severity=rules.severity or model.severity,
    )


def _red_flags(rules: IntakeResult, model: IntakeResult) -> tuple[RedFlag, ...]:
    flags = {flag.id: flag for flag in rules.red_flags}
    for flag in model.red_flags:
        known = flags.get(flag.id)
        if known is None or (known.urgency == "urgent" and flag.urgency == "emergency"):
            flags[flag.id] = flag
    return tuple(sorted(flags.values(), key=lambda f: (f.urgency != "emergency", f.evidence.start)))


def merge(rules: IntakeResult, model: IntakeResult) -> IntakeResult:
    doc = Document.of(rules.text, rules.language)
    findings = _findings(rules, model)
    emotion = rules.emotion if rules.emotion.label != "neutral" else model.emotion
    return IntakeResult(
        language=rules.language,
        text=rules.text,
        normalized_text=normalize(doc, findings),
        perturbations=tuple(findings),
        emotion=emotion,
        chief_complaint=_complaint(rules.chief_complaint, model.chief_complaint),
        red_flags=_red_flags(rules, model),
        engine="hybrid",
    )


class HybridEngine:
    name: EngineName = "hybrid"

    def __init__(self, rules: RulesEngine, model: ModelEngine) -> None:
        self.rules = rules
        self.model = model

    async def analyze_async(self, text: str, language: Language | None = None) -> IntakeResult:
        """Rules first (milliseconds), then the model; a model failure propagates so the
        caller decides whether to fall back to the rules' result."""
        rules = self.rules.analyze(text, language)
        model = await self.model.analyze_async(text, rules.language)
        return merge(rules, model)
