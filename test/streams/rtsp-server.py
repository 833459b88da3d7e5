#!/usr/bin/python3
"""A real RTSP server for the streams tests: GStreamer's gst-rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0,
python3-gi; run with Debian's /usr/bin/python3). Serves each MP4 given as NAME=PATH at rtsp://127.0.0.1:PORT/NAME
(H.264 passed through, not re-encoded; paced in real time by the server's clock).

usage: /usr/bin/python3 rtsp-server.py PORT NAME=PATH [NAME=PATH ...]
Prints "READY <port>" on stdout once listening; stops on SIGTERM/SIGINT.
"""
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    Gst.init(None)
    port = sys.argv[1]
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(port)
    mounts = server.get_mount_points()
    for spec in sys.argv[2:]:
        name, path = spec.split('=', 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( filesrc location="{path}" ! qtdemux name=d d.video_0 ! queue ! h264parse ! '
            f'rtph264pay name=pay0 pt=96 config-interval=1 )'
        )
        factory.set_shared(True)
        mounts.add_factory('/' + name, factory)
    if server.attach(None) == 0:
        print('ERROR cannot listen on port ' + port, flush=True)
        sys.exit(1)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print('READY ' + str(server.get_bound_port()), flush=True)
    loop.run()


if __name__ == '__main__':
    main()
