"""Remote kernels: Jupyter Kernel Gateway (the path JupyterHub and Enterprise Gateway
deployments take) starts the installed kernelspec AUTOAWAIT_KERNEL_NAME through its
REST API, on 127.0.0.1, and a cell runs over the kernel's websocket.

Run with: "$VENV/bin/python" -m unittest -v test_gateway
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

from tornado.websocket import websocket_connect

KERNEL = os.environ.get("AUTOAWAIT_KERNEL_NAME", "autoawait")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text else None


def message(msg_type, content):
    return {
        "header": {"msg_id": uuid.uuid4().hex, "session": uuid.uuid4().hex,
                   "username": "test", "msg_type": msg_type, "version": "5.5",
                   "date": "2026-11-22T04:00:00.000000Z"},
        "parent_header": {}, "metadata": {}, "content": content,
        "channel": "shell", "buffers": [],
    }


class KernelGatewayTests(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")
        self.gateway = subprocess.Popen(
            [sys.executable, "-m", "kernel_gateway",
             "--KernelGatewayApp.ip=127.0.0.1", f"--KernelGatewayApp.port={self.port}",
             f"--KernelGatewayApp.default_kernel_name={KERNEL}"],
            stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                request(f"{self.base}/api")
                break
            except OSError:
                if self.gateway.poll() is not None or time.monotonic() > deadline:
                    self.fail("Kernel Gateway did not start:\n" + self.stop_gateway())
                time.sleep(0.2)

    def stop_gateway(self):
        if self.gateway.poll() is None:
            self.gateway.terminate()
            try:
                self.gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.gateway.kill()
                self.gateway.wait()
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text

    def tearDown(self):
        if not self.log.closed:
            self.stop_gateway()

    def test_a_cell_runs_over_the_gateway_websocket(self):
        kernel = request(f"{self.base}/api/kernels", "POST", {"name": KERNEL})
        self.assertEqual(kernel["name"], KERNEL)

        async def run_cell():
            ws = await websocket_connect(
                f"ws://127.0.0.1:{self.port}/api/kernels/{kernel['id']}/channels")
            msg = message("execute_request", {
                "code": 'await(sleep(0.01)); print("hello over the gateway"); return 6 * 7',
                "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True})
            await ws.write_message(json.dumps(msg))
            seen, reply = [], None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                raw = await asyncio.wait_for(ws.read_message(), timeout=60)
                m = json.loads(raw)
                if m.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                    continue
                if m["channel"] == "shell":
                    reply = m
                else:
                    seen.append(m)
                if reply and any(s["msg_type"] == "status"
                                 and s["content"]["execution_state"] == "idle" for s in seen):
                    break
            ws.close()
            return reply, seen

        reply, seen = asyncio.run(run_cell())
        self.assertIsNotNone(reply, "no execute_reply over the websocket")
        self.assertEqual(reply["content"]["status"], "ok")
        texts = "".join(m["content"].get("text", "") for m in seen if m["msg_type"] == "stream")
        self.assertIn("hello over the gateway", texts)
        results = [m for m in seen if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")
        request(f"{self.base}/api/kernels/{kernel['id']}", "DELETE")


if __name__ == "__main__":
    unittest.main()
