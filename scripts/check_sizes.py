#!/usr/bin/env python3
"""The house's size limits (issue #21), checked in CI beside ruff.

- no Python module under vlan_nats/ over 400 lines;
- no Python function (tests included) over 60 lines;
- the class ``Daemon`` under 200 lines;
- no C function in csrc/ over 80 lines.

Prints one line per breach and exits 1 if there is any.  ruff holds the
complexity limits (C901, PLR0912, PLR0915: see pyproject.toml).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE_LINES = 400
FUNCTION_LINES = 60
CLASS_LINES = {"Daemon": 200}
C_FUNCTION_LINES = 80


def python_breaches(path: Path, module_limit: bool) -> list[str]:
    text = path.read_text()
    rel = path.relative_to(ROOT)
    out = []
    n = text.count("\n")
    if module_limit and n > MODULE_LINES:
        out.append(f"{rel}: {n} lines (limit {MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > FUNCTION_LINES:
                out.append(
                    f"{rel}:{node.lineno}: function {node.name} is {length} lines "
                    f"(limit {FUNCTION_LINES})"
                )
        elif isinstance(node, ast.ClassDef) and node.name in CLASS_LINES:
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length >= CLASS_LINES[node.name]:
                out.append(
                    f"{rel}:{node.lineno}: class {node.name} is {length} lines "
                    f"(limit: under {CLASS_LINES[node.name]})"
                )
    return out


# A C function definition starts at column 0 with a name and "(" and its body
# opens with "{" alone on a line at column 0; it ends at "}" at column 0.
_C_DEF = re.compile(r"^[A-Za-z_][\w \*]*\b(\w+)\(")


def c_breaches(path: Path) -> list[str]:
    rel = path.relative_to(ROOT)
    out = []
    name, start = None, 0
    for i, line in enumerate(path.read_text().splitlines(), 1):
        m = _C_DEF.match(line)
        if m and not line.rstrip().endswith(";"):
            name, start = m.group(1), i
        elif line.startswith("}") and name is not None:
            if i - start + 1 > C_FUNCTION_LINES:
                out.append(
                    f"{rel}:{start}: C function {name} is {i - start + 1} lines "
                    f"(limit {C_FUNCTION_LINES})"
                )
            name = None
    return out


def main() -> int:
    breaches = []
    for p in sorted((ROOT / "vlan_nats").rglob("*.py")):
        breaches += python_breaches(p, module_limit=True)
    for d in ("tests", "scripts", "csrc"):
        for p in sorted((ROOT / d).rglob("*.py")):
            breaches += python_breaches(p, module_limit=False)
    for p in sorted((ROOT / "csrc").glob("*.c")):
        breaches += c_breaches(p)
    for b in breaches:
        print(b)
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
