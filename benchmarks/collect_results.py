"""Assemble docs/performance.md from the benchmark scripts' result files.

Each script in benchmarks/ writes its own Markdown section to benchmarks/results/<area>.md;
this script puts them, in pipeline order, under the hand-written summary in
benchmarks/results/_summary.md. Run: python benchmarks/collect_results.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ORDER = ["simulate", "ingest", "outcomes", "twfe", "cs", "wild", "synth", "survival"]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from evaluering._atomic import write_text

    parts = [(RESULTS / "_summary.md").read_text(encoding="utf-8").rstrip() + "\n"]
    for name in ORDER + sorted(p.stem for p in RESULTS.glob("*.md")
                               if p.stem not in ORDER and not p.stem.startswith("_")):
        path = RESULTS / f"{name}.md"
        if path.exists():
            text = path.read_text(encoding="utf-8").strip()
            # demote the sections' own headings one level under this document's title
            text = "\n".join(("#" + line) if line.startswith("#") else line for line in text.splitlines())
            parts.append(f"\n<!-- from benchmarks/results/{name}.md -->\n{text}\n")
    write_text(ROOT / "docs" / "performance.md", "\n".join(parts))
    print(f"wrote {ROOT / 'docs' / 'performance.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
