"""Task implementations behind the protocol files (one module per ``task``)."""
from __future__ import annotations

import importlib

TASKS = {
    "phase-advance": "cortical_gle.tasks.phase_advance",
    "mnist1d": "cortical_gle.tasks.mnist1d",
    "teacher-student": "cortical_gle.tasks.teacher_student",
    "speech-commands": "cortical_gle.tasks.speech_commands",
    "ephys-comparison": "cortical_gle.tasks.ephys_comparison",
}


def get_task(name: str, source: str = "protocol"):
    try:
        return importlib.import_module(TASKS[name])
    except KeyError:
        raise ValueError(f"{source}: unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None
