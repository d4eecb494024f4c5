"""The base of every settings section (`learner`, `oracle`, `train`, ...): a typo in a file or variable is an
error that names it, never a setting silently ignored."""

from __future__ import annotations

import argparse
from typing import Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


S = TypeVar("S", bound=Section)


def add_flags(parser: argparse.ArgumentParser, section: type[Section], prefix: str = "") -> None:
    """One --flag per field of `section` (a nested section's as --name-field), help and default from the field:
    a command's flags generated from the settings class they fill, so the two cannot drift."""
    defaults = section()
    for name, field in section.model_fields.items():
        default, dest = getattr(defaults, name), prefix + name
        if isinstance(default, Section):
            add_flags(parser, type(default), dest + "__")
            continue
        flag = "--" + dest.replace("__", "-").replace("_", "-")
        choices = _literal_values(field.annotation)
        if isinstance(default, bool):
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                                help=field.description)
        else:
            kind = type(default) if default is not None else int
            parser.add_argument(flag, dest=dest, type=kind, default=default, choices=choices, metavar=name.upper(),
                                help=f"{field.description} (default: %(default)s)")


def from_flags(section: type[S], args: argparse.Namespace, prefix: str = "") -> S:
    """The section `add_flags` made flags for, from the parsed arguments: only what the flags changed is given, so
    a default the section derives (e.g. from another field) stays derived."""
    defaults, values = section(), {}
    for name in section.model_fields:
        dest, default = prefix + name, getattr(defaults, name)
        if isinstance(default, Section):
            values[name] = from_flags(type(default), args, dest + "__").model_dump(exclude_unset=True)
        elif getattr(args, dest) != default:
            values[name] = getattr(args, dest)
    return section(**values)


def choices(section: type[Section], name: str) -> tuple:
    """The values a Literal field of `section` allows, for a command's `choices=`: named once, in the settings."""
    values = _literal_values(section.model_fields[name].annotation)
    if values is None:
        raise TypeError(f"{section.__name__}.{name} is not a Literal field")
    return values


def _literal_values(annotation) -> tuple | None:
    return get_args(annotation) if get_origin(annotation) is Literal else None
