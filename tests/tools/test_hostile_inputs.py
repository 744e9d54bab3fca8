"""Hostile inputs: each gets a one-line ImageLoadError or a result, within the time budget."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from PIL import EpsImagePlugin

from sleuth.tools import ImageLimits, ImageLoadError, formats, load_image, worker
from sleuth.tools.decode import decode_pixels
from sleuth.tools.survey import run_survey
from tests import hostile

REFUSAL_SECONDS = 2.0
"""Every refusal below is decided from headers; 2 s leaves room for a loaded machine."""

REFUSED = {
    "progressive_jpeg_many_scans": (hostile.progressive_jpeg_many_scans, "too_complex", "scans"),
    "jpeg_many_segments": (hostile.jpeg_many_segments, "too_complex", "segments"),
    "tiff_many_pages": (hostile.tiff_many_pages, "too_complex", "1000 TIFF pages"),
    "eps_named_png": (hostile.eps_named_png, "unsupported", "EPS files are not accepted"),
    "xbm": (hostile.xbm, "unsupported", "XBM"),
    "xpm": (hostile.xpm, "unsupported", "XPM"),
    "pcx": (hostile.pcx, "unsupported", "PCX"),
    "sgi": (hostile.sgi, "unsupported", "SGI"),
    "tga": (hostile.tga, "unsupported", "TGA"),
    "im": (hostile.im, "unsupported", "IM files"),
    "qoi": (hostile.qoi, "unsupported", "QOI"),
    "png_declaring_108_mp": (hostile.png_declaring, "too_many_pixels", "max_image_pixels)"),
    "bmp_declaring_10_gp": (hostile.bmp_declaring, "too_many_pixels", "max_image_pixels"),
    "text_file": (hostile.text_file, "not_an_image", "not an image"),
}


@pytest.fixture
def no_ghostscript(monkeypatch):
    """Fail the test if Pillow's EPS plugin is ever asked to open or render anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("the EPS plugin ran")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", refuse)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", refuse)


@pytest.mark.parametrize("name", REFUSED)
def test_each_hostile_file_gets_one_line_naming_it(name, tmp_path, no_ghostscript):
    build, reason, fragment = REFUSED[name]
    path = tmp_path / f"{name}.png"  # every one named .png: the bytes decide
    path.write_bytes(build())
    assert path.stat().st_size < 1 << 20
    started = time.monotonic()
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert time.monotonic() - started < REFUSAL_SECONDS
    message = str(info.value)
    assert info.value.reason == reason
    assert fragment in message
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_a_108_mp_image_gets_sleuths_limit_not_pillows_message():
    with pytest.raises(ImageLoadError) as info:
        load_image(hostile.png_declaring(12000, 9000))
    message = str(info.value)
    assert "12000x9000 = 108.0 MP, above the limit of 80.0 MP" in message
    assert "bomb" not in message.lower() and "89478485" not in message


def test_a_heic_without_the_extra_says_which_extra_to_install(monkeypatch):
    monkeypatch.setattr(formats, "heif_plugin", lambda: False)
    with pytest.raises(ImageLoadError) as heic:
        load_image(hostile.heic_without_codec())
    with pytest.raises(ImageLoadError) as text:
        load_image(hostile.text_file())
    assert heic.value.reason == "unsupported"
    assert "pip install 'sleuth[heif]'" in str(heic.value)
    assert str(heic.value) != str(text.value)


def test_without_the_scan_cap_the_slow_jpeg_is_stopped_by_the_budget(monkeypatch):
    slow = hostile.progressive_jpeg_many_scans()
    monkeypatch.setattr(formats, "MAX_JPEG_SCANS", 10_000)  # let it reach the decoder
    monkeypatch.setattr(formats, "MAX_JPEG_SEGMENTS", 10_000)
    started = time.monotonic()
    with pytest.raises(ImageLoadError) as info:
        load_image(slow, limits=ImageLimits(decode_seconds=1))
    assert time.monotonic() - started < 5
    assert info.value.reason == "too_slow"
    assert "after 1 s" in str(info.value) and "(setting decode_seconds)" in str(info.value)


