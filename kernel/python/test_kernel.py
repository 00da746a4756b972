"""The official jupyter_kernel_test suite, configured for autoawait's Lua cells.

Two ways to point it at a kernel:

* AUTOAWAIT_CONNECTION_FILE=PATH: connect to a kernel that is already running
  (the Rust test in kernel/tests/jupyter_kernel_test.rs serves one in-process);
* otherwise start the installed kernelspec AUTOAWAIT_KERNEL_NAME (default
  "autoawait"), as Jupyter does: install it first with
  `autoawait kernel install --prefix "$VENV"` (or --sys-prefix inside the venv).

Run with: "$VENV/bin/python" -m unittest -v test_kernel
"""

import os
import unittest

import jupyter_kernel_test
from jupyter_client.blocking.client import BlockingKernelClient


class AutoawaitKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = os.environ.get("AUTOAWAIT_KERNEL_NAME", "autoawait")
    language_name = "lua"
    file_extension = ".lua"

    code_hello_world = 'print("hello, world")'
    code_stderr = 'eprint("oops")'

    completion_samples = [
        {"text": "pri", "matches": {"print"}},
        {"text": "string.up", "matches": {"string.upper"}},
    ]
    complete_code_samples = ["x = 1", "print(x)", "for i = 1, 3 do print(i) end"]
    incomplete_code_samples = ["for i = 1, 3 do", "function f(x)", "t = {"]
    invalid_code_samples = ["x = = 1", "end end"]

    code_generate_error = 'error("boom")'
    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": "'a' .. 'b'", "result": '"ab"'},
    ]
    code_display_data = [
        {"code": 'display(html("<b>hi</b>"))', "mime": "text/html"},
        {"code": 'display(markdown("**hi**"))', "mime": "text/markdown"},
    ]
    code_clear_output = "clear_output()"
    code_inspect_sample = "print"
    code_page_something = "print?"

    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "1*"

    @classmethod
    def setUpClass(cls):
        path = os.environ.get("AUTOAWAIT_CONNECTION_FILE")
        if not path:
            super().setUpClass()
            return
        cls.km = None
        cls.kc = BlockingKernelClient(connection_file=path)
        cls.kc.load_connection_file()
        cls.kc.start_channels()
        cls.kc.wait_for_ready(timeout=60)

    @classmethod
    def tearDownClass(cls):
        if cls.km is not None:
            super().tearDownClass()
            return
        cls.kc.shutdown()  # the kernel runs Session::shutdown and stops serving
        cls.kc.stop_channels()


@unittest.skipIf(os.environ.get("AUTOAWAIT_CONNECTION_FILE"),
                 "needs a kernel of its own: the welcome goes to a fresh subscriber")
class AutoawaitIopubWelcomeTests(jupyter_kernel_test.IopubWelcomeTests):
    """JEP 65 / protocol 5.5: IOPub is XPUB and greets each subscriber."""

    kernel_name = os.environ.get("AUTOAWAIT_KERNEL_NAME", "autoawait")
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
