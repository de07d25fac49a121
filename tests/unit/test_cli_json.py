"""Every command that prints data takes ``--json`` (issue 15, "One convention"); the exceptions say why.

(That each one's JSON parses is checked where the command runs, in tests/integration/.)
"""

from __future__ import annotations

import argparse

from agents.cli import build_parser

NO_JSON = {
    "worker": "runs until stopped; prints a start banner, logs the rest",
    "gateway": "runs until stopped; prints one start line",
    "export": "prints the export itself, a JSON document",
}


def test_every_command_that_prints_data_takes_json():
    def leaves(parser: argparse.ArgumentParser, name: str):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield name, {o for a in parser._actions for o in a.option_strings}
            return
        for child, sub in subs[0].choices.items():
            yield from leaves(sub, f"{name} {child}".strip())

    missing = [n for n, opts in leaves(build_parser(), "") if "--json" not in opts and n not in NO_JSON]
    assert missing == []
