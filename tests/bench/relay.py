"""A TCP relay that delays every chunk by half the wanted round-trip time in each direction.

This kernel has no sch_netem, so latency is emulated in user space (asyncio, in a thread of the
benchmark process). It does not delay the TCP handshake itself, like the reference measurement."""

from __future__ import annotations

import asyncio
import threading


class DelayRelay:
    def __init__(self, listen_ip, routes, rtt_ms):
        """routes: {listen port: (target ip, target port)}."""
        self.listen_ip = listen_ip
        self.routes = routes
        self.delay = rtt_ms / 2000.0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.servers = []
        self.error = None

    def start(self):
        self.thread.start()
        if not self.ready.wait(10) or self.error:
            raise RuntimeError("relay did not start: %s" % self.error)
        return self

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            for port, target in self.routes.items():
                server = self.loop.run_until_complete(asyncio.start_server(
                    lambda r, w, t=target: self._session(r, w, t), self.listen_ip, port))
                self.servers.append(server)
        except OSError as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    async def _pipe(self, reader, writer):
        # Chunks keep their order: a queue per direction, each chunk released `delay` after arrival.
        queue = asyncio.Queue()

        async def pump():
            while True:
                due, data = await queue.get()
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    break
                writer.write(data)
                await writer.drain()
            writer.close()

        task = self.loop.create_task(pump())
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((self.loop.time() + self.delay, data or None))
                if not data:
                    break
        except (ConnectionError, OSError):
            queue.put_nowait((self.loop.time(), None))
        await task

    async def _session(self, reader, writer, target):
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    def stop(self):
        def _close():
            for server in self.servers:
                server.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(_close)
        self.thread.join(10)


def main(argv):
    """python relay.py LISTEN_IP RTT_MS PORT=TARGET_IP:TARGET_PORT...; prints 'ready', runs until killed.

    Run as its own process so the relay's event loop does not compete for the GIL with the code
    being measured."""
    listen_ip, rtt = argv[0], float(argv[1])
    routes = {}
    for spec in argv[2:]:
        port, target = spec.split("=")
        ip, target_port = target.rsplit(":", 1)
        routes[int(port)] = (ip, int(target_port))
    relay = DelayRelay(listen_ip, routes, rtt).start()
    print("ready", flush=True)
    try:
        relay.thread.join()
    except KeyboardInterrupt:
        relay.stop()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
