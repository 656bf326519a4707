"""Checks on what a `calligraphy` command tells the user."""


def assert_refused_in_one_line(status: int, capsys, message: str, out) -> None:
    """A usage error: exit status 2, one line on stderr that says why, no traceback, nothing written."""
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists()