def _hang(raw, **kwargs):
    time.sleep(30)


def _crash(raw, **kwargs):
    os.kill(os.getpid(), signal.SIGSEGV)


def _broken(raw, **kwargs):
    raise AssertionError("not an input problem")


def _budgeted(decoder, seconds=20.0):
    data = hostile.narrow_tall_png()
    return worker.decode_budgeted(
        data, accepted=formats.accepted_formats(), max_pixels=80_000_000, pages=None,
        seconds=seconds, decoder=decoder,
    )  # fmt: skip


def _pid(raw, **kwargs):
    header, rgb = decode_pixels(raw, **kwargs)
    return header | {"notes": [str(os.getpid())]}, rgb


def test_every_decode_gets_a_fresh_worker_process():
    pids = [_budgeted(_pid)[0]["notes"][0] for _ in range(3)]
    assert len(set(pids)) == 3 and str(os.getpid()) not in pids


def test_a_worker_that_died_while_waiting_is_replaced():
    _budgeted(_pid)  # leaves a worker waiting for the next decode
    spare = worker._spare
    assert spare is not None
    spare.process.kill()
    spare.process.join()
    assert _budgeted(_pid)[0]["notes"][0] != str(spare.process.pid)


def test_a_decoder_that_hangs_is_stopped_by_the_wall_clock():
    started = time.monotonic()
    with pytest.raises(ImageLoadError, match="wall-clock time") as info:
        _budgeted(_hang, seconds=0.5)
    assert time.monotonic() - started < 3
    assert info.value.reason == "too_slow"


def test_a_decoder_crash_is_an_error_not_a_dead_process():
    with pytest.raises(ImageLoadError, match=r"crashed .*SIGSEGV") as info:
        _budgeted(_crash)
    assert info.value.reason == "unreadable"


def test_a_bug_in_the_worker_raises_in_the_caller():
    with pytest.raises(RuntimeError, match="AssertionError: not an input problem"):
        _budgeted(_broken)


