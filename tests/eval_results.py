"""Results dicts in the shape `evaluation.mcq` and `evaluation.robustness` write to
results.json, with realistic counts (Wilson intervals computed for these k and n), for the
report and plot tests. Each call returns a fresh dict, so a test may edit its copy."""

from __future__ import annotations

from typing import Any

RUN = {
    "model": "qwen2.5-0.5b-instruct",
    "base_url": "http://127.0.0.1:8000/v1",
    "datasets": [
        "/work/shared/data/benchmarks/medqa.jsonl",
        "/work/shared/data/benchmarks/jmed.jsonl",
    ],
    "seed": 7,
    "limit": 300,
    "shuffle": True,
    "scoring": "generate",
    "started_at": "2025-12-05T16:23:04+00:00",
    "finished_at": "2025-12-05T16:35:46+00:00",
    "duration_s": 762.4,
}


def _source(n: int, correct: int, ci95: list[float], invalid: int, errors: int) -> dict[str, Any]:
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n,
        "ci95": ci95,
        "invalid": invalid,
        "invalid_rate": invalid / n,
        "errors": errors,
    }


def mcq_results() -> dict[str, Any]:
    """300 items: medqa 123/200 correct, jmed 48/100 with 3 failed requests."""
    return {
        "kind": "mcq",
        **RUN,
        "clinical": None,
        **_source(300, 171, [0.5134, 0.6248], 7, 3),
        "by_source": {
            "medqa": _source(200, 123, [0.546, 0.6797], 4, 0),
            "jmed": _source(100, 48, [0.3846, 0.5768], 3, 3),
        },
        "answer_distribution": {"A": 81, "B": 70, "C": 68, "D": 59, "E": 12, "invalid": 7},
        "command": "clinserve eval mcq medqa.jsonl jmed.jsonl --limit 300 --seed 7 --out runs/a",
    }


# (mode, variant) -> (correct, n, ci95, invalid, errors)
_CONDITIONS: dict[tuple[str, str], tuple[int, int, list[float], int, int]] = {
    ("off", "clean"): (83, 200, [0.3489, 0.4843], 2, 0),
    ("off", "light"): (80, 200, [0.3346, 0.4692], 2, 0),
    ("off", "moderate"): (76, 200, [0.3156, 0.4489], 3, 0),
    ("off", "heavy"): (59, 200, [0.2361, 0.3616], 9, 2),
    ("off", "dialogue"): (19, 60, [0.2131, 0.4423], 4, 0),
    ("annotate", "clean"): (90, 200, [0.3826, 0.5192], 1, 0),
    ("annotate", "light"): (88, 200, [0.373, 0.5093], 1, 0),
    ("annotate", "moderate"): (87, 200, [0.3682, 0.5043], 2, 0),
    ("annotate", "heavy"): (80, 200, [0.3346, 0.4692], 4, 0),
    ("annotate", "dialogue"): (22, 60, [0.2562, 0.4932], 2, 0),
    ("normalize", "clean"): (95, 200, [0.4069, 0.544], 1, 0),
    ("normalize", "light"): (96, 200, [0.4118, 0.549], 1, 0),
    ("normalize", "moderate"): (93, 200, [0.3972, 0.5341], 1, 0),
    ("normalize", "heavy"): (89, 200, [0.3778, 0.5143], 2, 0),
    ("normalize", "dialogue"): (30, 60, [0.3774, 0.6226], 1, 0),
}

# (mode, variant) -> (points, ci95) against clean; dialogue is paired over the 60 JMED items
_DROPS: dict[tuple[str, str], tuple[float, list[float]]] = {
    ("off", "light"): (1.5, [-2.0, 5.0]),
    ("off", "moderate"): (3.5, [-0.5, 7.4]),
    ("off", "heavy"): (12.0, [6.1, 17.8]),
    ("off", "dialogue"): (20.0, [8.3, 31.0]),
    ("annotate", "light"): (1.0, [-2.1, 4.1]),
    ("annotate", "moderate"): (1.5, [-2.4, 5.4]),
    ("annotate", "heavy"): (5.0, [0.9, 9.1]),
    ("annotate", "dialogue"): (-1.7, [-13.4, 10.1]),
    ("normalize", "light"): (-0.5, [-3.6, 2.6]),
    ("normalize", "moderate"): (1.0, [-2.7, 4.7]),
    ("normalize", "heavy"): (3.0, [-1.2, 7.4]),
    ("normalize", "dialogue"): (5.0, [-6.2, 16.0]),
}


def robustness_results() -> dict[str, Any]:
    """200 items at three intake modes and four variants, plus 60 JMED dialogues."""
    conditions = [
        {
            "mode": mode,
            "variant": variant,
            "n": n,
            "correct": correct,
            "accuracy": correct / n,
            "ci95": ci95,
            "invalid_rate": invalid / n,
            "errors": errors,
        }
        for (mode, variant), (correct, n, ci95, invalid, errors) in _CONDITIONS.items()
    ]
    drops = [
        {
            "mode": mode,
            "variant": variant,
            "against": "clean",
            "n": 60 if variant == "dialogue" else 200,
            "points": points,
            "ci95": ci95,
        }
        for (mode, variant), (points, ci95) in _DROPS.items()
    ]
    return {
        "kind": "robustness",
        **RUN,
        "limit": 200,
        "n_items": 200,
        "modes": ["off", "annotate", "normalize"],
        "variants": ["clean", "light", "moderate", "heavy", "dialogue"],
        "conditions": conditions,
        "drops": drops,
        "command": "clinserve eval robustness medqa.jsonl jmed.jsonl --limit 200 --out runs/r",
    }
