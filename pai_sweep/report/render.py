"""A tiny document model written out as markdown and as a standalone HTML page (same content).

The HTML carries its images inside it (data: URIs): MLflow's artifact viewer shows report.html on its own,
where a relative `<img src='pareto.png'>` points at nothing. The PNG files stay beside it for report.md."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


@dataclass
class Doc:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def h(self, text: str) -> None:
        self.blocks.append(("h", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        self.blocks.append(("ul", items))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", headers, [[fmt(c) for c in row] for row in rows]))

    def image(self, name: str, alt: str) -> None:
        self.blocks.append(("img", name, alt))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out += [f"## {block[1]}", ""]
            elif kind == "p":
                out += [block[1], ""]
            elif kind == "ul":
                out += [f"- {item}" for item in block[1]] + [""]
            elif kind == "img":
                out += [f"![{block[2]}]({block[1]})", ""]
            else:
                headers, rows = block[1], block[2]
                cell = lambda c: str(c).replace("|", "\\|")  # noqa: E731
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "---|" * len(headers))
                out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
                out.append("")
        return "\n".join(out)

    def html(self, image_dir: Path) -> str:
        """The page, each image read from `image_dir` and embedded (base64 PNG), so the file stands alone."""
        e = html.escape
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
               "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
               "th{background:#eee}img{max-width:100%}</style></head><body>", f"<h1>{e(self.title)}</h1>"]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append(f"<h2>{e(block[1])}</h2>")
            elif kind == "p":
                out.append(f"<p>{e(block[1]).replace('`', '')}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "img":
                out.append(f"<img src='{data_uri(Path(image_dir) / block[1])}' alt='{e(block[2])}'>")
            else:
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in block[1]) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in block[2]]
                out.append("</table>")
        out.append("</body></html>")
        return "\n".join(out)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