def test_decoding_in_a_worker_survives_threads_busy_in_native_code():
    """The server decodes while other analyses run numpy's BLAS in threads."""
    import threading

    stop = threading.Event()

    def busy():
        a = np.random.default_rng(0).random((300, 300))
        while not stop.is_set():
            a @ a

    threads = [threading.Thread(target=busy) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        started = time.monotonic()
        for _ in range(20):
            image = load_image(hostile.narrow_tall_png(), limits=ImageLimits(decode_seconds=10))
            assert image.size[0] < 8
        assert time.monotonic() - started < 60
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_the_apng_frame_viewers_show_is_analysed_and_the_decoy_reported(registry):
    image = load_image(hostile.apng_hidden_default())
    assert np.array_equal(image.rgb, hostile.apng_shown_frame())
    assert image.frames == 2
    assert any("hidden default image" in note for note in image.notes)
    assert set(run_survey(registry, image).results) >= {"ela", "noise", "provenance"}


def test_an_apng_whose_default_image_is_its_first_frame_has_no_note():
    image = load_image(hostile.apng_default_is_first_frame())
    assert np.array_equal(image.rgb, hostile.apng_shown_frame())
    assert image.frames == 2
    assert not any("hidden" in note for note in image.notes)


def test_a_narrow_tall_png_gets_results_from_every_tool(registry):
    image = load_image(hostile.narrow_tall_png())
    assert image.size == (4, 16384)
    survey = run_survey(registry, image)
    assert {"provenance", "ela", "noise", "spectrum"} <= set(survey.results)
    metrics = survey.results["provenance"].findings[0].metrics
    assert metrics.get("sd_watermark_checked") is True


@pytest.mark.parametrize("build", [hostile.narrow_tall_png, hostile.apng_hidden_default])
def test_the_whole_analysis_gives_a_verdict(build, tmp_path, monkeypatch):
    from sleuth.api import open_session
    from sleuth.settings import Settings

    (tmp_path / "none.toml").write_text("")
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    with open_session(Settings.load(data_dir=tmp_path / "data")) as investigator:
        verdict = investigator.analyze(build())
    assert verdict.label in {"ai_generated", "real", "uncertain"}
    assert 0.0 <= verdict.p_ai <= 1.0


@pytest.mark.parametrize(
    "build, frames",
    [
        (hostile.gif_many_frames, 60000),
        (hostile.png_chunk_flood, 1),
        (hostile.tiff_ifd_loop, 2),
        (lambda: hostile.tiff_many_pages(1000), 1000),
    ],
)
def test_floods_under_the_caps_load_within_the_budget(build, frames):
    started = time.monotonic()
    image = load_image(build(), limits=ImageLimits(decode_seconds=10))
    assert time.monotonic() - started < 10
    assert image.frames == frames


def test_float_samples_with_nan_and_infinity_load():
    image = load_image(hostile.float_tiff_with_nan())
    assert image.mode == "F"
    assert image.rgb[0, 0].tolist() == [0, 0, 0] and image.rgb.max() == 255
    assert any("scaled to 8 bits" in note for note in image.notes)


def test_every_hostile_input_is_built_under_1_mb():
    builders = [
        build
        for name, build in vars(hostile).items()
        if callable(build) and not name.startswith("_") and build.__module__ == hostile.__name__
    ]
    assert len(builders) > 20
    for build in builders:
        data = build()
        if isinstance(data, bytes):
            assert 0 < len(data) < 1 << 20, build.__name__


PEAK_MEMORY_MB = 1200
"""The stated cap: no hostile input may take a process (or its decoding worker) past it."""

_MEASURE = """
import re, sys
from sleuth.tools import ImageLimits, ImageLoadError, load_image
from tests import hostile
for name in sys.argv[1:]:  # decoded in this process, so that its peak covers the decoder
    try:
        load_image(getattr(hostile, name)(), limits=ImageLimits(decode_seconds=0))
    except ImageLoadError:
        pass
with open("/proc/self/status") as status:  # VmHWM starts afresh at exec, unlike ru_maxrss
    print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) // 1024)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_every_hostile_input_stays_under_the_memory_cap():
    import subprocess
    import sys

    from tests.conftest import REPO

    names = [build.__name__ for build, _, _ in REFUSED.values()]
    names += ["png_declaring", "bmp_declaring", "narrow_tall_png", "gif_many_frames",
              "png_chunk_flood", "apng_hidden_default", "float_tiff_with_nan"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *names],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    peak_mb = int(done.stdout.split()[-1])
    assert peak_mb < PEAK_MEMORY_MB, f"peak {peak_mb} MB"


def _size_in_a_pool_worker(_):
    return load_image(hostile.apng_hidden_default()).size


def test_a_process_forked_after_decoding_can_decode_too():
    """A pool worker inherits the parent's forkserver state and must not use it."""
    from concurrent.futures import ProcessPoolExecutor

    expected = load_image(hostile.apng_hidden_default()).size  # the parent's forkserver runs
    with ProcessPoolExecutor(2) as pool:
        assert list(pool.map(_size_in_a_pool_worker, range(4))) == [expected] * 4


def test_a_script_without_a_main_guard_can_decode_in_the_worker(tmp_path):
    """The worker must not run the caller's script again (it would decode again, and fail)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    script = tmp_path / "script.py"
    script.write_text(
        "from sleuth.tools import ImageLimits, load_image\n"
        "from tests import hostile\n"
        "print(load_image(hostile.apng_hidden_default(), limits=ImageLimits()).size)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(64, 48)"
