import sys

import pytest

from exceptiongroup import catch

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


def test_handled_exception_is_not_reraised() -> None:
    handled = []
    with pytest.raises(ExceptionGroup) as excinfo:
        with catch({ValueError: handled.append}):
            raise ExceptionGroup("msg", [ValueError("handled"), KeyError("left")])

    assert len(handled) == 1
    exceptions = excinfo.value.exceptions
    assert len(exceptions) == 1
    assert isinstance(exceptions[0], KeyError)
