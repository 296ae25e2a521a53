"""Edit formats: how the model writes changes, as small strategies with pure parsers.

Pick a format with ``get_format(profile_for(model).edit_format)``, put its ``instructions``
in the system prompt, ``parse`` each reply, and ``apply_edits`` the result to the current
content of the files it names. Nothing here does IO: reading and writing files is the
caller's job, after ``validate_path`` (which every parser already applies).
"""

from bot.agent.editformats.apply import apply_edits
from bot.agent.editformats.base import (
    Edit,
    EditFormat,
    Replace,
    WriteFile,
    raise_refused,
    validate_path,
)
from bot.agent.editformats.profiles import (
    FORMATS,
    FormatName,
    ModelProfile,
    get_format,
    parameter_count,
    profile_for,
)

__all__ = [
    "FORMATS",
    "Edit",
    "EditFormat",
    "FormatName",
    "ModelProfile",
    "Replace",
    "WriteFile",
    "apply_edits",
    "get_format",
    "parameter_count",
    "profile_for",
    "raise_refused",
    "validate_path",
]
