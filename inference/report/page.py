"""The page's frame: style, banner, table of contents and the assembled document.

One file: every image is a data URI, the style is inline, nothing is fetched.
"""

from __future__ import annotations

import html

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; max-width: 90em; color: #222; }
nav.toc { background: #f7f7f7; border: 1px solid #ddd; padding: 0.5em 1em; margin: 1em 0; }
nav.toc li { margin: 0.1em 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.82em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.45em; text-align: right; vertical-align: top; }
th { background: #f2f2f2; } td.term { text-align: left; font-weight: 600; }
td.cell div { white-space: nowrap; } td.cell .pub { color: #000; }
td.cell .freq { color: #7a4b00; } td.cell .bayes { color: #0b3d91; }
td.cell .unconverged { color: #999; text-decoration: line-through; }
td.cell .unconverged small { text-decoration: none; display: inline-block;
                             white-space: normal; max-width: 24em; }
.src { font-size: 0.75em; color: #888; font-weight: 700; }
.flags { color: #b00; font-size: 0.8em; white-space: normal !important; max-width: 22em; }
.synthetic { background: #fff3cd; border: 2px solid #e0a800; padding: 0.8em;
             font-weight: 600; }
.warn { color: #a00; font-weight: 600; } .ok { color: #070; }
.note { font-size: 0.85em; color: #555; }
figure { display: inline-block; margin: 0.4em; } figcaption { font-size: 0.75em; color: #555; }
table.claims td { text-align: left; white-space: normal; max-width: 30em; }
"""


def anchor(text: str) -> str:
    """An id made of the text's letters and digits."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


class Page:
    """Sections in order, each with an id in the table of contents."""

    def __init__(self, title: str, synthetic: bool, banner: str):
        self.title, self.synthetic, self.banner = title, synthetic, banner
        self.sections: list[tuple[str, str, str]] = []

    def add(self, heading: str, body: str, section_id: str | None = None) -> None:
        """Append a section (skipped when ``body`` is empty)."""
        if body:
            self.sections.append((section_id or anchor(heading), heading, body))

    def render(self) -> str:
        """The whole document as one string."""
        toc = "".join(f"<li><a href='#{sid}'>{html.escape(h)}</a></li>"
                      for sid, h, _ in self.sections)
        banner = (f"<p id='synthetic-banner' class='synthetic'>{html.escape(self.banner)}</p>"
                  if self.synthetic else "")
        body = "".join(f"<section id='{sid}'><h2>{html.escape(h)}</h2>{b}</section>"
                       for sid, h, b in self.sections)
        return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                f"<title>{html.escape(self.title)}</title>"
                "<link rel='icon' href='data:,'>"
                f"<style>{STYLE}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>{banner}"
                f"<nav class='toc'><strong>Contents</strong><ol>{toc}</ol></nav>"
                f"{body}</body></html>")


SYNTHETIC_BANNER = ("SYNTHETIC DATA. These results are computed on a synthetic panel calibrated "
                    "to the published tables. They show the workflow and check the models "
                    "against a known truth; they are not evidence about China.")
