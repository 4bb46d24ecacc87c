"""``avadet detect``'s numeric options and clumsy inputs: every bad value is an argument error
(exit 2, one error line naming the flag, no traceback) before anything is written; the API
raises ``ConfigError`` for the same values; a file that is no video, or an MP4 cut short, is
one line naming the file."""

from __future__ import annotations

import math

import pytest
from fixtures.detect_media import write_faststart_mp4

from avadet.api import detect_video
from avadet.api import detection as api_detection
from avadet.cli import main
from avadet.commands import detect as detect_command
from avadet.errors import ConfigError, FormatError

BAD_VALUES = {
    "--interval": ["nan", "inf", "-inf", "0", "-1", "0.000001", "0.009", "1e300", "86401",
                   "abc", "", "1,5"],
    "--start": ["nan", "inf", "-inf", "-0.5", "1e300", "x"],
    "--timestamp-offset": ["nan", "inf", "-900", "1e30"],
    "--person-threshold": ["nan", "inf", "-0.1", "1.5", "none"],
    "--top-k": ["-5", "-1", "1.5", "nan", "k"],
    "--show-top": ["-1", "2.5", "inf"],
    "--detector-batch": ["0", "-4", "nan"],
    "--detector-min-size": ["0", "-800"],
    "--detector-max-size": ["0", "x"],
    "--threads": ["-2", "1.5"],
}
CORPUS = [(flag, value) for flag, values in BAD_VALUES.items() for value in values]


@pytest.mark.parametrize(("flag", "value"), CORPUS)
def test_bad_option_values_are_argument_errors(tmp_path, capsys, flag, value):
    out = tmp_path / "out"
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")  # never opened: the flags are checked first
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", str(video), "--checkpoint", str(tmp_path / "c.pt"), "--out", str(out),
              f"{flag}={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and flag in errors[0], err
    assert "Traceback" not in err
    assert not out.exists()


def test_good_values_parse_and_limits_are_in_the_help(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    detect_command.add_arguments(parser)
    args = parser.parse_args(["v.mp4", "--checkpoint", "c", "--out", "o", "--interval", "0.01",
                              "--start", "0", "--person-threshold", "1", "--top-k", "0",
                              "--timestamp-offset", "900"])
    assert (args.interval, args.start, args.person_threshold, args.top_k) == (0.01, 0, 1, 0)
    parser.print_help()
    assert "0.01 to 86400" in " ".join(capsys.readouterr().out.split())
    # The command's limits are the API's (checked twice: at parse time and in the use case).
    assert (detect_command.MIN_INTERVAL, detect_command.MAX_INTERVAL, detect_command.MAX_SECONDS) \
        == (api_detection.MIN_INTERVAL, api_detection.MAX_INTERVAL, api_detection.MAX_SECONDS)


@pytest.mark.parametrize("kwargs", [
    {"interval": math.nan}, {"interval": math.inf}, {"interval": 1e-6}, {"interval": 0},
    {"start": math.nan}, {"start": math.inf}, {"start": -1}, {"person_threshold": math.nan},
    {"person_threshold": 2.0}, {"top_k": -5}, {"top_k": 1.5}, {"show_top": -1},
    {"timestamp_offset": math.inf}, {"interval": "1"}, {"top_k": True},
])
def test_the_api_rejects_the_same_values(tmp_path, kwargs):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        detect_video(tmp_path / "v.mp4", tmp_path / "c.pt", out, **kwargs)
    assert not out.exists()


def test_a_truncated_mp4_fails_naming_the_file(tmp_path):
    import contextlib

    from avadet.detect.runner import _decode_rgb, _open_video, check_complete

    whole = write_faststart_mp4(tmp_path / "whole.mp4", 240)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.45)])
    for path, ok in ((whole, True), (cut, False)):
        with contextlib.ExitStack() as stack:
            frames, stated = _open_video(path, stack)
            decoded = sum(1 for _ in _decode_rgb(path, frames, {"decode": 0.0}))
        assert stated.frames == 240 and stated.exact
        if ok:
            check_complete(path, decoded, stated)
        else:
            with pytest.raises(FormatError, match=r"cut\.mp4: truncated video: \d+ of the 240"):
                check_complete(path, decoded, stated)
