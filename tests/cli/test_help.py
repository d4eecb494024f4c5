"""`--help` answers for every command: each one's help is formatted (a stray `%` in a help string would raise
inside argparse) and names every option the command takes."""

from __future__ import annotations

import argparse

import pytest

from learnerfit.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_has_help_that_names_each_of_its_options(command):
    parser = _commands()[command]
    text = parser.format_help()
    options = [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
    assert options, f"{command} takes no options?"
    assert [o for o in options if o not in text] == []


def test_the_top_level_help_lists_every_command():
    text = build_parser().format_help()
    assert all(command in text for command in _commands())
