"""With separate workers (Redis configured), the read models are followed by ``ecocase relay``,
not by the API process: a real relay process brings the project list and the supervision view
up to the store's head."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from application.project_index import ProjectIndex
from application.settings import load_settings
from application.supervision import Supervision
from tests.workers.faults_support import Rig, rig, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as w:
        yield w


def test_with_separate_workers_the_api_leaves_the_read_models_to_the_relay(world: Rig) -> None:
    settings = load_settings(world.env)
    assert (settings.embedded_workers, settings.projections_in_api) == (False, False)


def test_the_relay_process_brings_the_project_list_and_supervision_up_to_the_head(
    world: Rig,
) -> None:
    w = world
    letter = w.letter("2024-330100-44-01-000301")  # 2 events: registered, letter issued
    index = ProjectIndex(w.store, w.settings.store_env())  # read only: never started here
    supervision = Supervision(w.store, w.settings.store_env())
    try:
        assert index.position() == 0, "nothing follows the log before the relay runs"
        w.procs.start("relay")
        wait_for(
            lambda: index.position() == w.head() == supervision.position(),
            30,
            "the relay's followers to reach the head",
            details=w.describe,
        )
        rows, _ = index.list(readable_windows=None)
        assert [r.id for r in rows] == [letter.project_id]
        letters = supervision.rectifications(readable_windows=None, today=date(2026, 12, 4))
        assert [r.letter_id for r in letters] == [letter.letter_id]
    finally:
        index.close()
        supervision.close()
