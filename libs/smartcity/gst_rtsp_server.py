"""A real RTSP server for tests and demos: GStreamer's gst-rtsp-server streaming test patterns.

Runs under the system python3 with python3-gst-1.0 and gir1.2-gst-rtsp-server-1.0 (GObject
introspection is not in the project's virtualenv), e.g.:

    /usr/bin/python3 libs/smartcity/gst_rtsp_server.py --port 8554 --mount cam-1=normal

Each mount streams H.264 (x264enc) over RTP from videotestsrc, 320x240 at 10 fps (RTSP_TEST_SIZE,
e.g. 1280x720, and RTSP_TEST_FPS change that):
  normal   a detailed moving picture (SMPTE bars scrolling): healthy
  black    a black picture (too dark, covered)
  bright   a white picture (too bright, covered)
  blurred  the normal picture scaled down to 40x30 and back up (no sharp edges left)
  frozen   a still picture: every frame identical
  moved    the normal picture until MOVED_AFTER_S seconds after the server started, then
           another scene (a camera turned), in every session from then on
  hang     the normal picture for HANG_AFTER_S seconds of each session, then no more packets
           while the session stays open
Authentication when RTSP_TEST_USER / RTSP_TEST_PASSWORD are set: RTSP_TEST_AUTH "basic"
(default) or "digest". Listens on 127.0.0.1 only; prints READY once it serves.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

STARTED = time.monotonic()
MOVED_AFTER_S = float(os.environ.get("RTSP_TEST_MOVED_AFTER_S", "8"))
HANG_AFTER_S = 3
# The picture size and rate of every mount (benchmarks stream camera-like sizes).
WIDTH, HEIGHT = (int(v) for v in os.environ.get("RTSP_TEST_SIZE", "320x240").split("x"))
FPS = int(os.environ.get("RTSP_TEST_FPS", "10"))
CAPS = f"video/x-raw,width={WIDTH},height={HEIGHT},framerate={FPS}/1"
ENCODE = ("videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=400 "
          "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1")


def _scene(tail: str = "") -> str:
    """A still background with a small ball moving over it: a fixed view that is alive."""
    return (f"compositor name=mix background=black ! {CAPS} {tail} ! {ENCODE} "
            f"videotestsrc is-live=true pattern=smpte name=scene ! {CAPS} ! mix. "
            "videotestsrc is-live=true pattern=ball motion=sweep "
            f"! video/x-raw,width={WIDTH // 5},height={HEIGHT // 5},framerate={FPS}/1 ! mix.")


def _still(pattern: str) -> str:
    return f"videotestsrc is-live=true pattern={pattern} ! {CAPS} ! {ENCODE}"


SOURCES = {
    "normal": _scene(),
    "black": _still("black"),
    "bright": _still("white"),
    "blurred": _scene("! videoscale method=bilinear ! video/x-raw,width=40,height=30 "
                      f"! videoscale method=bilinear ! {CAPS}"),
    # One picture repeated by imagefreeze: the encoder's input never changes.
    "frozen": "videotestsrc pattern=smpte num-buffers=1 ! imagefreeze is-live=true "
              f"! {CAPS} ! {ENCODE}",
    "moved": _scene(),
    "hang": _scene("! valve name=gate drop=false"),
}
PATTERNS = tuple(SOURCES)


class Factory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern
        self.set_launch(f"( {SOURCES[pattern]} )")
        self.set_shared(False)
        self.connect("media-configure", self._configure)

    def _configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        if self.pattern == "moved":
            # Moved for good MOVED_AFTER_S after the server started: later sessions see it moved.
            scene = element.get_by_name("scene")
            left_ms = int((MOVED_AFTER_S - (time.monotonic() - STARTED)) * 1000)
            if left_ms <= 0:
                scene.set_property("pattern", "checkers-8")
            else:
                GLib.timeout_add(left_ms, _set_once, scene, "pattern", "checkers-8")
        elif self.pattern == "hang":
            gate = element.get_by_name("gate")
            GLib.timeout_add_seconds(HANG_AFTER_S, _set_once, gate, "drop", True)


def _set_once(element: Gst.Element, name: str, value: object) -> bool:
    element.set_property(name, value)
    return False  # a GLib timeout that returns False does not fire again


def _auth(factories: list[Factory]) -> GstRtspServer.RTSPAuth | None:
    user, password = os.environ.get("RTSP_TEST_USER", ""), os.environ.get("RTSP_TEST_PASSWORD", "")
    if not user:
        return None
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    if os.environ.get("RTSP_TEST_AUTH", "basic") == "digest":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(user, password, token)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    for factory in factories:
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)
    return auth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", default=[], help="path=pattern")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    factories = []
    for item in args.mount:
        path, _, pattern = item.partition("=")
        if pattern not in SOURCES:
            sys.exit(f"unknown pattern {pattern!r}: one of {', '.join(PATTERNS)}")
        factory = Factory(pattern)
        factories.append(factory)
        mounts.add_factory("/" + path.strip("/"), factory)
    auth = _auth(factories)
    if auth is not None:
        server.set_auth(auth)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
