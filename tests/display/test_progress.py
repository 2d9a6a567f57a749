"""The progress display: plain lines when nobody watches, a tqdm bar in a terminal."""

from __future__ import annotations

import io

import pytest

from emstrack._progress import Progress, interactive, progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_without_a_terminal():
    lines: list[str] = []
    with Progress(3, lines.append, bar=False) as steps:
        steps.step(1, "first")
        steps.step(3, "second")
    assert [line.split("  (")[0] for line in lines] == ["[ 1/3] first", "[ 2/3] second"]
    assert all(line.endswith(" s)") for line in lines)
    assert steps.runs == 4


def test_bar_in_a_terminal_keeps_the_lines(capsys):
    """With a TTY the bar is drawn on it and each step's line is printed above the bar."""
    terminal = _Terminal()
    assert interactive(terminal)
    echoed: list[str] = []
    with Progress(2, echoed.append, description="demo", file=terminal) as steps:
        steps.step(1, "one")
        steps.step(1, "two")
    drawn = terminal.getvalue()
    assert "demo" in drawn
    assert "0/2" in drawn
    assert echoed == []  # the lines went through the bar instead
    printed = capsys.readouterr().out.splitlines()
    assert [line.split("  (")[0] for line in printed] == ["[ 1/2] one", "[ 2/2] two"]


def test_not_interactive_when_piped():
    assert not interactive(io.StringIO())


def test_progress_iterates_unchanged():
    assert list(progress(range(4))) == [0, 1, 2, 3]


@pytest.mark.slow
def test_bar_in_a_jupyter_kernel(monkeypatch):
    """In a real ipykernel the bar is drawn (stderr stream) and the lines still print (stdout)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from emstrack._progress import Progress, interactive\n"
            "print('interactive:', interactive())\n"
            "with Progress(3, description='sweep') as steps:\n"
            "    for index in range(3):\n"
            "        steps.step(1, f'item {index}')\n"
        )
    ]
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    outputs = notebook.cells[0].outputs
    stdout = "".join(o["text"] for o in outputs if o.get("name") == "stdout")
    stderr = "".join(o["text"] for o in outputs if o.get("name") == "stderr")
    assert "interactive: True" in stdout
    assert [line.split("  (")[0] for line in stdout.splitlines()[1:]] == [
        "[ 1/3] item 0",
        "[ 2/3] item 1",
        "[ 3/3] item 2",
    ]
    assert "sweep:" in stderr
    assert "2/3" in stderr
