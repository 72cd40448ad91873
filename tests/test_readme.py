"""The README's Engine API example must run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_engine_example_runs(capsys):
    text = README.read_text(encoding="utf-8")
    section = text.split("## Engine API", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README has no python example in its Engine API section"
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert "(31, 16)" in capsys.readouterr().out
