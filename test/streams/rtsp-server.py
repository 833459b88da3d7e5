#!/usr/bin/python3
"""A real RTSP server for the streams tests: GStreamer's gst-rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0,
python3-gi; run with Debian's /usr/bin/python3). Serves each MP4 given as NAME=PATH at rtsp://127.0.0.1:PORT/NAME
(H.264 passed through, not re-encoded; paced in real time by the server's clock).

usage: /usr/bin/python3 rtsp-server.py PORT [--auth USER:PASSWORD] NAME=PATH [NAME=PATH ...]
With --auth every mount requires RTSP Basic authentication with that user and password (wrong or missing
credentials answer 401 Unauthorized, as an IP camera does).
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
    specs = sys.argv[2:]
    role = None
    if specs and specs[0] == '--auth':
        user, password = specs[1].split(':', 1)
        specs = specs[2:]
        role = 'viewer'
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
    for spec in specs:
        name, path = spec.split('=', 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( filesrc location="{path}" ! qtdemux name=d d.video_0 ! queue ! h264parse ! '
            f'rtph264pay name=pay0 pt=96 config-interval=1 )'
        )
        factory.set_shared(True)
        if role is not None:
            factory.add_role_from_structure(Gst.Structure.new_from_string(
                f'{role}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true'))
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
